"""The ledger's invariants, enforced by PostgreSQL itself so that no code path (a raw SQL console, a
forgotten service, a future bug) can break them. Errors use SQLSTATE class 23 (integrity constraint
violation), so Django raises them as IntegrityError.

- Double entry: at commit, every transaction has at least two entries and they sum to zero
  (DEFERRABLE INITIALLY DEFERRED constraint triggers, on the transaction and on each entry).
- Append-only: transactions, entries and reconciliation fixes refuse UPDATE, DELETE and TRUNCATE.
  The one exception is TRUNCATE in a database named test_*: Django's test runner empties every
  table with TRUNCATE between transactional tests, and a test database holds no books.
- Accounts keep their code (part of every entry hash) and unit (what the amounts count).
- Balance.allow_negative follows Account.allow_negative, so the balance row's CheckConstraint
  (allow_negative OR balance >= 0) always applies the account's current rule; turning the rule on
  for an account that is below zero fails on that constraint.
"""

from django.db import migrations

FORWARD = r"""
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\_%' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ledger: % on % is refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'Correct a transaction by posting a reversal or an adjustment that points at it.';
END;
$$;

CREATE TRIGGER ledger_transaction_append_only BEFORE UPDATE OR DELETE ON ledger_transaction
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transaction_no_truncate BEFORE TRUNCATE ON ledger_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_reconciliationfix_append_only BEFORE UPDATE OR DELETE ON ledger_reconciliationfix
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_reconciliationfix_no_truncate BEFORE TRUNCATE ON ledger_reconciliationfix
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION ledger_assert_balanced(transaction_id bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    entry_count bigint;
    total numeric;
BEGIN
    SELECT count(*), coalesce(sum(amount), 0) INTO entry_count, total
      FROM ledger_entry WHERE ledger_entry.transaction_id = ledger_assert_balanced.transaction_id;
    IF entry_count < 2 THEN
        RAISE EXCEPTION 'ledger: transaction % has % entries; a transaction has at least two',
            transaction_id, entry_count USING ERRCODE = 'check_violation';
    END IF;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger: the entries of transaction % sum to %, not zero', transaction_id, total
            USING ERRCODE = 'check_violation';
    END IF;
END;
$$;

CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_balanced(NEW.id);
    RETURN NULL;
END;
$$;

CREATE FUNCTION ledger_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_balanced(NEW.transaction_id);
    RETURN NULL;
END;
$$;

-- Checked at commit, when all entries of the transaction are in: on the transaction row (so that one
-- with no entries at all is refused) and on every entry row (so that entries added later to an old
-- transaction must still balance it).
CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();

CREATE FUNCTION ledger_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.code IS DISTINCT FROM OLD.code OR NEW.unit IS DISTINCT FROM OLD.unit THEN
        RAISE EXCEPTION 'ledger: the code and unit of account % never change', OLD.code
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Entry hashes include the account code; open a new account instead.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_account_code_unit_fixed BEFORE UPDATE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_account_guard();

CREATE FUNCTION ledger_account_sync_allow_negative() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_balance SET allow_negative = NEW.allow_negative WHERE account_id = NEW.id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_account_allow_negative_sync AFTER UPDATE OF allow_negative ON ledger_account
    FOR EACH ROW WHEN (NEW.allow_negative IS DISTINCT FROM OLD.allow_negative)
    EXECUTE FUNCTION ledger_account_sync_allow_negative();
"""

REVERSE = """
DROP TRIGGER IF EXISTS ledger_account_allow_negative_sync ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_sync_allow_negative();
DROP TRIGGER IF EXISTS ledger_account_code_unit_fixed ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_guard();
DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_entry;
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction;
DROP FUNCTION IF EXISTS ledger_entry_balanced();
DROP FUNCTION IF EXISTS ledger_transaction_balanced();
DROP FUNCTION IF EXISTS ledger_assert_balanced(bigint);
DROP TRIGGER IF EXISTS ledger_reconciliationfix_no_truncate ON ledger_reconciliationfix;
DROP TRIGGER IF EXISTS ledger_reconciliationfix_append_only ON ledger_reconciliationfix;
DROP TRIGGER IF EXISTS ledger_entry_no_truncate ON ledger_entry;
DROP TRIGGER IF EXISTS ledger_entry_append_only ON ledger_entry;
DROP TRIGGER IF EXISTS ledger_transaction_no_truncate ON ledger_transaction;
DROP TRIGGER IF EXISTS ledger_transaction_append_only ON ledger_transaction;
DROP FUNCTION IF EXISTS ledger_refuse_change();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]

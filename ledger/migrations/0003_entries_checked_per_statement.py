"""Transactions and entries are checked once per INSERT statement, set-based, instead of once per row.

Before: deferred constraint triggers re-summed a transaction at commit once for its own row and once
for each of its entries, so a batch of 1,000 postings ran 3,000 checks, about a third of the database's
work per posting. Now one AFTER INSERT ... FOR EACH STATEMENT trigger per table, with the statement's
new rows as a transition table, checks them all at the end of the statement:

- ledger_entry: every transaction the new entries belong to has at least two entries, summing to zero;
- ledger_transaction: every new transaction has entries (the check above then proved them balanced).

So a transaction and its entries go in together, in one statement (the ledger's own INSERT does exactly
that: the entries hang off the transaction row in one statement), and no statement can leave an
unbalanced transaction behind, not even until the commit. An entry added later to an old transaction is
refused at once.
"""

from django.db import migrations

FORWARD = r"""
DROP TRIGGER ledger_entry_balanced ON ledger_entry;
DROP TRIGGER ledger_transaction_balanced ON ledger_transaction;
DROP FUNCTION ledger_entry_balanced();
DROP FUNCTION ledger_transaction_balanced();

CREATE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT t.transaction_id, s.entry_count, s.total INTO bad
      FROM (SELECT DISTINCT transaction_id FROM new_entries) t
      CROSS JOIN LATERAL (
            SELECT count(*) AS entry_count, coalesce(sum(e.amount), 0) AS total
              FROM ledger_entry e WHERE e.transaction_id = t.transaction_id
      ) s
     WHERE s.entry_count < 2 OR s.total <> 0
     LIMIT 1;
    IF FOUND THEN
        IF bad.entry_count < 2 THEN
            RAISE EXCEPTION 'ledger: transaction % has % entries; a transaction has at least two',
                bad.transaction_id, bad.entry_count
                USING ERRCODE = 'check_violation',
                      HINT = 'Insert a transaction and all its entries in one statement.';
        END IF;
        RAISE EXCEPTION 'ledger: the entries of transaction % sum to %, not zero', bad.transaction_id, bad.total
            USING ERRCODE = 'check_violation',
                  HINT = 'Insert a transaction and all its entries in one statement.';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_balanced();

CREATE FUNCTION ledger_transactions_have_entries() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lonely bigint;
BEGIN
    SELECT t.id INTO lonely FROM new_transactions t
     WHERE NOT EXISTS (SELECT 1 FROM ledger_entry e WHERE e.transaction_id = t.id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: transaction % has 0 entries; a transaction has at least two', lonely
            USING ERRCODE = 'check_violation',
                  HINT = 'Insert a transaction and all its entries in one statement.';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ledger_transactions_have_entries AFTER INSERT ON ledger_transaction
    REFERENCING NEW TABLE AS new_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_transactions_have_entries();
"""

REVERSE = r"""
DROP TRIGGER ledger_transactions_have_entries ON ledger_transaction;
DROP FUNCTION ledger_transactions_have_entries();
DROP TRIGGER ledger_entries_balanced ON ledger_entry;
DROP FUNCTION ledger_entries_balanced();

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

CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();
CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_entry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balanced();
"""


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_invariants")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]

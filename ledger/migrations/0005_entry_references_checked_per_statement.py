"""An entry's transaction and account are checked by the ledger's statement-level trigger, once per INSERT
statement over all its new rows, instead of by FOREIGN KEY constraints: Django makes those deferred, and
PostgreSQL then runs one look-up per entry and constraint at commit, four per posting. Neither row can
vanish afterwards: transactions are append-only (0002) and accounts are never deleted (refused below).
"""

import django.db.models.deletion
from django.db import migrations, models

FORWARD = r"""
CREATE OR REPLACE FUNCTION ledger_entries_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT n.transaction_id, n.account_id INTO bad
      FROM new_entries n
      LEFT JOIN ledger_transaction t ON t.id = n.transaction_id
      LEFT JOIN ledger_account a ON a.id = n.account_id
     WHERE t.id IS NULL OR a.id IS NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger: an entry names transaction % and account %, and one of them does not exist',
            bad.transaction_id, bad.account_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
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

-- Entries refer to accounts without a FOREIGN KEY: accounts are never deleted (TRUNCATE only in test_*
-- databases, as for the other tables of the books).
CREATE TRIGGER ledger_account_no_delete BEFORE DELETE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_account_no_truncate BEFORE TRUNCATE ON ledger_account
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""

REVERSE = r"""
DROP TRIGGER ledger_account_no_truncate ON ledger_account;
DROP TRIGGER ledger_account_no_delete ON ledger_account;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_balance_fillfactor"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, REVERSE),
        migrations.AlterField(
            model_name="entry",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="ledger.account",
            ),
        ),
        migrations.AlterField(
            model_name="entry",
            name="transaction",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="ledger.transaction",
            ),
        ),
    ]

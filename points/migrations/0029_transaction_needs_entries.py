"""A ledger transaction without entries cannot commit (PostgreSQL).

Migration 0025's guards sum each transaction's entries; a transaction with no entries at all
summed to zero and passed, seen only by the nightly reconcile. Now, set-based:

- `points_ledgertransaction_has_entries` (AFTER INSERT, FOR EACH STATEMENT, transition
  table): the statement's new transactions that have no entry yet are noted in
  `points_entry_unbalanced`. One anti-join per statement through points_entry_one_per_account
  (which leads with transaction_id); a writer that inserts a transaction and its entries in
  one statement (the posting writer's `PgStatement`, whose triggers fire after all its parts)
  notes nothing.
- the commit-time check (`points_entries_balance_at_commit`) refuses a noted transaction that
  still has no entry, as it refuses one whose entries do not sum to zero. (An entry of 0 is
  refused by points_entry_amount_nonzero; one entry alone cannot sum to zero.)
"""

from django.db import migrations

GUARD = r"""
CREATE OR REPLACE FUNCTION points_entries_balance_at_commit() RETURNS trigger AS $$
DECLARE
    total bigint;
    entries bigint;
BEGIN
    SELECT COALESCE(SUM(amount), 0), COUNT(*) INTO total, entries FROM points_entry
        WHERE transaction_id = NEW.transaction_id;
    DELETE FROM points_entry_unbalanced WHERE transaction_id = NEW.transaction_id;
    IF entries = 0 THEN
        RAISE EXCEPTION 'ledger transaction % has no entries', NEW.transaction_id;
    END IF;
    IF total <> 0 THEN
        RAISE EXCEPTION 'entries of ledger transaction % sum to %, not 0', NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION points_ledgertransaction_entries_required() RETURNS trigger AS $$
BEGIN
    INSERT INTO points_entry_unbalanced (transaction_id)
        SELECT t.id FROM new_transactions t
        WHERE NOT EXISTS (SELECT 1 FROM points_entry e WHERE e.transaction_id = t.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER points_ledgertransaction_has_entries AFTER INSERT ON points_ledgertransaction
    REFERENCING NEW TABLE AS new_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledgertransaction_entries_required();
"""

NO_GUARD = r"""
DROP TRIGGER IF EXISTS points_ledgertransaction_has_entries ON points_ledgertransaction;
DROP FUNCTION IF EXISTS points_ledgertransaction_entries_required();

CREATE OR REPLACE FUNCTION points_entries_balance_at_commit() RETURNS trigger AS $$
DECLARE
    total bigint;
BEGIN
    SELECT COALESCE(SUM(amount), 0) INTO total FROM points_entry
        WHERE transaction_id = NEW.transaction_id;
    DELETE FROM points_entry_unbalanced WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'entries of ledger transaction % sum to %, not 0', NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def no_guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NO_GUARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0028_posting_lock_function")]

    operations = [migrations.RunPython(guard, no_guard)]

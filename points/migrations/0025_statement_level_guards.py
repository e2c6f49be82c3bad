"""The ledger's guards, set-based: one trigger call per statement instead of one per row.

Migration 0005 checked every entry with a deferred row trigger at commit (a lookup of its
transaction's entries per row, two per posting) — the cost that once made bulk paths switch
the guards off. Now:

- `points_entry_sum_zero` (AFTER INSERT, FOR EACH STATEMENT, transition table): sums each
  transaction's amounts within the statement. Every writer inserts a transaction's entries in
  one statement, so they sum to zero there and the check is one aggregate over the batch.
  A transaction whose entries in the statement do not sum to zero (the first of two
  statements, or a wrong posting) is noted in `points_entry_unbalanced`; the deferred
  constraint trigger `points_entry_unbalanced_check` on that table sums the transaction's
  entries at commit, over the whole table, and refuses the commit if they are not zero.
  Sums add up: a transaction that balances in every statement balances in total.
- `points_<entry|ledgertransaction>_no_update` / `_no_delete` (AFTER, FOR EACH STATEMENT,
  transition table): refuse any statement that changed a row. AFTER and not BEFORE, because
  Django's deletion collector issues `UPDATE … SET actor_id = NULL` (and fast deletes) that
  match no row, and those must keep working; a statement that does change a row is refused
  and rolled back.
- `points_<entry|ledgertransaction>_no_truncate` (BEFORE TRUNCATE): refused, except in a
  Django test database (named `test_…`), which the test runner empties with TRUNCATE between
  tests.

Foreign keys are untouched. No step needs more than the rights of the tables' owner.
SQLite has no such triggers; there the services and the nightly reconcile hold the line.
"""

from django.db import migrations

GUARDS = r"""
DROP TRIGGER IF EXISTS points_entry_sum_zero ON points_entry;
DROP TRIGGER IF EXISTS points_entry_append_only ON points_entry;
DROP TRIGGER IF EXISTS points_ledgertransaction_append_only ON points_ledgertransaction;
DROP FUNCTION IF EXISTS points_entries_balance();
DROP FUNCTION IF EXISTS points_refuse_change();

CREATE FUNCTION points_ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    -- The argument, if given, names the databases where TRUNCATE is allowed: Django's test
    -- runner empties its own test_… database with it between tests.
    IF TG_OP = 'TRUNCATE' AND TG_NARGS > 0 AND current_database() LIKE TG_ARGV[0] THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the points ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION points_ledger_refuse_changed_rows() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows) THEN
        RAISE EXCEPTION 'the points ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER points_entry_no_update AFTER UPDATE ON points_entry
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_changed_rows();
CREATE TRIGGER points_entry_no_delete AFTER DELETE ON points_entry
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_changed_rows();
CREATE TRIGGER points_entry_no_truncate BEFORE TRUNCATE ON points_entry
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_change('test\_%');

CREATE TRIGGER points_ledgertransaction_no_update AFTER UPDATE ON points_ledgertransaction
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_changed_rows();
CREATE TRIGGER points_ledgertransaction_no_delete AFTER DELETE ON points_ledgertransaction
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_changed_rows();
CREATE TRIGGER points_ledgertransaction_no_truncate BEFORE TRUNCATE ON points_ledgertransaction
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_refuse_change('test\_%');

-- Transactions left unbalanced by a statement, to be summed again at commit. A row lives
-- only inside the database transaction that wrote it: the check at commit removes it.
CREATE TABLE points_entry_unbalanced (transaction_id bigint NOT NULL);

CREATE FUNCTION points_entries_balance_batch() RETURNS trigger AS $$
BEGIN
    INSERT INTO points_entry_unbalanced (transaction_id)
        SELECT transaction_id FROM new_entries GROUP BY transaction_id HAVING SUM(amount) <> 0;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER points_entry_sum_zero AFTER INSERT ON points_entry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION points_entries_balance_batch();

CREATE FUNCTION points_entries_balance_at_commit() RETURNS trigger AS $$
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

CREATE CONSTRAINT TRIGGER points_entry_unbalanced_check
    AFTER INSERT ON points_entry_unbalanced
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION points_entries_balance_at_commit();
"""

# Migration 0005's row triggers, as they were.
ROW_GUARDS = """
DROP TRIGGER IF EXISTS points_entry_unbalanced_check ON points_entry_unbalanced;
DROP TABLE IF EXISTS points_entry_unbalanced;
DROP TRIGGER IF EXISTS points_entry_sum_zero ON points_entry;
DROP TRIGGER IF EXISTS points_entry_no_update ON points_entry;
DROP TRIGGER IF EXISTS points_entry_no_delete ON points_entry;
DROP TRIGGER IF EXISTS points_entry_no_truncate ON points_entry;
DROP TRIGGER IF EXISTS points_ledgertransaction_no_update ON points_ledgertransaction;
DROP TRIGGER IF EXISTS points_ledgertransaction_no_delete ON points_ledgertransaction;
DROP TRIGGER IF EXISTS points_ledgertransaction_no_truncate ON points_ledgertransaction;
DROP FUNCTION IF EXISTS points_entries_balance_at_commit();
DROP FUNCTION IF EXISTS points_entries_balance_batch();
DROP FUNCTION IF EXISTS points_ledger_refuse_changed_rows();
DROP FUNCTION IF EXISTS points_ledger_refuse_change();

CREATE OR REPLACE FUNCTION points_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the points ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER points_entry_append_only
    BEFORE UPDATE OR DELETE ON points_entry
    FOR EACH ROW EXECUTE FUNCTION points_refuse_change();

CREATE TRIGGER points_ledgertransaction_append_only
    BEFORE UPDATE OR DELETE ON points_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION points_refuse_change();

CREATE OR REPLACE FUNCTION points_entries_balance() RETURNS trigger AS $$
DECLARE
    total bigint;
BEGIN
    SELECT COALESCE(SUM(amount), 0) INTO total FROM points_entry
        WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'entries of ledger transaction % sum to %, not 0', NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER points_entry_sum_zero
    AFTER INSERT ON points_entry
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION points_entries_balance();
"""


def statement_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARDS, params=None)


def row_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ROW_GUARDS, params=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0024_posting_writer")]

    operations = [migrations.RunPython(statement_guards, row_guards)]

"""PostgreSQL guards for the ledger: entries and transactions are append-only, and the
entries of a transaction sum to zero (checked at commit, once all of them are written).
SQLite has no such triggers; there the services and the nightly reconcile hold the line."""

from django.db import migrations

GUARDS = """
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

DROP = """
DROP TRIGGER IF EXISTS points_entry_sum_zero ON points_entry;
DROP TRIGGER IF EXISTS points_ledgertransaction_append_only ON points_ledgertransaction;
DROP TRIGGER IF EXISTS points_entry_append_only ON points_entry;
DROP FUNCTION IF EXISTS points_entries_balance();
DROP FUNCTION IF EXISTS points_refuse_change();
"""


def create_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARDS, params=None)


def drop_guards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0004_rewards_and_coupons")]

    operations = [migrations.RunPython(create_guards, drop_guards)]

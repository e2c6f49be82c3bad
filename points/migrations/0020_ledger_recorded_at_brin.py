"""A BRIN index on the ledger's recorded_at (PostgreSQL): the nightly reconcile lists the
day's large postings with one range query. recorded_at grows with the table (every path
writes the time of posting), so a BRIN index of a few pages finds a day's blocks, and a
posting pays nearly nothing to keep it. Not in the model's Meta: Django's BrinIndex is
PostgreSQL-only and the SQLite demo scans its small table instead."""

from django.db import migrations

INDEX = "points_txn_recorded_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON points_ledgertransaction "
        "USING brin (recorded_at) WITH (pages_per_range = 32)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("points", "0019_redemption_void_reason")]

    operations = [migrations.RunPython(create, drop)]

"""`points_posting_lock`: a live purchase's account locks and replay check in one round trip.

Its SQL is in points/sql/posting_lock.sql (it locks and reads; it decides nothing). PostgreSQL
only; SQLite's writer is the ORM.
"""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql" / "posting_lock.sql"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SQL.read_text())


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS points_posting_lock(bigint[], bigint, text)")


class Migration(migrations.Migration):
    dependencies = [("points", "0027_purchase_history_db_default")]

    operations = [migrations.RunPython(forwards, backwards)]

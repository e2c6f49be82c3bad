"""The database itself says a purchase is no history import unless told.

Django sets `Purchase.history` on every insert it makes; the SQL paths that insert purchases
with their own column lists (the posting function, loadgen's statements) name no such
column, so PostgreSQL needs the default too.
"""

from django.db import migrations


def db_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE points_purchase ALTER COLUMN history SET DEFAULT false")


def no_db_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE points_purchase ALTER COLUMN history DROP DEFAULT")


class Migration(migrations.Migration):
    dependencies = [("points", "0026_points_imports_to_core")]

    operations = [migrations.RunPython(db_default, no_db_default)]

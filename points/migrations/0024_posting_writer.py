"""PostgreSQL: drop `points_purchase_post` (0015), the function that decided points, debt
and tier upgrades in PL/pgSQL. Every purchase is now planned in Python
(`points.posting.plan`) and written by `points.posting.writers`, whose one set-based
statement stores what the plan decided; reversing this migration puts the old function
back as 0015 created it."""

import importlib

from django.db import migrations

# The function as 0015 created it: its DROP here, its text to put it back on reversal.
_0015_function = importlib.import_module("points.migrations.0015_purchase_post_function")


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_0015_function.DROP, params=None)


def restore(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_0015_function.FUNCTION, params=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0023_purchase_history")]

    operations = [migrations.RunPython(drop_function, restore)]

from django.db import migrations

# Every posting rewrites its account's balance and the expiry empties each lot it takes.
# With pages left full (the default, and what a bulk load writes), each such update moves
# the row to another page: one more page to read and log, and for the account, whose
# changed columns are in no index, new entries in all its indexes instead of a HOT update.
# Spare room on the page keeps the new version beside the old one.
FILLFACTORS = {"points_account": 80, "points_lot": 90}


def fillfactor_set(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, fillfactor in FILLFACTORS.items():
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {fillfactor})")


def fillfactor_reset(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in FILLFACTORS:
        schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0013_unindexed_entry_account_movement_lot"),
    ]

    operations = [
        migrations.RunPython(fillfactor_set, fillfactor_reset, elidable=False),
    ]

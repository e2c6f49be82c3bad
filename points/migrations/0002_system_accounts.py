"""The system accounts every posting's counter-entry goes to."""

from django.db import migrations

SYSTEM_KINDS = ["issuance", "redemption", "expiry", "adjustment", "reversal"]


def create_system_accounts(apps, schema_editor):
    Account = apps.get_model("points", "Account")
    for kind in SYSTEM_KINDS:
        Account.objects.get_or_create(kind=kind, member=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0001_ledger")]

    operations = [migrations.RunPython(create_system_accounts, migrations.RunPython.noop)]

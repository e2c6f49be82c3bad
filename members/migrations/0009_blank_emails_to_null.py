"""Blank e-mails become NULL: '' is not "no e-mail", it is one more value of a unique column.

Its own migration, before 0010 adds the constraints that refuse '': PostgreSQL will not
alter a table in the transaction that just updated its rows while deferred triggers wait.
"""

from django.db import migrations


def blank_emails_to_null(apps, schema_editor):
    for model_name in ("User", "Member"):
        model = apps.get_model("members", model_name)
        model.objects.filter(email="").update(email=None)


class Migration(migrations.Migration):
    dependencies = [("members", "0008_staff_stores")]

    # Going back leaves the NULLs: which of them were '' before cannot be known, and NULL is
    # what the earlier code meant by "no e-mail" too.
    operations = [migrations.RunPython(blank_emails_to_null, migrations.RunPython.noop)]

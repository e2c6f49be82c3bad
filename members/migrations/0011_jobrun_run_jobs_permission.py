"""Administrators may run a nightly job again for a date from the Jobs page."""

from django.db import migrations

RERUN_ROLES = ("administrator",)


def grant_run_jobs(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    members_config = apps.get_app_config("members")
    members_config.models_module = True
    create_permissions(members_config, verbosity=0, apps=apps)
    members_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="members", codename="run_jobs")
    for group in Group.objects.filter(name__in=RERUN_ROLES):
        group.permissions.add(permission)


def revoke_run_jobs(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label="members", codename="run_jobs"
    ).first()
    if permission is not None:
        for group in Group.objects.filter(name__in=RERUN_ROLES):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0010_emails_never_blank"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="jobrun",
            options={
                "ordering": ["-started_at", "-id"],
                "permissions": [
                    ("view_jobs", "Can see scheduled job runs"),
                    ("run_jobs", "Can run a nightly job again for a date"),
                ],
                "verbose_name": "job run",
                "verbose_name_plural": "job runs",
            },
        ),
        migrations.RunPython(grant_run_jobs, revoke_run_jobs),
    ]

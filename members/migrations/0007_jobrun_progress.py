"""Job runs: progress of a running job, the skipped status, and who may see the Jobs page."""

from django.db import migrations, models

JOBS_ROLES = ("administrator", "auditor", "store_manager")


def grant_view_jobs(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    members_config = apps.get_app_config("members")
    members_config.models_module = True
    create_permissions(members_config, verbosity=0, apps=apps)
    members_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="members", codename="view_jobs")
    for group in Group.objects.filter(name__in=JOBS_ROLES):
        group.permissions.add(permission)


def revoke_view_jobs(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label="members", codename="view_jobs"
    ).first()
    if permission is not None:
        for group in Group.objects.filter(name__in=JOBS_ROLES):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0006_member_partial_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobrun",
            name="progress_done",
            field=models.BigIntegerField(blank=True, null=True, verbose_name="done"),
        ),
        migrations.AddField(
            model_name="jobrun",
            name="progress_total",
            field=models.BigIntegerField(blank=True, null=True, verbose_name="to do"),
        ),
        migrations.AlterField(
            model_name="jobrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped"),
                ],
                max_length=10,
                verbose_name="status",
            ),
        ),
        migrations.RunPython(grant_view_jobs, revoke_view_jobs),
    ]

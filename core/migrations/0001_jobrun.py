"""JobRun moves from members to core, its table and its rows staying where they are.

State only: the table `members_jobrun` (members 0004) keeps its name (`db_table`), its index
and its rows; members 0014 removes the model from members' state. The content type moves
with it, so the permissions `view_jobs` and `run_jobs` — and the roles that hold them — stay
as they are, now named `core.view_jobs` and `core.run_jobs`.
"""

import django.utils.timezone
from django.db import migrations, models


def content_type_move(apps, schema_editor, *, source="members", target="core"):
    ContentType = apps.get_model("contenttypes", "ContentType")
    moving = ContentType.objects.filter(app_label=source, model="jobrun").first()
    if moving is None:  # a database that never had members' job runs: nothing to move
        return
    # Only a partly migrated database could hold one already; nothing points at it yet.
    ContentType.objects.filter(app_label=target, model="jobrun").delete()
    moving.app_label = target
    moving.save(update_fields=["app_label"])


def content_type_move_back(apps, schema_editor):
    content_type_move(apps, schema_editor, source="core", target="members")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("members", "0013_apitoken_full_phone"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="JobRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("job", models.CharField(max_length=50, verbose_name="job")),
                        ("business_date", models.DateField(verbose_name="business date")),
                        (
                            "status",
                            models.CharField(
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
                        (
                            "started_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="started"
                            ),
                        ),
                        (
                            "finished_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="finished"),
                        ),
                        ("seconds", models.FloatField(blank=True, null=True, verbose_name="seconds")),
                        ("rows", models.BigIntegerField(default=0, verbose_name="rows touched")),
                        (
                            "details",
                            models.JSONField(blank=True, default=dict, verbose_name="details"),
                        ),
                        ("error", models.TextField(blank=True, verbose_name="error")),
                        (
                            "progress_done",
                            models.BigIntegerField(blank=True, null=True, verbose_name="done"),
                        ),
                        (
                            "progress_total",
                            models.BigIntegerField(blank=True, null=True, verbose_name="to do"),
                        ),
                    ],
                    options={
                        "verbose_name": "job run",
                        "verbose_name_plural": "job runs",
                        "db_table": "members_jobrun",
                        "ordering": ["-started_at", "-id"],
                        "permissions": [
                            ("view_jobs", "Can see scheduled job runs"),
                            ("run_jobs", "Can run a nightly job again for a date"),
                        ],
                        "indexes": [
                            models.Index(
                                fields=["job", "-business_date"], name="members_jobrun_job_idx"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_move, content_type_move_back),
    ]

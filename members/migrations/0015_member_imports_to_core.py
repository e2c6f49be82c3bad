"""Member imports move into the one import framework's tables (core), keeping their ids."""

from django.core.management.color import no_style
from django.db import migrations

COPIED = (
    "file_name",
    "sha256",
    "size",
    "content",
    "columns",
    "ignored_columns",
    "status",
    "total_rows",
    "processed_rows",
    "created_count",
    "existing_count",
    "bad_count",
    "failure",
    "actor_id",
    "actor_label",
    "created_at",
    "started_at",
    "finished_at",
)


def copy_to_core(apps, schema_editor):
    MemberImport = apps.get_model("members", "MemberImport")
    MemberImportError = apps.get_model("members", "MemberImportError")
    ImportRun = apps.get_model("core", "ImportRun")
    ImportRowError = apps.get_model("core", "ImportRowError")
    AuditEntry = apps.get_model("members", "AuditEntry")
    for old in MemberImport.objects.order_by("pk").iterator(chunk_size=100):
        ImportRun.objects.create(
            pk=old.pk, kind="members", **{name: getattr(old, name) for name in COPIED}
        )
    errors = MemberImportError.objects.order_by("pk").values_list(
        "member_import_id", "line", "source_id", "column", "code", "params"
    )
    batch = []
    for run_id, line, ref, column, code, params in errors.iterator(chunk_size=5000):
        batch.append(
            ImportRowError(run_id=run_id, line=line, ref=ref, column=column, code=code, params=params)
        )
        if len(batch) == 5000:
            ImportRowError.objects.bulk_create(batch)
            batch = []
    ImportRowError.objects.bulk_create(batch)
    # The runs kept their ids, so the audit entries only name the new table.
    AuditEntry.objects.filter(target_type="memberimport").update(target_type="importrun")
    # Ids given by hand: move the sequence past them (PostgreSQL).
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [ImportRun]):
            cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_imports"),
        ("members", "0014_jobrun_to_core"),
    ]

    operations = [
        migrations.RunPython(copy_to_core, migrations.RunPython.noop, elidable=True),
        migrations.RemoveIndex(model_name="memberimporterror", name="members_importerror_line_idx"),
        migrations.RemoveField(model_name="memberimporterror", name="member_import"),
        migrations.DeleteModel(name="MemberImport"),
        migrations.DeleteModel(name="MemberImportError"),
    ]

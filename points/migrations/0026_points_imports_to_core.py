"""Points imports move into the one import framework's tables (core).

Their ids overlapped the member imports' (which keep theirs, members 0014): a run keeps its
id when it is free, and every run keeps its old id as `legacy_id`, by which the old report
addresses find it.
"""

from django.core.management.color import no_style
from django.db import migrations

COPIED = (
    "kind",
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
    "points_posted",
    "failure",
    "actor_id",
    "actor_label",
    "created_at",
    "started_at",
    "finished_at",
)


def copy_to_core(apps, schema_editor):
    PointsImport = apps.get_model("points", "PointsImport")
    PointsImportError = apps.get_model("points", "PointsImportError")
    ImportRun = apps.get_model("core", "ImportRun")
    ImportRowError = apps.get_model("core", "ImportRowError")
    AuditEntry = apps.get_model("members", "AuditEntry")
    connection = schema_editor.connection
    taken = set(ImportRun.objects.values_list("pk", flat=True))
    olds = list(PointsImport.objects.order_by("pk").values_list("pk", flat=True))
    # Free ids first, so no run given a new id takes the id another run keeps.
    keep = [pk for pk in olds if pk not in taken]
    move = [pk for pk in olds if pk in taken]
    new_id: dict[int, int] = {}
    for pk in keep + move:
        old = PointsImport.objects.get(pk=pk)
        fields = {name: getattr(old, name) for name in COPIED}
        if pk in taken:
            run = ImportRun.objects.create(legacy_id=pk, **fields)
        else:
            run = ImportRun.objects.create(pk=pk, legacy_id=pk, **fields)
            with connection.cursor() as cursor:
                for sql in connection.ops.sequence_reset_sql(no_style(), [ImportRun]):
                    cursor.execute(sql)
        new_id[pk] = run.pk
        taken.add(run.pk)
    batch = []
    errors = PointsImportError.objects.order_by("pk").values_list(
        "points_import_id", "line", "ref", "column", "code", "params"
    )
    for old_id, line, ref, column, code, params in errors.iterator(chunk_size=5000):
        batch.append(
            ImportRowError(
                run_id=new_id[old_id], line=line, ref=ref, column=column, code=code, params=params
            )
        )
        if len(batch) == 5000:
            ImportRowError.objects.bulk_create(batch)
            batch = []
    ImportRowError.objects.bulk_create(batch)
    for entry in AuditEntry.objects.filter(target_type="pointsimport").only("pk", "target_id"):
        run_id = new_id.get(int(entry.target_id)) if entry.target_id.isdigit() else None
        AuditEntry.objects.filter(pk=entry.pk).update(
            target_type="importrun", target_id=str(run_id or entry.target_id)
        )
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [ImportRun]):
            cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_imports"),
        # The member imports first: they keep their ids.
        ("members", "0015_member_imports_to_core"),
        ("points", "0025_statement_level_guards"),
    ]

    operations = [
        migrations.RunPython(copy_to_core, migrations.RunPython.noop, elidable=True),
        migrations.RemoveIndex(model_name="pointsimporterror", name="points_importerror_line_idx"),
        migrations.RemoveField(model_name="pointsimporterror", name="points_import"),
        migrations.DeleteModel(name="PointsImport"),
        migrations.DeleteModel(name="PointsImportError"),
    ]

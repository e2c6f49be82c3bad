from django.db import migrations, models


def create_row(apps, schema_editor):
    apps.get_model("core", "ConfigVersion").objects.get_or_create(pk=1, defaults={"version": 0})


class Migration(migrations.Migration):
    dependencies = [("core", "0002_imports")]

    operations = [
        migrations.CreateModel(
            name="ConfigVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("version", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="configversion_one_row")
                ],
            },
        ),
        migrations.RunPython(create_row, migrations.RunPython.noop),
    ]

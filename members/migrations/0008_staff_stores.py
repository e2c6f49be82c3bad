"""Staff belong to stores: the stores of a login, and the roles that act for every store."""

from django.db import migrations, models

ALL_STORES_ROLES = ("administrator", "marketer", "auditor")


def grant_all_stores(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    members_config = apps.get_app_config("members")
    members_config.models_module = True
    create_permissions(members_config, verbosity=0, apps=apps)
    members_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="members", codename="all_stores")
    for group in Group.objects.filter(name__in=ALL_STORES_ROLES):
        group.permissions.add(permission)


def revoke_all_stores(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="members", codename="all_stores").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0007_jobrun_progress"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="store",
            options={
                "ordering": ["code"],
                "permissions": [("all_stores", "Can act for and see every store")],
                "verbose_name": "store",
                "verbose_name_plural": "stores",
            },
        ),
        migrations.AddField(
            model_name="user",
            name="stores",
            field=models.ManyToManyField(
                blank=True,
                help_text=(
                    "The stores this member of staff records purchases, returns, coupons and "
                    "enrolments for, and sees the figures of. Administrators, marketers and "
                    "auditors see every store."
                ),
                related_name="staff",
                to="members.store",
                verbose_name="stores",
            ),
        ),
        migrations.RunPython(grant_all_stores, revoke_all_stores),
    ]

"""Marketers, store managers (their stores only) and administrators read the dashboards."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

DASHBOARD_ROLES = ("marketer", "store_manager", "administrator")


def grant_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can get them.
    config = apps.get_app_config("analytics")
    config.models_module = True
    create_permissions(config, verbosity=0, apps=apps)
    config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(
        content_type__app_label="analytics", codename="view_dashboard"
    )
    for role in DASHBOARD_ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(permission)


def revoke_roles(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label="analytics").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("members", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_roles, revoke_roles)]

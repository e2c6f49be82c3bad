"""Marketers and administrators build segments and campaigns; administrators approve costly
ones; auditors read them; every back-office role reads campaign results (store staff and
managers for their own stores)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GRANTS = {
    "manage_segment": ("marketer", "administrator"),
    "view_segment": ("marketer", "administrator", "auditor"),
    "view_campaign": ("marketer", "administrator", "auditor"),
    "approve_campaign": ("administrator",),
    "view_campaign_results": (
        "store_staff",
        "store_manager",
        "marketer",
        "administrator",
        "auditor",
    ),
}


def grant_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can get them.
    config = apps.get_app_config("campaigns")
    config.models_module = True
    create_permissions(config, verbosity=0, apps=apps)
    config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for codename, roles in GRANTS.items():
        permission = Permission.objects.get(content_type__app_label="campaigns", codename=codename)
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            group.permissions.add(permission)


def revoke_roles(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(
        content_type__app_label="campaigns", codename__in=list(GRANTS)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("members", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_roles, revoke_roles)]

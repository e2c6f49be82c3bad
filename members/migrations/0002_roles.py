"""Create the five back-office roles as groups with the member permissions each needs."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "store_staff": [
        "members.use_backoffice",
        "members.view_member",
        "members.add_member",
        "members.change_member",
        "members.reveal_phone",
        "members.view_consentevent",
    ],
    "store_manager": [
        "members.use_backoffice",
        "members.view_member",
        "members.add_member",
        "members.change_member",
        "members.reveal_phone",
        "members.view_consentevent",
    ],
    "marketer": [
        "members.use_backoffice",
        "members.view_member",
    ],
    "administrator": [
        "members.use_backoffice",
        "members.view_member",
        "members.add_member",
        "members.change_member",
        "members.reveal_phone",
        "members.view_consentevent",
        "members.import_members",
        "members.view_auditentry",
        "members.view_store",
        "members.add_store",
        "members.change_store",
        "members.view_apitoken",
        "members.add_apitoken",
        "members.change_apitoken",
    ],
    "auditor": [
        "members.use_backoffice",
        "members.view_member",
        "members.view_consentevent",
        "members.view_auditentry",
    ],
}


def create_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can get them.
    members_config = apps.get_app_config("members")
    members_config.models_module = True
    create_permissions(members_config, verbosity=0, apps=apps)
    members_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]

"""Give the back-office roles (members/migrations/0002_roles.py) their points permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

STORE_STAFF = [
    "points.add_purchase",
    "points.add_return",
    "points.change_coupon",  # accept a coupon at the till
    "points.adjust_points",  # up to points.services.STAFF_ADJUSTMENT_LIMIT
    "points.view_account",
]

ROLE_PERMISSIONS = {
    "store_staff": STORE_STAFF,
    "store_manager": [
        *STORE_STAFF,
        "points.adjust_unlimited",
        "points.change_redemption",  # void an unused redemption (refunds its points)
    ],
    # Administrators get every points permission (see grant_roles), these among them.
    "administrator": [
        *STORE_STAFF,
        "points.adjust_unlimited",
        "points.change_redemption",
        "points.add_reward",
        "points.change_reward",
        "points.change_earningpolicy",
        "points.add_categoryrate",
        "points.change_categoryrate",
    ],
    # The reconcile report (and running it again) needs view_ledgertransaction.
    "auditor": ["points.view_account", "points.view_ledgertransaction"],
    "marketer": ["points.view_account"],
}


def grant_roles(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can get them.
    points_config = apps.get_app_config("points")
    points_config.models_module = True
    create_permissions(points_config, verbosity=0, apps=apps)
    points_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    administrator = Group.objects.get(name="administrator")
    administrator.permissions.add(*Permission.objects.filter(content_type__app_label="points"))


def revoke_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    points_perms = Permission.objects.filter(content_type__app_label="points")
    for group in Group.objects.filter(name__in=ROLE_PERMISSIONS):
        group.permissions.remove(*points_perms)


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0006_expiry_reminders"),
        ("members", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_roles, revoke_roles)]

"""The managed category list, with a row for every code already in use.

Codes come from the category rates and the purchase lines recorded so far. The usual codes
get their Chinese and English names; any other code is named by itself in both languages
until an administrator names it in the Django admin.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

KNOWN_NAMES = {
    "apparel": ("服装", "Apparel"),
    "cosmetics": ("美妆", "Cosmetics"),
    "food": ("食品", "Food"),
    "gift_card": ("礼品卡", "Gift cards"),
    "home": ("家居", "Home"),
    "snacks": ("零食", "Snacks"),
    "tobacco": ("烟草", "Tobacco"),
}


def categories_from_codes_in_use(apps, schema_editor):
    Category = apps.get_model("points", "Category")
    CategoryRate = apps.get_model("points", "CategoryRate")
    PurchaseLine = apps.get_model("points", "PurchaseLine")
    codes = set(CategoryRate.objects.values_list("category", flat=True))
    # One pass over the lines (DISTINCT), not one query per code.
    codes |= set(PurchaseLine.objects.values_list("category", flat=True).distinct())
    codes = sorted(code for code in codes if code and code.strip())
    rows = []
    for code in codes:
        name_zh, name_en = KNOWN_NAMES.get(code, (code, code))
        rows.append(Category(code=code, name_zh=name_zh, name_en=name_en))
    Category.objects.bulk_create(rows, ignore_conflicts=True)


def grant_administrators(apps, schema_editor):
    # Permissions are normally made after migrate; make these now so the group can get them.
    points_config = apps.get_app_config("points")
    points_config.models_module = True
    create_permissions(points_config, verbosity=0, apps=apps)
    points_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="administrator")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="points", content_type__model="category"
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("points", "0015_purchase_post_function"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("code", models.CharField(max_length=50, unique=True, verbose_name="code")),
                ("name_zh", models.CharField(max_length=100, verbose_name="name (Chinese)")),
                ("name_en", models.CharField(max_length=100, verbose_name="name (English)")),
            ],
            options={
                "verbose_name": "category",
                "verbose_name_plural": "categories",
                "ordering": ["code"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("code", ""), _negated=True),
                        name="points_category_code_not_blank",
                    )
                ],
            },
        ),
        migrations.RunPython(categories_from_codes_in_use, migrations.RunPython.noop),
        migrations.RunPython(grant_administrators, migrations.RunPython.noop),
    ]

"""The five default levels of PRODUCT.md, the roles' tier permissions, and (on PostgreSQL) a
guard that keeps tier history append-only."""

from decimal import Decimal

from django.contrib.auth.management import create_permissions
from django.db import migrations

# rank, code, zh, en, qualify (¥ or points), retain, multiplier, discount %, benefits zh/en
LEVELS = [
    (1, "regular", "普通会员", "Regular", 0, 0, "1.0", "0",
     "消费每 1 元积 1 分；积分兑换礼品与优惠券。",
     "1 point per ¥1 spent; redeem points for gifts and coupons."),
    (2, "silver", "银卡会员", "Silver", 2000, 1600, "1.2", "5",
     "积分 1.2 倍；会员价 95 折；生日月赠生日礼券。",
     "Points ×1.2; 5% member discount; a birthday coupon in your birthday month."),
    (3, "gold", "金卡会员", "Gold", 8000, 6400, "1.5", "10",
     "积分 1.5 倍；会员价 9 折；生日礼券；金卡专享礼品。",
     "Points ×1.5; 10% member discount; birthday coupon; Gold-only rewards."),
    (4, "platinum", "白金会员", "Platinum", 20000, 16000, "1.8", "15",
     "积分 1.8 倍；会员价 85 折；生日礼券；专属客服。",
     "Points ×1.8; 15% member discount; birthday coupon; a dedicated service line."),
    (5, "diamond", "钻石会员", "Diamond", 50000, 40000, "2.0", "20",
     "积分 2 倍；会员价 8 折；生日礼券；专属客服与活动邀请。",
     "Points ×2; 20% member discount; birthday coupon; dedicated service and event invitations."),
]  # fmt: skip

ROLE_PERMISSIONS = {
    "store_staff": ["tiers.view_tierhistory"],
    "store_manager": ["tiers.view_tierhistory", "tiers.override_tier"],
    "marketer": ["tiers.view_tierhistory", "tiers.view_tierlevel"],
    "auditor": ["tiers.view_tierhistory", "tiers.view_tierlevel"],
}

GUARD = """
CREATE OR REPLACE FUNCTION tiers_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tier history is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tiers_history_append_only
    BEFORE UPDATE OR DELETE ON tiers_tierhistory
    FOR EACH ROW EXECUTE FUNCTION tiers_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS tiers_history_append_only ON tiers_tierhistory;
DROP FUNCTION IF EXISTS tiers_refuse_change();
"""


def seed(apps, schema_editor):
    TierLevel = apps.get_model("tiers", "TierLevel")
    for rank, code, zh, en, qualify, retain, mult, discount, ben_zh, ben_en in LEVELS:
        TierLevel.objects.get_or_create(
            rank=rank,
            defaults={
                "code": code,
                "name_zh": zh,
                "name_en": en,
                "qualify_spend": Decimal(qualify),
                "qualify_points": qualify,
                "retain_spend": Decimal(retain),
                "retain_points": retain,
                "earn_multiplier": Decimal(mult),
                "discount_rate": Decimal(discount),
                "birthday_coupon": rank >= 2,
                "benefits_zh": ben_zh,
                "benefits_en": ben_en,
            },
        )

    config = apps.get_app_config("tiers")
    config.models_module = True
    create_permissions(config, verbosity=0, apps=apps)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    tier_perms = Permission.objects.filter(content_type__app_label="tiers")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*tier_perms.filter(codename__in=[p.split(".")[1] for p in perms]))
    administrator, _ = Group.objects.get_or_create(name="administrator")
    administrator.permissions.add(*tier_perms)

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD, params=None)


def unseed(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    tier_perms = Permission.objects.filter(content_type__app_label="tiers")
    for group in Group.objects.filter(name__in=[*ROLE_PERMISSIONS, "administrator"]):
        group.permissions.remove(*tier_perms)


class Migration(migrations.Migration):
    dependencies = [
        ("tiers", "0001_initial"),
        ("members", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(seed, unseed)]

"""A coupon reward always carries its figures: the admin says which one is missing, the
database refuses it on every other path, and the migration that brought the rule in names
the old rewards it cannot fix instead of failing half-way."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction

from points.models import Reward
from tests.conftest import make_role_user

pytestmark = pytest.mark.django_db

migration = importlib.import_module("points.migrations.0018_reward_coupon_figures_required")


@pytest.fixture
def admin_client(client, settings):
    settings.LANGUAGE_CODE = "en"
    client.force_login(make_role_user("administrator", email="admin@example.com", is_staff=True))
    return client


def add_form(**fields):
    return {
        "code": "NEW",
        "name_zh": "新券",
        "name_en": "New coupon",
        "description_zh": "",
        "description_en": "",
        "points_price": "1000",
        "min_tier_rank": "1",
        "is_active": "on",
        "created_at_0": "2026-01-01",
        "created_at_1": "10:00:00",
        "tier_prices-TOTAL_FORMS": "0",
        "tier_prices-INITIAL_FORMS": "0",
        "tier_prices-MIN_NUM_FORMS": "0",
        "tier_prices-MAX_NUM_FORMS": "1000",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "amount_off"}, "A coupon for an amount off needs the amount (above 0)."),
        ({"kind": "percent_off"}, "A percent-off coupon needs a percent from 1 to 100."),
        (
            {"kind": "percent_off", "percent_off": "101"},
            "A percent-off coupon needs a percent from 1 to 100.",
        ),
        ({"kind": "spend_save", "amount_off": "20"}, "needs the spend threshold."),
        ({"kind": "spend_save", "min_spend": "200"}, "needs the amount saved."),
        (
            {"kind": "spend_save", "min_spend": "20", "amount_off": "20"},
            "The amount saved must be below the spend threshold.",
        ),
    ],
)
def test_the_admin_refuses_a_coupon_without_its_figures(admin_client, fields, message):
    response = admin_client.post(
        "/admin/points/reward/add/", add_form(**fields), headers={"Accept-Language": "en"}
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Reward.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "amount_off", "amount_off": "10"},
        {"kind": "percent_off", "percent_off": "100"},
        {"kind": "spend_save", "min_spend": "200", "amount_off": "20"},
        {"kind": "donation"},
    ],
)
def test_the_admin_accepts_a_complete_reward(admin_client, fields):
    response = admin_client.post("/admin/points/reward/add/", add_form(**fields))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Reward.objects.get(code="NEW").kind == fields["kind"]


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "amount_off"},
        {"kind": "amount_off", "amount_off": Decimal(0)},
        {"kind": "percent_off"},
        {"kind": "percent_off", "percent_off": 0},
        {"kind": "percent_off", "percent_off": 101},
        {"kind": "spend_save", "amount_off": Decimal(20)},
        {"kind": "spend_save", "min_spend": Decimal(200)},
        {"kind": "spend_save", "min_spend": Decimal(20), "amount_off": Decimal(30)},
    ],
)
def test_the_database_refuses_a_coupon_without_its_figures(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        Reward.objects.create(code="BAD", name_zh="坏", name_en="Bad", points_price=100, **fields)


def test_the_migration_names_old_rewards_it_cannot_fix(db):
    Reward.objects.create(
        code="OK10", kind="amount_off", amount_off=10, name_zh="好", name_en="ok", points_price=1
    )
    with transaction.atomic():
        # Rows written before the constraint existed: the old one let a NULL through.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "ALTER TABLE points_reward "
                    "DROP CONSTRAINT points_reward_amount_off_needs_amount"
                )
        else:
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA ignore_check_constraints = ON")
        try:
            Reward.objects.create(
                code="NOAMOUNT", kind="amount_off", name_zh="坏", name_en="bad", points_price=1
            )
            with pytest.raises(migration.BadRewards) as refused:
                migration.refuse_bad_rewards(apps, None)
        finally:
            if connection.vendor != "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("PRAGMA ignore_check_constraints = OFF")
        transaction.set_rollback(True)
    message = str(refused.value)
    assert "NOAMOUNT (amount_off): amount_off=None" in message
    assert "OK10" not in message
    assert "Fix them in the Django admin" in message


def test_the_migration_passes_when_every_reward_is_complete(db):
    Reward.objects.create(
        code="P100",
        kind="percent_off",
        percent_off=100,
        name_zh="免",
        name_en="free",
        points_price=1,
    )
    migration.refuse_bad_rewards(apps, None)

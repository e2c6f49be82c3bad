"""The category list: one row per code, zh/en names, made from the codes already in use."""

from __future__ import annotations

import datetime
import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError
from django.utils import translation

from points.catalogue import category_ensure
from points.models import Category, CategoryRate, PurchaseLine
from points.selectors import category_names
from points.services import LineInput, purchase_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("points.migrations.0016_categories")


def test_the_migration_makes_a_row_for_every_code_in_rates_and_purchase_lines(store):
    CategoryRate.objects.create(category="tobacco", rate=0)
    CategoryRate.objects.create(category="cosmetics", rate=Decimal(2))
    purchase_record(
        member=MemberFactory(),
        store=store,
        receipt_no="R1",
        occurred_at=datetime.datetime.now(tz=datetime.UTC),
        amount=Decimal(30),
        lines=[
            LineInput(sku="A", category="cosmetics", amount=Decimal(10)),
            LineInput(sku="B", category="garden", amount=Decimal(10)),
            LineInput(sku="C", category="", amount=Decimal(10)),
        ],
    )
    assert PurchaseLine.objects.count() == 3

    migration.categories_from_codes_in_use(apps, None)

    assert list(Category.objects.values_list("code", "name_zh", "name_en")) == [
        ("cosmetics", "美妆", "Cosmetics"),
        # Unknown codes are named by themselves until an administrator names them.
        ("garden", "garden", "garden"),
        ("tobacco", "烟草", "Tobacco"),
    ]
    # Running it again adds nothing and keeps names already edited.
    Category.objects.filter(code="garden").update(name_zh="园艺", name_en="Garden")
    migration.categories_from_codes_in_use(apps, None)
    assert Category.objects.count() == 3
    assert Category.objects.get(code="garden").name_zh == "园艺"


def test_a_category_is_named_in_the_language_of_the_page():
    category_ensure(code="gift_card", name_zh="礼品卡", name_en="Gift cards")

    with translation.override("zh-hans"):
        assert category_names() == {"gift_card": "礼品卡"}
    with translation.override("en"):
        assert category_names() == {"gift_card": "Gift cards"}


def test_a_code_is_listed_once_and_never_blank():
    category_ensure(code="food", name_zh="食品", name_en="Food")
    # Ensuring again keeps the first names (an administrator may have edited them).
    assert category_ensure(code="food", name_zh="x", name_en="y").name_zh == "食品"
    with pytest.raises(IntegrityError):
        Category.objects.create(code="food", name_zh="食品", name_en="Food")


def test_a_blank_code_is_refused_by_the_database():
    with pytest.raises(IntegrityError):
        Category.objects.create(code="", name_zh="无", name_en="None")

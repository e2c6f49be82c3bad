"""Configuration kept per process (core/config.py): read once, dropped when it changes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection, transaction

from core.config import config_changed
from core.models import ConfigVersion
from points.earning import earning_rules, policy_get
from points.models import EarningPolicy
from tiers.models import TierLevel
from tiers.selectors import tier_levels


def test_the_ladder_is_read_once_until_a_level_is_saved(db, django_assert_num_queries):
    tier_levels()
    with django_assert_num_queries(0):
        assert tier_levels()[0].code == "regular"
    silver = TierLevel.objects.get(code="silver")
    silver.qualify_spend = Decimal(1234)
    silver.save()
    assert next(lv for lv in tier_levels() if lv.code == "silver").qualify_spend == 1234


def test_a_saved_policy_reaches_the_next_purchase_rules(db):
    policy = EarningPolicy.objects.create(base_rate=Decimal(1))
    assert earning_rules().base_rate == 1
    policy.base_rate = Decimal(3)
    policy.save()
    assert earning_rules().base_rate == 3
    assert policy_get().base_rate == 3


def test_a_change_in_another_process_is_seen_once_the_version_is_checked(db, settings):
    settings.CONFIG_VERSION_CHECK_SECONDS = 0
    EarningPolicy.objects.create(base_rate=Decimal(1))
    config_changed()
    assert policy_get().base_rate == 1
    # Another process's edit: the rows and the version move, this process's signals do not.
    EarningPolicy.objects.update(base_rate=Decimal(5))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_configversion SET version = version + 1 WHERE id = 1")
    assert policy_get().base_rate == 5


@pytest.mark.django_db(transaction=True)
def test_without_version_checks_a_process_keeps_its_copy(settings):
    settings.CONFIG_VERSION_CHECK_SECONDS = None
    ConfigVersion.objects.get_or_create(pk=1)
    EarningPolicy.objects.create(base_rate=Decimal(1))
    config_changed()
    assert policy_get().base_rate == 1
    EarningPolicy.objects.update(base_rate=Decimal(5))
    assert policy_get().base_rate == 1  # kept: nothing said it changed
    config_changed()
    assert policy_get().base_rate == 5


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_is_not_kept():
    from tests.conftest import tier_levels_restore

    tier_levels_restore()
    ConfigVersion.objects.get_or_create(pk=1)
    before = next(lv for lv in tier_levels() if lv.code == "gold").qualify_spend

    class Refused(Exception):
        pass

    with pytest.raises(Refused), transaction.atomic():
        gold = TierLevel.objects.get(code="gold")
        gold.qualify_spend = before + 1
        gold.save()
        # Inside the block the change is read (and not kept) ...
        assert next(lv for lv in tier_levels() if lv.code == "gold").qualify_spend == before + 1
        raise Refused
    # ... and after the rollback the committed rows are read again.
    assert next(lv for lv in tier_levels() if lv.code == "gold").qualify_spend == before


def test_a_change_moves_the_version_row(db):
    version = ConfigVersion.objects.get(pk=1).version
    EarningPolicy.objects.create()
    assert ConfigVersion.objects.get(pk=1).version == version + 1


def test_a_value_read_while_another_thread_dropped_the_copies_is_not_kept(db):
    from core.config import config_cache_clear, config_cached

    reads = []

    @config_cached
    def figures() -> int:
        reads.append(1)
        if len(reads) == 1:
            config_cache_clear()  # another thread saw the version move while this one read
        return len(reads)

    assert figures() == 1  # served once ...
    assert figures() == 2  # ... and read again, not kept
    assert figures() == 2  # now kept


def test_a_level_made_behind_the_ladders_back_is_read_not_a_key_error(db):
    from tiers.selectors import tier_level_of

    tier_levels()
    (extra,) = TierLevel.objects.bulk_create([TierLevel(rank=99, code="jade", name_zh="翡翠")])
    assert tier_level_of(extra.pk) == extra

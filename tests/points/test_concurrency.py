"""Many tills at once: PostgreSQL row locks keep the ledger right under concurrency."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from points.ledger import PointsError
from points.models import Account, Coupon, LedgerTransaction, Purchase, Reward
from points.services import purchase_record, reward_redeem
from tests.factories import MemberFactory, StoreFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(count: int, work) -> Counter:
    """Start `count` threads at one barrier; count what each returned or raised."""
    barrier = threading.Barrier(count)
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait()
            result = work(i)
        except PointsError as error:
            result = error.code
        except Exception as error:
            result = f"unexpected {type(error).__name__}: {error}"
        finally:
            connection.close()
        with lock:
            outcomes[result] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture
def cny10():
    return Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="10元券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )


def test_fifty_concurrent_redemptions_when_the_balance_covers_one(cny10):
    store = StoreFactory()
    member = MemberFactory()
    purchase_record(
        member=member,
        store=store,
        receipt_no="R1",
        occurred_at=timezone.now(),
        amount=Decimal(1500),
    )

    outcomes = race(
        50, lambda i: reward_redeem(member=member, reward=cny10, idempotency_key=f"k{i}") and "ok"
    )

    assert outcomes == Counter({"ok": 1, "insufficient_points": 49})
    account = Account.objects.get(member=member)
    assert account.balance == 500
    assert Coupon.objects.count() == 1


@pytest.mark.parametrize("fast_path", [True, False], ids=["function", "orm"])
def test_fifty_concurrent_replays_of_one_purchase_post_once(settings, fast_path):
    settings.POINTS_PURCHASE_FAST_PATH = fast_path
    store = StoreFactory()
    member = MemberFactory()
    when = timezone.now()

    outcomes = race(
        50,
        lambda i: (
            purchase_record(
                member=member,
                store=store,
                receipt_no="R1",
                occurred_at=when,
                amount=Decimal("88.80"),
            ).created
        ),
    )

    assert outcomes == Counter({True: 1, False: 49})
    assert Purchase.objects.count() == 1
    assert LedgerTransaction.objects.filter(kind="earn").count() == 1
    assert Account.objects.get(member=member).balance == 88


def test_twenty_racers_for_the_last_unit_of_stock_get_one_coupon(cny10):
    cny10.stock = 1
    cny10.save()
    store = StoreFactory()
    members = [MemberFactory() for _ in range(20)]
    for i, member in enumerate(members):
        purchase_record(
            member=member,
            store=store,
            receipt_no=f"R{i}",
            occurred_at=timezone.now(),
            amount=Decimal(1000),
        )

    outcomes = race(
        20,
        lambda i: reward_redeem(member=members[i], reward=cny10, idempotency_key=f"k{i}") and "ok",
    )

    assert outcomes == Counter({"ok": 1, "out_of_stock": 19})
    cny10.refresh_from_db()
    assert cny10.stock == 0
    assert Coupon.objects.count() == 1
    assert (
        sorted(Account.objects.filter(kind="member").values_list("balance", flat=True))
        == [0] + [1000] * 19
    )

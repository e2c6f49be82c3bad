"""Two tills send one receipt number for different members at the same moment: one purchase
is recorded (201), the other till gets 409 `idempotency_conflict`, never a 500.

Each request locks its own member's account, so neither waits for the other before its
replay check: both find no purchase, and the second one's insert waits on the first's
uncommitted row and then fails on the unique key. Here the first till's purchase is held
uncommitted until the second request is seen waiting on it, so that moment always comes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from members.services import api_token_create
from points.ledger import IdempotencyConflict
from points.models import LedgerTransaction, Purchase, Redemption, Reward
from points.services import purchase_record, reward_redeem
from tests.factories import MemberFactory, StoreFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Till(threading.Thread):
    """The second till, in a thread of its own: it names its database connection's backend
    before it sends anything, so that only that backend's waiting is watched for."""

    def __init__(self, work: Callable[[], None]) -> None:
        super().__init__()
        self.work = work
        self.pid: int | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self.pid = cursor.fetchone()[0]
            self.connected.set()
            self.work()
        finally:
            self.connected.set()
            connection.close()


def wait_while_it_runs_until_it_waits_on_a_lock(till: Till) -> bool:
    """Poll until the till's own backend is blocked by another (its insert waiting on our
    row): True; False if the till finished without ever waiting (the race did not happen).
    Other backends of the server (another test run, say) are not looked at."""
    till.connected.wait()
    while till.is_alive() and till.pid is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT cardinality(pg_blocking_pids(%s))", [till.pid])
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("fast_path", [True, False], ids=["function", "orm"])
def test_one_receipt_for_two_members_at_once_is_one_201_and_one_409(settings, fast_path):
    settings.POINTS_PURCHASE_FAST_PATH = fast_path
    store = StoreFactory(code="SH001")
    first, second = MemberFactory(), MemberFactory()
    _token, raw = api_token_create(store=store)
    when = timezone.localtime().replace(microsecond=0)
    answers = {}

    def second_till() -> None:
        response = Client().post(
            "/api/v1/purchases",
            json.dumps(
                {
                    "member_no": second.member_no,
                    "store": "SH001",
                    "receipt_no": "R1",
                    "occurred_at": when.isoformat(),
                    "amount": "50.00",
                }
            ),
            content_type="application/json",
            headers={"Authorization": f"Bearer {raw}", "Accept-Language": "en"},
        )
        answers["second"] = (response.status_code, response.json())

    with transaction.atomic():
        held = purchase_record(
            member=first, store=store, receipt_no="R1", occurred_at=when, amount=Decimal(88)
        )
        thread = Till(second_till)
        thread.start()
        waited = wait_while_it_runs_until_it_waits_on_a_lock(thread)
    thread.join()
    assert waited, answers  # the second till really waited on the first one's row

    assert held.created
    status, body = answers["second"]
    assert status == 409
    assert body["error"] == "idempotency_conflict"
    purchase = Purchase.objects.get()
    assert purchase.member == first and purchase.amount == Decimal(88)
    assert LedgerTransaction.objects.filter(member_id=second.pk).count() == 0


def test_one_redemption_key_for_two_members_at_once_posts_once_and_refuses_the_other():
    store = StoreFactory(code="SH001")
    first, second = MemberFactory(), MemberFactory()
    for number, member in enumerate((first, second)):
        purchase_record(
            member=member,
            store=store,
            receipt_no=f"OPEN{number}",
            occurred_at=timezone.now(),
            amount=Decimal(2000),
        )
    reward = Reward.objects.create(
        code="CNY10", kind="amount_off", name_zh="10元券", points_price=1000, amount_off=10
    )
    answers = {}

    def second_till() -> None:
        try:
            reward_redeem(member=second, reward=reward, idempotency_key="api:SH001:k1")
            answers["second"] = "redeemed"
        except IdempotencyConflict as error:
            answers["second"] = error.code
        except Exception as error:  # what the till would have got as a 500
            answers["second"] = repr(error)

    with transaction.atomic():
        reward_redeem(member=first, reward=reward, idempotency_key="api:SH001:k1")
        thread = Till(second_till)
        thread.start()
        waited = wait_while_it_runs_until_it_waits_on_a_lock(thread)
    thread.join()
    assert waited, answers  # the second till really waited on the first one's row

    assert answers["second"] == "idempotency_conflict"
    assert Redemption.objects.get().member == first

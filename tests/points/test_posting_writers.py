"""The PostgreSQL posting writer (one set-based statement) writes what the ORM writer writes.

Each worked example runs twice, for two members alike in all but their numbers: once with
the ORM writer (POINTS_PURCHASE_FAST_PATH off, the reference) and once with the statement,
and every row the purchases wrote — purchase, lines, ledger transaction, entries, lot, lot
movements, the account's figures, tier activity, tier status, history and notices, audit
entries, messages sent — must be the same. The clock stands still, so the times written
are the same too. These tests commit (no test transaction), as in production.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models import Sum

from core.config import config_changed
from members.models import AuditEntry, Member
from points import earning
from points.jobs import reconcile_job
from points.ledger import IdempotencyConflict, PointsError, system_account
from points.models import (
    Account,
    CategoryRate,
    EarningPolicy,
    Entry,
    LedgerTransaction,
    Lot,
    LotMovement,
    Purchase,
    PurchaseLine,
    Reward,
)
from points.posting import writers
from points.services import (
    LineInput,
    MemberInactive,
    purchase_record,
    return_record,
    reward_redeem,
)
from tests.factories import MemberFactory, StoreFactory, UserFactory
from tiers.models import MemberTier, QualifyingActivity, TierHistory, TierLevel, TierNotice
from tiers.services import tier_override_set

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SH = ZoneInfo("Asia/Shanghai")
MARCH = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)
NOW = datetime.datetime(2026, 3, 20, 12, 0, tzinfo=SH)  # not quiet hours: notices go out


@pytest.fixture(autouse=True)
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture(autouse=True)
def _issuance_account():
    # Made by a data migration, which the flush of an earlier test took away.
    system_account(Account.Kind.ISSUANCE)


@pytest.fixture
def store():
    return StoreFactory(code="SH001")


class Outcomes(list):
    """The writer's answers, in order; `statements`: the batches the set-based statement
    wrote (none when the ORM writer wrote them)."""

    statements = 0

    def clear(self) -> None:
        super().clear()
        self.statements = 0


@pytest.fixture
def outcomes(monkeypatch) -> Outcomes:
    seen = Outcomes()
    write = writers.postings_write
    run = writers.PgStatement.run
    run_one = writers.PgStatement.run_one

    def spy(**kwargs):
        answers = write(**kwargs)
        seen.extend(answer.outcome for answer in answers)
        return answers

    def statement(self, *args, **kwargs):
        seen.statements += 1
        return run(self, *args, **kwargs)

    def one_statement(self, *args, **kwargs):
        rows = run_one(self, *args, **kwargs)
        if rows and rows[0][0] is not None:  # written (else the general steps write it)
            seen.statements += 1
        return rows

    monkeypatch.setattr("points.services.postings_write", spy)
    monkeypatch.setattr(writers, "postings_write", spy)
    monkeypatch.setattr(writers.PgStatement, "run", statement)
    monkeypatch.setattr(writers.PgStatement, "run_one", one_statement)
    return seen


class Till:
    """Purchases of one member; receipts carry a prefix that `rows` takes out again."""

    def __init__(self, member: Member, store, prefix: str) -> None:
        self.member = member
        self.store = store
        self.prefix = prefix

    def buy(
        self,
        receipt: str,
        amount: str,
        *,
        when=MARCH,
        lines=(),
        channel="store",
        points_to_use=0,
        actor=None,
    ):
        """(points earned, created), or the error's class name."""
        try:
            result = purchase_record(
                member=self.member,
                store=self.store,
                receipt_no=self.prefix + receipt,
                occurred_at=when,
                amount=Decimal(amount),
                channel=channel,
                lines=list(lines),
                points_to_use=points_to_use,
                actor=actor,
            )
        except PointsError as error:
            return type(error).__name__
        # What the caller gets must be what was stored.
        stored = Purchase.objects.get(pk=result.purchase.pk)
        for field in ("points_earned", "eligible_amount", "amount", "earn_transaction_id"):
            assert getattr(result.purchase, field) == getattr(stored, field), field
        return result.purchase.points_earned, result.created


def rows(member: Member, prefix: str) -> dict[str, object]:
    """Every row the member's purchases wrote, without ids and the receipts' prefix."""

    def unprefixed(value):
        if isinstance(value, str):
            return value.replace(prefix, "")
        if isinstance(value, dict):
            return {key: unprefixed(item) for key, item in value.items()}
        return value

    def clean(values):
        return tuple(unprefixed(v) for v in values)

    def listed(queryset, *fields):
        return [clean(values) for values in queryset.values_list(*fields)]

    for purchase in Purchase.objects.filter(member=member).select_related("earn_transaction"):
        if purchase.earn_transaction is not None:
            assert purchase.fingerprint == purchase.earn_transaction.fingerprint
    return {
        "account": listed(
            Account.objects.filter(member=member),
            "kind",
            "balance",
            "debt",
            "lifetime_earned",
            "updated_at",
        ),
        "purchases": listed(
            Purchase.objects.filter(member=member).order_by("id"),
            "store__code",
            "channel",
            "receipt_no",
            "occurred_at",
            "amount",
            "points_used",
            "eligible_amount",
            "points_earned",
            "returned_amount",
            "earn_transaction__idempotency_key",
            "payment_transaction__idempotency_key",
            "recorded_by",
            "recorded_at",
            "history",
        ),
        "lines": listed(
            PurchaseLine.objects.filter(purchase__member=member).order_by("id"),
            "purchase__receipt_no",
            "sku",
            "category",
            "quantity",
            "amount",
        ),
        "transactions": listed(
            LedgerTransaction.objects.filter(member=member).order_by("id"),
            "kind",
            "idempotency_key",
            "source",
            "source_ref",
            "reason",
            "occurred_at",
            "recorded_at",
            "actor",
            "member_amount",
            "reverses__idempotency_key",
        ),
        "entries": listed(
            Entry.objects.filter(transaction__member=member).order_by("transaction_id", "id"),
            "transaction__idempotency_key",
            "account__kind",
            "amount",
        ),
        "lots": listed(
            Lot.objects.filter(account__member=member).order_by("id"),
            "transaction__idempotency_key",
            "points",
            "remaining",
            "earned_at",
            "available_at",
            "expires_at",
        ),
        "movements": listed(
            LotMovement.objects.filter(transaction__member=member).order_by("id"),
            "lot__transaction__idempotency_key",
            "transaction__idempotency_key",
            "amount",
        ),
        "activity": listed(
            QualifyingActivity.objects.filter(member=member).order_by("id"),
            "occurred_at",
            "spend",
            "points",
            "source",
        ),
        "tier": listed(
            MemberTier.objects.filter(member=member),
            "level__code",
            "achieved_at",
            "period_start",
            "counts_from",
            "valid_until",
            "override_until",
            "prior_level",
            "updated_at",
        ),
        "history": listed(
            TierHistory.objects.filter(member=member).order_by("id"),
            "from_level__code",
            "to_level__code",
            "reason",
            "at",
            "valid_until",
            "note",
            "actor",
            "recorded_at",
        ),
        "notices": listed(TierNotice.objects.filter(member=member), "sent_at", "channels"),
        "audit": listed(
            AuditEntry.objects.filter(member=member, action__startswith="purchase.").order_by("id"),
            "actor",
            "action",
            "target_type",
            "details",
        ),
    }


def both_ways(settings, store, sms_outbox, outcomes, scenario, **member_fields):
    """Run `scenario(till)` with the ORM writer, then with the statement; return the answers
    and the statement's outcomes."""
    seen = {}
    for fast in (False, True):
        settings.POINTS_PURCHASE_FAST_PATH = fast
        outcomes.clear()
        sms_outbox.clear()
        member = MemberFactory(**{"consent_sms": True, **member_fields})
        prefix = "fast-" if fast else "orm-"
        answers = scenario(Till(member, store, prefix))
        member_rows = rows(member, prefix)
        member_rows["sms"] = [m.text for m in sms_outbox if m.phone == member.phone]
        seen[fast] = (answers, member_rows, list(outcomes), outcomes.statements)
    orm, fast = seen[False], seen[True]
    assert orm[3] == 0, "the ORM writer must not run the statement"
    # Every purchase written on PostgreSQL takes the statement, whatever it holds.
    assert fast[3] == fast[2].count("created")
    for key in orm[1]:
        assert fast[1][key] == orm[1][key], key
    assert fast[:3] == orm[:3]
    return orm[0], fast[2]


def test_a_plain_purchase(settings, store, sms_outbox, outcomes):
    answers, calls = both_ways(
        settings, store, sms_outbox, outcomes, lambda till: [till.buy("R1", "128.50")]
    )
    assert answers == [(128, True)]
    assert calls == ["created"]


def test_the_first_purchase_creates_the_account_and_the_next_ones_use_it(
    settings, store, sms_outbox, outcomes
):
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [
            till.buy("R1", "10"),
            till.buy("R2", "20.99", channel="online"),
            till.buy("R3", "0.50"),  # earns nothing: no ledger transaction, still activity
        ],
    )
    assert answers == [(10, True), (20, True), (0, True)]
    assert calls == ["created"] * 3


def test_lines_with_excluded_and_special_rate_categories(settings, store, sms_outbox, outcomes):
    CategoryRate.objects.create(category="gift_card", rate=0)
    CategoryRate.objects.create(category="cosmetics", rate=Decimal("2.5"))
    lines = [
        LineInput(sku="GC100", category="gift_card", amount=Decimal("100")),
        LineInput(sku="LIP", category="cosmetics", amount=Decimal("33.33"), quantity=Decimal(3)),
        LineInput(sku="TEE", category="apparel", amount=Decimal("66.67")),
    ]
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [
            till.buy("R1", "200", lines=lines),
            till.buy("R2", "100", lines=lines[:1]),  # a gift card only: nothing earned
        ],
    )
    assert answers == [(149, True), (0, True)]  # 0 + 83.325 + 66.67 → 149
    assert calls == ["created", "created"]


def test_the_birthday_month_earns_double(settings, store, sms_outbox, outcomes):
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [
            till.buy("R1", "100"),
            till.buy("R2", "100", when=MARCH - datetime.timedelta(days=25)),  # February
        ],
        birthday=datetime.date(1990, 3, 2),
    )
    assert answers == [(200, True), (100, True)]
    assert calls == ["created", "created"]


def test_the_largest_legal_purchase_posts_and_balances_past_2_to_the_31(
    settings, store, sms_outbox, outcomes
):
    """The cap (¥200,000) × the largest category rate (9,999.99, relative to a base rate of
    0.01) × the largest tier multiplier (99.99) × the birthday month's (99.99): some 2 × 10^13
    points a purchase, in every column on both paths; then a whole return of one of them."""
    EarningPolicy.objects.create(base_rate=Decimal("0.01"), birthday_multiplier=Decimal("99.99"))
    CategoryRate.objects.create(category="gold", rate=Decimal("9999.99"))
    TierLevel.objects.update(earn_multiplier=Decimal("99.99"))
    config_changed()
    gold = [LineInput(sku="BAR", category="gold", amount=Decimal("200000.00"))]

    def scenario(till):
        answers = [
            till.buy("R1", "200000.00", lines=gold),
            till.buy("R2", "200000.00", lines=gold),
        ]
        returned = return_record(
            store=store,
            receipt_no=till.prefix + "RT1",
            original_receipt_no=till.prefix + "R1",
            amount=Decimal("200000.00"),
            occurred_at=MARCH + datetime.timedelta(hours=1),
        )
        return [*answers, returned.purchase_return.points_reversed]

    answers, calls = both_ways(
        settings, store, sms_outbox, outcomes, scenario, birthday=datetime.date(1990, 3, 2)
    )
    # 200,000 × 9,999.99 × 99.99 × 99.99, rounded down.
    most = 19_995_980_203_999
    assert answers == [(most, True), (most, True), most]
    assert calls == ["created", "created"]
    assert most > 2**31
    member = Purchase.objects.get(receipt_no="fast-R1").member
    account = Account.objects.get(member=member)
    assert (account.balance, account.lifetime_earned) == (most, most)
    assert Purchase.objects.get(receipt_no="fast-R2").eligible_amount == Decimal("199999800000.00")
    assert QualifyingActivity.objects.filter(member=member).aggregate(total=Sum("points")) == {
        "total": most
    }
    _checked, details = reconcile_job(NOW.date())
    assert details["mismatches"] == details["unbalanced_transactions"] == []


def test_debt_is_paid_before_a_lot_is_filled(settings, store, sms_outbox, outcomes):
    reward = Reward.objects.create(
        code="CNY10",
        kind="amount_off",
        name_zh="10元券",
        name_en="¥10 off",
        points_price=1000,
        amount_off=Decimal(10),
    )

    def scenario(till):
        answers = [till.buy("R1", "1000")]
        reward_redeem(member=till.member, reward=reward, idempotency_key=till.prefix + "k1")
        return_record(
            store=till.store,
            receipt_no=till.prefix + "X1",
            original_receipt_no=till.prefix + "R1",
            amount=Decimal("1000"),
            occurred_at=MARCH,
        )
        assert Account.objects.get(member=till.member).debt == 1000
        answers.append(till.buy("R2", "300"))  # all of it pays debt: no lot
        answers.append(till.buy("R3", "1000"))  # 700 debt, 300 into a lot
        return answers

    answers, calls = both_ways(settings, store, sms_outbox, outcomes, scenario)
    assert answers == [(1000, True), (300, True), (1000, True)]
    assert calls == ["created", "created", "created"]


def test_pending_days_delay_the_points(settings, store, sms_outbox, outcomes):
    EarningPolicy.objects.create(pending_days=7, base_rate=Decimal("1.5"))
    answers, calls = both_ways(
        settings, store, sms_outbox, outcomes, lambda till: [till.buy("R1", "99.99")]
    )
    assert answers == [(149, True)]
    assert calls[-1] == "created"


def test_a_replay_gets_the_first_answer_and_other_details_are_refused(
    settings, store, sms_outbox, outcomes
):
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [
            till.buy("R1", "100"),
            till.buy("R1", "100"),
            till.buy("R1", "101"),
            till.buy("R1", "100", channel="online"),
        ],
    )
    assert answers == [
        (100, True),
        (100, False),
        IdempotencyConflict.__name__,
        IdempotencyConflict.__name__,
    ]
    assert calls == ["created", "replayed", "conflict", "conflict"]


def test_the_same_receipt_for_another_member_is_refused_and_writes_nothing(store, outcomes):
    first = MemberFactory()
    Till(first, store, "").buy("R1", "100")
    other = MemberFactory()  # no account yet: the one the call creates is taken back

    assert Till(other, store, "").buy("R1", "100") == IdempotencyConflict.__name__
    assert outcomes == ["created", "conflict"]
    assert not Account.objects.filter(member=other).exists()


def test_an_upgrade_is_made_in_the_purchase_and_told_after_commit(
    settings, store, sms_outbox, outcomes
):
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [
            till.buy("R1", "1500"),
            till.buy("R2", "600"),  # ¥2,100 in 12 months: Silver
            till.buy("R3", "100"),  # at Silver's ×1.2
            till.buy("R4", "9000"),  # Silver to Platinum? ¥11,200: Gold
        ],
    )
    assert answers == [(1500, True), (600, True), (120, True), (10800, True)]
    assert calls == ["created"] * 4


def test_an_upgrade_of_a_member_no_channel_reaches_is_settled_at_once(
    settings, store, sms_outbox, outcomes
):
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [till.buy("R1", "2500"), till.buy("R2", "6000")],
        consent_sms=False,
    )
    assert (answers, calls) == ([(2500, True), (7200, True)], ["created", "created"])
    assert TierNotice.objects.filter(sent_at__isnull=True).count() == 0
    assert TierNotice.objects.count() == 4


def test_an_upgrade_inside_the_callers_transaction(settings, store, sms_outbox, outcomes):
    def scenario(till):
        with transaction.atomic():
            answers = [till.buy("R1", "2500"), till.buy("R1", "2500"), till.buy("R2", "10")]
            assert till.buy("R1", "1") == IdempotencyConflict.__name__
        return answers

    answers, calls = both_ways(settings, store, sms_outbox, outcomes, scenario)
    assert answers == [(2500, True), (2500, False), (12, True)]
    assert calls == ["created", "replayed", "created", "conflict"]


def test_an_inactive_member_earns_nothing_but_a_replay_gets_its_answer(
    settings, store, sms_outbox, outcomes
):
    def scenario(till):
        answers = [till.buy("R1", "100")]
        Member.objects.filter(pk=till.member.pk).update(status=Member.Status.FROZEN)
        till.member.refresh_from_db()
        answers += [till.buy("R1", "100"), till.buy("R2", "100")]
        return answers

    answers, calls = both_ways(settings, store, sms_outbox, outcomes, scenario)
    assert answers == [(100, True), (100, False), MemberInactive.__name__]
    assert calls == ["created", "replayed", "inactive"]


def test_a_frozen_member_without_an_account_gets_none(store, outcomes):
    member = MemberFactory(status=Member.Status.FROZEN)
    assert Till(member, store, "").buy("R1", "100") == MemberInactive.__name__
    assert outcomes == ["inactive"]
    assert not Account.objects.filter(member=member).exists()


def test_an_edited_policy_or_tier_multiplier_takes_effect_at_once(store, outcomes):
    policy = EarningPolicy.objects.create()
    till = Till(MemberFactory(), store, "")
    assert till.buy("R1", "100") == (100, True)
    # Edited as an administrator does (a saved form): the next purchase sees it, though the
    # rules are kept per process.
    policy.base_rate = 2
    policy.save()
    assert till.buy("R2", "100") == (200, True)
    # A bulk update sends no signal: whoever does one says the configuration changed.
    TierLevel.objects.filter(rank=1).update(earn_multiplier=Decimal("1.50"))
    config_changed()
    assert till.buy("R3", "100") == (300, True)
    CategoryRate.objects.create(category="snacks", rate=Decimal(1))
    snacks = [LineInput(sku="S", category="snacks", amount=Decimal(100))]
    assert till.buy("R4", "100", lines=snacks) == (150, True)  # 100 × 1/2 × 2 × 1.5
    assert outcomes == ["created"] * 4
    assert outcomes.statements == 4


def test_a_referees_first_purchase_takes_the_statement_and_pays_the_referrer(store, outcomes):
    referrer = MemberFactory()
    referee = MemberFactory(referrer=referrer)
    till = Till(referee, store, "")
    assert till.buy("R1", "100") == (100, True)
    assert till.buy("R2", "100") == (100, True)
    assert outcomes == ["created", "created"]
    assert outcomes.statements == 2
    assert LedgerTransaction.objects.get(idempotency_key=f"rule:referral:{referee.pk}")
    assert Account.objects.get(member=referrer).balance == EarningPolicy().referral_bonus


def race(count: int, work) -> Counter:
    barrier = threading.Barrier(count)
    results: Counter = Counter()
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            result = work()
        except PointsError as error:
            result = error.code
        except Exception as error:
            result = f"unexpected {type(error).__name__}: {error}"
        finally:
            connection.close()
        with lock:
            results[result] += 1

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_fifty_concurrent_replays_for_an_existing_account_post_once(store, outcomes):
    # Without an account yet (created in the function, racing itself): test_concurrency.
    member = MemberFactory()
    Till(member, store, "").buy("R0", "1")
    when = datetime.datetime(2026, 3, 15, 14, 0, tzinfo=SH)

    results = race(
        50,
        lambda: (
            purchase_record(
                member=member,
                store=store,
                receipt_no="R1",
                occurred_at=when,
                amount=Decimal("88.80"),
            ).created
        ),
    )

    assert results == Counter({True: 1, False: 49})
    assert Purchase.objects.filter(receipt_no="R1").count() == 1
    assert Account.objects.get(member=member).balance == 89
    assert Counter(outcomes) == Counter({"created": 2, "replayed": 49})


def test_an_upgrade_over_a_manual_tier_ends_it(settings, store, sms_outbox, outcomes):
    gold = TierLevel.objects.get(code="gold")
    staff = UserFactory()

    def scenario(till):
        tier_override_set(
            member=till.member,
            level=gold,
            until=datetime.date(2026, 12, 31),
            reason="VIP",
            actor=staff,
            now=NOW,
        )
        return [till.buy("R1", "5000"), till.buy("R2", "16000")]  # ¥21,000: Platinum

    answers, calls = both_ways(settings, store, sms_outbox, outcomes, scenario)
    assert answers == [(7500, True), (24000, True)]
    assert calls == ["created", "created"]


def test_an_upgrade_in_quiet_hours_is_told_by_the_morning_job(
    settings, store, sms_outbox, outcomes, time_machine
):
    time_machine.move_to(NOW.replace(hour=22), tick=False)
    answers, calls = both_ways(
        settings, store, sms_outbox, outcomes, lambda till: [till.buy("R1", "2500")]
    )
    assert (answers, calls) == ([(2500, True)], ["created"])
    assert TierNotice.objects.filter(sent_at__isnull=True).count() == 2


def locked_elsewhere(sql: str, params: list) -> bool:
    """Whether another connection finds the row locked (FOR UPDATE NOWAIT refused)."""
    seen = {}

    def probe():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql + " FOR UPDATE NOWAIT", params)
            seen["locked"] = False
        except OperationalError:
            seen["locked"] = True
        finally:
            connection.close()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return seen["locked"]


@pytest.mark.parametrize("fast", [False, True])
def test_a_purchase_holds_the_tier_row_as_the_nightly_evaluation_would_wait_for_it(
    settings, store, outcomes, fast
):
    settings.POINTS_PURCHASE_FAST_PATH = fast
    member = MemberFactory()
    Till(member, store, "").buy("R0", "2500")  # Silver: the member has a tier row
    assert MemberTier.objects.filter(member=member).exists()

    with transaction.atomic():
        Till(member, store, "").buy("R1", "10")  # no upgrade
        locked = locked_elsewhere(
            "SELECT 1 FROM tiers_membertier WHERE member_id = %s", [member.pk]
        )

    assert locked
    assert outcomes == ["created", "created"]
    assert outcomes.statements == (2 if fast else 0)


def test_a_refusal_in_a_callers_transaction_lets_go_of_the_account(store, outcomes):
    first = MemberFactory()
    Till(first, store, "").buy("R1", "100")
    other = MemberFactory()
    Till(other, store, "").buy("R0", "5")  # has an account of its own

    with transaction.atomic():
        with pytest.raises(IdempotencyConflict):
            purchase_record(
                member=other,
                store=store,
                receipt_no="R1",
                occurred_at=MARCH,
                amount=Decimal("100"),
            )
        # The caller goes on (another sale, say): the member's account is not held.
        locked = locked_elsewhere("SELECT 1 FROM points_account WHERE member_id = %s", [other.pk])

    assert not locked
    assert outcomes == ["created", "created", "conflict"]


def test_the_old_purchase_function_is_gone():
    """Nothing decides a purchase in PL/pgSQL any more (migration points/0024)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'points_purchase_post'")
        assert cursor.fetchone()[0] == 0


# --- What used to force the ORM path: the same rows by both writers --------------------------


def test_a_multiplier_promotion(settings, store, sms_outbox, outcomes, monkeypatch):
    monkeypatch.setattr(earning, "_promotion_providers", [])
    earning.register_promotion_provider(
        lambda context: Decimal(3) if "toys" in context.categories else None
    )
    toys = [LineInput(sku="LEGO", category="toys", amount=Decimal("80"))]
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [till.buy("R1", "80", lines=toys), till.buy("R2", "80")],
        birthday=datetime.date(1990, 3, 2),  # ×2 in March: the best one (×3) applies
    )
    assert answers == [(240, True), (160, True)]
    assert calls == ["created", "created"]


def test_a_purchase_recorded_by_a_signed_in_cashier(settings, store, sms_outbox, outcomes):
    cashier = UserFactory(is_staff=True, is_superuser=True)
    answers, calls = both_ways(
        settings,
        store,
        sms_outbox,
        outcomes,
        lambda till: [till.buy("R1", "58.80", actor=cashier), till.buy("R1", "58.80")],
    )
    assert answers == [(58, True), (58, False)]
    assert calls == ["created", "replayed"]
    audits = AuditEntry.objects.filter(action="purchase.record").order_by("id")
    assert [entry.details for entry in audits] == [
        {"receipt_no": "orm-R1", "amount": "58.80", "points": 58},
        {"receipt_no": "fast-R1", "amount": "58.80", "points": 58},
    ]


def test_points_used_as_payment_spend_the_soonest_expiring_lots(
    settings, store, sms_outbox, outcomes
):
    def scenario(till):
        answers = [
            till.buy("R1", "300", when=MARCH - datetime.timedelta(days=20)),  # expires first
            till.buy("R2", "300"),
            # ¥4 paid with 400 points: ¥96 earns 96.
            till.buy("R3", "100", points_to_use=400),
            till.buy("R4", "100", points_to_use=150),  # not in steps of 100
            till.buy("R5", "10", points_to_use=5000),  # more than there is
        ]
        return answers

    answers, calls = both_ways(settings, store, sms_outbox, outcomes, scenario)
    assert answers == [
        (300, True),
        (300, True),
        (96, True),
        "InvalidPurchase",
        "InvalidPurchase",
    ]
    assert calls == ["created"] * 3


def test_a_referees_first_purchase_pays_the_referrer_by_both_writers(
    settings, store, sms_outbox, outcomes
):
    referrer = MemberFactory()

    def scenario(till):
        return [till.buy("R1", "100"), till.buy("R2", "100")]

    answers, calls = both_ways(settings, store, sms_outbox, outcomes, scenario, referrer=referrer)
    assert answers == [(100, True), (100, True)]
    assert calls == ["created"] * 2
    assert Account.objects.get(member=referrer).balance == 2 * EarningPolicy().referral_bonus


def _history_posting(member, store, receipt):
    from points.earning import earning_rules
    from points.posting import MemberFacts, PlannedLine, purchase_plan

    return purchase_plan(
        member=MemberFacts(member_id=member.pk, member_no=member.member_no),
        store_id=store.pk,
        store_code=store.code,
        receipt_no=receipt,
        channel="store",
        occurred_at=MARCH,
        amount=Decimal("2500.00"),
        lines=[PlannedLine(sku="TV", category="", quantity=Decimal(1), amount=Decimal("2500.00"))],
        rules=earning_rules(),
        history=True,
    )


def test_a_history_purchase_counts_for_tiers_and_posts_no_points(
    settings, store, sms_outbox, outcomes
):
    def scenario(till):
        posting = _history_posting(till.member, till.store, till.prefix + "H1")
        (answer,) = writers.postings_write(postings=[posting], now=NOW, upgrades=False)
        returned = return_record(
            store=till.store,
            receipt_no=till.prefix + "X1",
            original_receipt_no=till.prefix + "H1",
            amount=Decimal("500"),
            occurred_at=MARCH + datetime.timedelta(hours=1),
        )
        return [answer.outcome, returned.points_reversed, returned.history]

    answers, _calls = both_ways(settings, store, sms_outbox, outcomes, scenario)
    assert answers == ["created", 0, True]
    purchase = Purchase.objects.get(receipt_no="fast-H1")
    assert (purchase.history, purchase.points_earned, purchase.earn_transaction) == (
        True,
        0,
        None,
    )
    assert not LedgerTransaction.objects.filter(member=purchase.member).exists()
    assert list(
        QualifyingActivity.objects.filter(member=purchase.member).values_list("spend", "points")
    ) == [(Decimal("2500.00"), 0), (Decimal("-500.00"), 0)]


def test_a_batch_with_a_replayed_and_a_conflicting_receipt(settings, store, outcomes):
    from points.earning import earning_rules
    from points.posting import MemberFacts, purchase_plan

    rules = earning_rules()
    for fast in (False, True):
        settings.POINTS_PURCHASE_FAST_PATH = fast
        prefix = "fast-" if fast else "orm-"
        ann, bob = MemberFactory(), MemberFactory()
        Till(ann, store, prefix).buy("R1", "100")

        def plan(member, receipt, amount, prefix=prefix):
            return purchase_plan(
                member=MemberFacts(member_id=member.pk, member_no=member.member_no),
                store_id=store.pk,
                store_code=store.code,
                receipt_no=prefix + receipt,
                channel="store",
                occurred_at=MARCH,
                amount=Decimal(amount),
                rules=rules,
            )

        batch = [
            plan(bob, "R2", "20.00"),
            plan(ann, "R1", "100.00"),  # recorded before, the same: its first answer
            plan(bob, "R1", "100.00"),  # recorded before for Ann: a conflict
            plan(bob, "R3", "30.00"),
            plan(bob, "R2", "21.00"),  # earlier in this batch, other details
        ]
        answers = writers.postings_write(postings=batch, now=NOW)
        assert [a.outcome for a in answers] == [
            "created",
            "replayed",
            "conflict",
            "created",
            "conflict",
        ]
        first = Purchase.objects.get(receipt_no=prefix + "R1")
        assert answers[1].purchase_id == answers[2].purchase_id == first.pk
        assert answers[4].purchase_id == answers[0].purchase_id
        assert Account.objects.get(member=bob).balance == 50
        assert Purchase.objects.filter(member=bob).count() == 2


def test_a_live_purchase_counts_for_tiers_in_one_round_trip(store, outcomes):
    # The activity, the tier row's lock, the levels and the figures: one statement after the
    # ledger's (a purchase that upgrades nobody writes nothing more for tiers).
    from django.test.utils import CaptureQueriesContext

    till = Till(MemberFactory(), store, "")
    till.buy("R1", "10")
    with CaptureQueriesContext(connection) as queries:
        assert till.buy("R2", "10") == (10, True)
    tiers = [q["sql"] for q in queries.captured_queries if "tiers_" in q["sql"]]
    # The member's level (the earning rules and the ladder are kept per process), then one
    # round trip for tiers after the ledger's statement.
    assert len(tiers) == 2, tiers
    assert "points_earningpolicy" not in tiers[0]
    assert 'FROM "tiers_membertier"' in tiers[0]
    assert "INSERT INTO tiers_qualifyingactivity" in tiers[1]
    assert QualifyingActivity.objects.count() == 2
    # the member's level, BEGIN, the statement (the lock and the replay check inside), tiers,
    # the member's last purchase for analytics (points.hooks), COMMIT (then the test's own
    # read back).
    sql = [q["sql"].strip()[:30] for q in queries.captured_queries]
    assert sql.index("COMMIT") == 5, sql
    assert "UPDATE analytics_memberfigures" in queries.captured_queries[4]["sql"]
    assert "points_posting_lock(" in queries.captured_queries[2]["sql"]


def test_after_a_downgrade_only_the_activity_since_counts(settings, store, sms_outbox, outcomes):
    # counts_from later than the rolling 12 months' start: the purchases before it do not
    # count toward an upgrade, the one after it does.
    levels = list(TierLevel.objects.order_by("rank"))
    member = MemberFactory()
    till = Till(member, store, "")
    big = levels[1].qualify_spend
    MemberTier.objects.create(
        member=member,
        level=levels[0],
        achieved_at=MARCH - datetime.timedelta(days=1),
        period_start=MARCH - datetime.timedelta(days=1),
        counts_from=MARCH - datetime.timedelta(days=1),
    )
    QualifyingActivity.objects.create(
        member=member,
        occurred_at=MARCH - datetime.timedelta(days=30),
        spend=big,
        points=0,
        source=QualifyingActivity.Source.PURCHASE,
    )
    till.buy("R1", "10")
    assert MemberTier.objects.get(member=member).level_id == levels[0].pk
    till.buy("R2", str(big))
    assert MemberTier.objects.get(member=member).level_id == levels[1].pk


def test_a_live_purchases_statements_are_prepared_once_per_connection(store):
    """Django switches psycopg's prepared statements off; the settings turn them back on
    for the statements asked to be prepared, or every purchase would parse and plan its
    statements again. A second purchase prepares nothing new."""
    member = MemberFactory()

    def prepared() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            return {statement for (statement,) in cursor.fetchall()}

    purchase_record(
        member=member, store=store, receipt_no="R-1", occurred_at=MARCH, amount=Decimal("10")
    )
    after_first = prepared()
    assert any("points_posting_lock" in statement for statement in after_first)
    assert any("INSERT INTO" in statement for statement in after_first)
    purchase_record(
        member=member, store=store, receipt_no="R-2", occurred_at=MARCH, amount=Decimal("20")
    )
    assert prepared() == after_first


def test_a_live_purchase_of_a_member_in_debt_or_without_an_account_writes_once(store, outcomes):
    # The one-statement purchase writes only for an account that exists and owes nothing;
    # otherwise it writes nothing and the general steps post it (the debt paid first).
    member = MemberFactory()
    till = Till(member, store, "")
    assert till.buy("R1", "10") == (10, True)  # no account yet: made by the general steps
    assert outcomes.statements == 1
    # (A debt made up here; test_debt_is_paid_before_a_lot_is_filled makes one the way a
    # return does and compares the writers.)
    Account.objects.filter(member=member).update(debt=4)
    assert till.buy("R2", "10") == (10, True)
    assert outcomes.statements == 2
    account = Account.objects.get(member=member)
    assert account.debt == 0
    assert Lot.objects.filter(account=account).order_by("id").last().remaining == 6
    assert till.buy("R3", "10") == (10, True)  # no debt left: the one statement
    assert outcomes.statements == 3
    assert Purchase.objects.filter(member=member).count() == 3
    assert LedgerTransaction.objects.filter(member_id=member.pk).count() == 3
    # A replay: the first answer, nothing written twice; other details: refused.
    assert till.buy("R2", "10") == (10, False)
    assert till.buy("R3", "11") == "IdempotencyConflict"
    assert Purchase.objects.filter(member=member).count() == 3

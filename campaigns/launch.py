"""Launching and sending campaigns, and the every-minute tick that does both when due.

Launch freezes the audience: one `CampaignMember` row per targeted member with its arm,
drawn once (`holdout.holdout_draw`) and written set-based in the same transaction that
marks the campaign launched — a worker killed mid-launch leaves nothing, and a second launch
finds the campaign launched and draws nothing again.

Send works through the treatment arm in batches (CAMPAIGN_BATCH_SIZE members), each batch
one transaction: the bonus points (`points_credit_bulk`, key `campaign:<id>:member:<id>`),
the coupons, the messages, then `done_at`. A killed worker loses at most the batches in
flight, which rolled back whole; a rerun picks up the members still not done and skips any
ledger key that exists. One send of a campaign runs at a time (an advisory lock), its
batches on CAMPAIGN_SEND_WORKERS connections. The control arm is never read by the send:
it gets nothing.

The tick (beat, every minute) launches what is due, goes on with running campaigns,
completes promotions whose window has passed and dispatches the outbox; one tick at a time.
"""

from __future__ import annotations

import contextlib
import datetime
import zlib
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from core.bulk import CopyLayout, copy_write, int_array, rows_update, text_array, use_copy
from core.jobs import on_connections
from members.models import Member
from members.services import audit_log
from points.earning import policy_get
from points.ledger import expiry_for, fingerprint
from points.ledger_bulk import BulkCredit, accounts_lock, points_credit_bulk
from points.models import Account, Coupon, LedgerTransaction, Reward
from points.selectors import reward_units_held
from points.services import coupon_code_generate
from tiers.models import MemberTier
from tiers.selectors import tier_levels

from . import messages
from .holdout import holdout_draw, holdout_salt, in_holdout
from .models import Campaign, CampaignMember
from .promotions import promotions_cache_clear
from .results import campaign_cost_estimate, campaign_needs_approval


class CampaignNotLaunchable(Exception):
    """The campaign is not in a state to launch (a draft, cancelled, waiting for approval)."""


def campaign_member_key(*, campaign_id: int, member_id: int) -> str:
    """The ledger idempotency key of a campaign's bonus to one member."""
    return f"campaign:{campaign_id}:member:{member_id}"


# --- Launch -----------------------------------------------------------------------------


def _audience_sql(*, campaign: Campaign, now: datetime.datetime) -> tuple[str, list[Any]]:
    """SQL of the targeted members' ids (column `member_id`): the segment's members, else
    (a multiplier promotion) the members at the campaign's tiers, else every active member."""
    if campaign.segment_id is not None:
        from .segments import segment_members_sql

        return segment_members_sql(rules=campaign.segment.rules, at=now)
    active = Member.objects.filter(status=Member.Status.ACTIVE)
    if campaign.kind == Campaign.Kind.MULTIPLIER and campaign.tiers:
        at_tiers = Q(
            pk__in=MemberTier.objects.filter(level__code__in=campaign.tiers).values("member")
        )
        levels = tier_levels()
        # A member with no tier row is at the base level (the first by rank).
        if levels and levels[0].code in campaign.tiers:
            at_tiers |= ~Q(pk__in=MemberTier.objects.values("member"))
        active = active.filter(at_tiers)
    sql, params = active.values(member_id=F("pk")).query.sql_with_params()
    return sql, list(params)


def _audience_ids(*, campaign: Campaign, now: datetime.datetime) -> list[int]:
    sql, params = _audience_sql(campaign=campaign, now=now)
    member = Member._meta.db_table
    # Only members open to marketing today: a segment computed from last night's figures
    # may still name a member closed or merged since.
    query = (
        f"SELECT DISTINCT s.member_id FROM ({sql}) AS s "  # noqa: S608 - our own SQL
        f"JOIN {member} AS m ON m.id = s.member_id WHERE m.status = %s ORDER BY s.member_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [*params, Member.Status.ACTIVE])
        return [member_id for (member_id,) in cursor.fetchall()]


def campaign_launch(*, campaign: Campaign, now: datetime.datetime) -> Campaign:
    """A due scheduled campaign starts running with its audience frozen, each member in
    an arm that never changes. Launching a launched campaign does nothing."""
    return campaign_launch_members(campaign=campaign, now=now, member_ids=None)


def campaign_launch_members(
    *, campaign: Campaign, now: datetime.datetime, member_ids: list[int] | None
) -> Campaign:
    """`campaign_launch` with the audience given (`bench campaigns` picks its members)
    rather than read from the segment, tiers or members; None: read as usual."""
    try:
        campaign = _launch_locked(campaign=campaign, now=now, member_ids=member_ids)
    except _AudienceOverApproval as over:
        _approval_ask_again(campaign=campaign, treated=over.treated)
        raise CampaignNotLaunchable(
            f"campaign {campaign.pk}: its audience costs more than was approved"
        ) from None
    if campaign.kind == Campaign.Kind.MULTIPLIER:
        # This process earns the new promotion from its next purchase; others within
        # PROMOTION_CACHE_SECONDS.
        promotions_cache_clear()
    return campaign


class _AudienceOverApproval(Exception):
    def __init__(self, *, treated: int) -> None:
        super().__init__(treated)
        self.treated = treated


def _over_approval(*, campaign: Campaign, treated: int) -> bool:
    """A bonus campaign's points for the audience read now need an approval it lacks: the
    segment was widened after the campaign was scheduled under the approval limit."""
    if campaign.kind != Campaign.Kind.BONUS:
        return False
    estimate = campaign_cost_estimate(campaign=campaign, treated=treated, sms=0, emails=0)
    return campaign.approved_at is None and campaign_needs_approval(estimate=estimate)


def _approval_ask_again(*, campaign: Campaign, treated: int) -> None:
    """Back to a draft waiting for an administrator, with the audit entry saying why."""
    with transaction.atomic():
        updated = Campaign.objects.filter(
            pk=campaign.pk, status=Campaign.Status.SCHEDULED, launched_at__isnull=True
        ).update(status=Campaign.Status.DRAFT, approval_required=True, approved_at=None)
        if updated:
            audit_log(
                actor=None,
                action="campaign.approval_needed",
                target=campaign,
                details={"campaign_name": campaign.name, "treated": treated},
                actor_label="campaigns_tick",
            )


def _launch_locked(
    *, campaign: Campaign, now: datetime.datetime, member_ids: list[int] | None
) -> Campaign:
    with transaction.atomic():
        # Locked: two workers launching at once queue here, and the second finds it launched.
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.launched_at is not None:
            return campaign
        if campaign.status != Campaign.Status.SCHEDULED:
            raise CampaignNotLaunchable(f"campaign {campaign.pk} is {campaign.status}")
        if campaign.approval_required and campaign.approved_at is None:
            raise CampaignNotLaunchable(f"campaign {campaign.pk} waits for approval")
        if not campaign.salt:
            campaign.salt = holdout_salt()
        read = member_ids is None
        if member_ids is None:
            member_ids = _audience_ids(campaign=campaign, now=now)
        control = _audience_write(campaign=campaign, member_ids=member_ids)
        if read and _over_approval(campaign=campaign, treated=len(member_ids) - control):
            raise _AudienceOverApproval(treated=len(member_ids) - control)
        campaign.status = Campaign.Status.RUNNING
        campaign.launched_at = now
        campaign.audience_size = len(member_ids)
        campaign.control_size = control
        campaign.save(
            update_fields=[
                "salt",
                "status",
                "launched_at",
                "audience_size",
                "control_size",
                "updated_at",
            ]
        )
    return campaign


def _audience_write(*, campaign: Campaign, member_ids: list[int]) -> int:
    """One CampaignMember row per member with its draw and arm; returns the control's size."""
    salt, share = campaign.salt, campaign.holdout_percent
    treatment, control = CampaignMember.Arm.TREATMENT, CampaignMember.Arm.CONTROL
    rows = []
    controls = 0
    for member_id in member_ids:
        draw = holdout_draw(salt=salt, member_id=member_id)
        held = in_holdout(draw=draw, holdout_percent=share)
        controls += held
        rows.append((member_id, control if held else treatment, draw))
    if use_copy():
        layout = CopyLayout(
            CampaignMember, ("campaign_id", "member_id", "arm", "draw"), with_id=False
        )
        for start in range(0, len(rows), 50_000):
            copy_write(
                layout.sql(),
                (
                    f"{campaign.pk}\t{member_id}\t{arm}\t{draw!r}{layout.tail}\n"
                    for member_id, arm, draw in rows[start : start + 50_000]
                ),
            )
    else:
        CampaignMember.objects.bulk_create(
            [
                CampaignMember(campaign=campaign, member_id=member_id, arm=arm, draw=draw)
                for member_id, arm, draw in rows
            ],
            batch_size=2000,
        )
    return controls


# --- Send -------------------------------------------------------------------------------


def campaign_has_message(campaign: Campaign) -> bool:
    return campaign.send_sms or campaign.send_email or campaign.send_portal


class _SendStopped(Exception):
    """The campaign is no longer running: no further batch is started."""


def campaign_send(
    *, campaign: Campaign, now: datetime.datetime, batch_size: int | None = None
) -> int:
    """Do for each treated member what the campaign does, batch after batch, each batch
    committed on its own; returns the members done by this call. Stops between batches
    when the campaign was cancelled; completes a bonus, coupon or message campaign when
    every treated member is done (a multiplier promotion runs until its window ends).

    On PostgreSQL the batches run on CAMPAIGN_SEND_WORKERS connections at once (the
    database, not Python, is what a posting waits for); a coupon campaign's on one, so
    the stock goes to members in member order."""
    size = batch_size or settings.CAMPAIGN_BATCH_SIZE
    with _send_lock(campaign_id=campaign.pk) as acquired:
        if not acquired:
            # Another worker is sending it (the tick and "launch now" at once): its batches
            # will do every member.
            return 0
        undone = list(
            CampaignMember.objects.filter(
                campaign=campaign, arm=CampaignMember.Arm.TREATMENT, done_at__isnull=True
            )
            .order_by("member_id")
            .values_list("member_id", flat=True)
        )
        # Each batch a range of member ids: read back by a range scan of the unique index.
        ranges = [
            (undone[start], undone[min(start + size, len(undone)) - 1])
            for start in range(0, len(undone), size)
        ]
        workers = 1 if campaign.kind == Campaign.Kind.COUPON else settings.CAMPAIGN_SEND_WORKERS
        done: list[int] = []
        try:
            on_connections(
                items=ranges,
                work=lambda bounds: _batch_run(campaign_id=campaign.pk, bounds=bounds, now=now),
                workers=workers,
                done=done.append,
            )
        except _SendStopped:
            return sum(done)
        _send_complete(campaign_id=campaign.pk, now=now)
        return sum(done)


def _batch_run(*, campaign_id: int, bounds: tuple[int, int], now: datetime.datetime) -> int:
    """The treated members not done with ids in `bounds`, in one transaction; how many."""
    with transaction.atomic():
        # Read, not locked: a cancellation committed while a batch is in flight stops the
        # batches after it, and cancelling never waits for a send.
        campaign = Campaign.objects.get(pk=campaign_id)
        if campaign.status != Campaign.Status.RUNNING:
            raise _SendStopped
        batch = list(
            CampaignMember.objects.filter(
                campaign_id=campaign_id,
                arm=CampaignMember.Arm.TREATMENT,
                done_at__isnull=True,
                member_id__gte=bounds[0],
                member_id__lte=bounds[1],
            )
            .order_by("member_id")
            .values_list("pk", "member_id", "member__status")
        )
        if batch:
            _batch_send(campaign=campaign, batch=batch, now=now)
    return len(batch)


def _send_complete(*, campaign_id: int, now: datetime.datetime) -> None:
    """A bonus, coupon or message campaign with every treated member done is completed."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != Campaign.Status.RUNNING or campaign.kind == Campaign.Kind.MULTIPLIER:
            return
        undone = CampaignMember.objects.filter(
            campaign=campaign, arm=CampaignMember.Arm.TREATMENT, done_at__isnull=True
        )
        if undone.exists():
            return
        campaign.status = Campaign.Status.COMPLETED
        campaign.completed_at = now
        campaign.save(update_fields=["status", "completed_at", "updated_at"])


def _batch_send(
    *, campaign: Campaign, batch: list[tuple[int, int, str]], now: datetime.datetime
) -> None:
    # A member closed or merged since the launch gets nothing; the row is done all the same.
    open_ids = [
        member_id
        for _pk, member_id, status in batch
        if status in (Member.Status.ACTIVE, Member.Status.FROZEN)
    ]
    coupons: dict[int, tuple[int, str]] = {}
    if campaign.kind == Campaign.Kind.BONUS:
        _bonus_post(campaign=campaign, member_ids=open_ids, now=now)
    elif campaign.kind == Campaign.Kind.COUPON:
        coupons = _coupons_issue(campaign=campaign, member_ids=open_ids, now=now)
    # A coupon campaign's message is about the coupon: members past the stock or the limit
    # got none, so they get no message saying "your code is".
    told = (
        open_ids if campaign.kind != Campaign.Kind.COUPON else [m for m in open_ids if m in coupons]
    )
    if campaign_has_message(campaign) and told:
        messages.messages_enqueue(
            campaign=campaign,
            member_ids=told,
            now=now,
            coupons={member_id: code for member_id, (_pk, code) in coupons.items()},
        )
    _batch_done(batch=batch, coupons=coupons, now=now)


def _existing_keys(keys: list[str]) -> set[str]:
    if not keys:
        return set()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT idempotency_key FROM {LedgerTransaction._meta.db_table} "  # noqa: S608
                "WHERE idempotency_key = ANY(%s::text[])",
                [text_array(keys)],
            )
            return {key for (key,) in cursor.fetchall()}
    return set(
        LedgerTransaction.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", flat=True
        )
    )


def _bonus_post(*, campaign: Campaign, member_ids: list[int], now: datetime.datetime) -> None:
    points = campaign.bonus_points
    keys = {
        member_id: campaign_member_key(campaign_id=campaign.pk, member_id=member_id)
        for member_id in member_ids
    }
    posted = _existing_keys(list(keys.values()))
    expires_at = expiry_for(now)
    source_ref = str(campaign.pk)
    credits = [
        BulkCredit(
            member_id=member_id,
            points=points,
            key=key,
            fingerprint=fingerprint(
                {"campaign": campaign.pk, "member": member_id, "points": points}
            ),
            source=LedgerTransaction.Source.CAMPAIGN,
            source_ref=source_ref,
            # For staff (the ledger page); the member reads "Campaign bonus".
            reason=campaign.name,
            occurred_at=now,
            available_at=now,
            expires_at=expires_at,
        )
        for member_id, key in keys.items()
        if key not in posted
    ]
    if not credits:
        return
    accounts = accounts_lock(member_ids={credit.member_id for credit in credits})
    points_credit_bulk(
        credits=credits, counter_kind=Account.Kind.ISSUANCE, now=now, accounts=accounts
    )


def _coupons_issue(
    *, campaign: Campaign, member_ids: list[int], now: datetime.datetime
) -> dict[int, tuple[int, str]]:
    """A coupon of the campaign's reward for each member still under the reward's
    per-member limit, while stock lasts; no points are spent. (coupon id, code) by member."""
    # Locked: redemptions of the same reward take stock with a conditional UPDATE and queue
    # behind this batch, so the two never sell the same unit.
    reward = Reward.objects.select_for_update().get(pk=campaign.reward_id)
    eligible = member_ids
    if reward.per_member_limit is not None:
        held = reward_units_held(reward=reward, member_ids=member_ids)
        eligible = [m for m in member_ids if held.get(m, 0) < reward.per_member_limit]
    if reward.stock is not None:
        eligible = eligible[: reward.stock]
        if eligible:
            Reward.objects.filter(pk=reward.pk).update(stock=F("stock") - len(eligible))
    if not eligible:
        return {}
    valid_days = reward.coupon_valid_days or policy_get().coupon_valid_days
    valid_until = now + datetime.timedelta(days=valid_days)
    made = Coupon.objects.bulk_create(
        [
            Coupon(
                code=coupon_code_generate(),
                member_id=member_id,
                reward=reward,
                source=Coupon.Source.CAMPAIGN,
                issued_at=now,
                valid_until=valid_until,
            )
            for member_id in eligible
        ],
        batch_size=2000,
    )
    return {coupon.member_id: (coupon.pk, coupon.code) for coupon in made}


def _batch_done(
    *,
    batch: list[tuple[int, int, str]],
    coupons: dict[int, tuple[int, str]],
    now: datetime.datetime,
) -> None:
    if not coupons:
        pks = [pk for pk, _member_id, _status in batch]
        if connection.vendor != "postgresql":
            CampaignMember.objects.filter(pk__in=pks).update(done_at=now)
            return
        # One array parameter, not thousands of placeholders.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {CampaignMember._meta.db_table} SET done_at = %s "  # noqa: S608
                "WHERE id = ANY(%s::bigint[])",
                [now, int_array(pks)],
            )
        return
    if connection.vendor == "postgresql":
        rows_update(
            CampaignMember,
            key="id",
            columns=(("id", "bigint"), ("coupon_id", "bigint")),
            rows=[(pk, coupons.get(member_id, (None,))[0]) for pk, member_id, _s in batch],
            assign={"done_at": "%s"},
            params=[now],
        )
        return
    rows = [
        CampaignMember(pk=pk, coupon_id=coupons.get(member_id, (None,))[0], done_at=now)
        for pk, member_id, _status in batch
    ]
    CampaignMember.objects.bulk_update(rows, ["coupon_id", "done_at"], batch_size=500)


# --- Locks ------------------------------------------------------------------------------

# The first keys of the advisory locks ("CMP", "CMS"), apart from the nightly jobs' own.
TICK_LOCK_NAMESPACE = 0x434D50
SEND_LOCK_NAMESPACE = 0x434D53
TICK_LOCK_KEY = zlib.crc32(b"campaigns_tick") - 2**31


@contextlib.contextmanager
def _advisory_lock(namespace: int, key: int) -> Iterator[bool]:
    """A session-level advisory lock (the holder commits batch after batch); whether it was
    obtained. A killed worker's lock goes with its connection. SQLite (the demo) runs one
    process: always obtained."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [namespace, key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [namespace, key])


def _tick_lock() -> contextlib.AbstractContextManager[bool]:
    return _advisory_lock(TICK_LOCK_NAMESPACE, TICK_LOCK_KEY)


def _send_lock(*, campaign_id: int) -> contextlib.AbstractContextManager[bool]:
    """One send of a campaign at a time, so no two workers take the same members."""
    return _advisory_lock(SEND_LOCK_NAMESPACE, campaign_id)


# --- The tick ---------------------------------------------------------------------------


def campaign_start(*, campaign: Campaign, now: datetime.datetime) -> Campaign:
    """Launch the campaign if it is not launched yet, send what is left to send, and
    dispatch the messages now due (rather than at beat's next tick)."""
    campaign = campaign_launch(campaign=campaign, now=now)
    campaign_send(campaign=campaign, now=now)
    if campaign_has_message(campaign):
        messages.outbox_dispatch(now=now)
    campaign.refresh_from_db()
    return campaign


def campaigns_due(*, now: datetime.datetime):
    """Scheduled campaigns due by `now` that need no approval or have it."""
    return Campaign.objects.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now).filter(
        Q(approval_required=False) | Q(approved_at__isnull=False)
    )


def campaigns_tick(*, now: datetime.datetime) -> dict[str, Any]:
    """Every minute (beat): launch and send the due campaigns, go on sending the running
    ones with members not done (a worker died mid-send), complete the multiplier promotions
    whose window has ended, then dispatch the outbox. One tick at a time."""
    with _tick_lock() as acquired:
        if not acquired:
            return {"skipped": True}
        launched = sent = completed = 0
        for campaign in campaigns_due(now=now).order_by("scheduled_at", "pk"):
            try:
                campaign_launch(campaign=campaign, now=now)
            except CampaignNotLaunchable:
                continue  # cancelled since it was read: the others still go
            launched += 1
        running = Campaign.objects.filter(status=Campaign.Status.RUNNING).order_by("pk")
        for campaign in running:
            sent += campaign_send(campaign=campaign, now=now)
        completed = _promotions_complete(now=now)
        dispatched = messages.outbox_dispatch(now=now)
    return {"launched": launched, "sent": sent, "completed": completed, "dispatched": dispatched}


def _promotions_complete(*, now: datetime.datetime) -> int:
    """Multiplier promotions past their window, every treated member done: completed."""
    undone = CampaignMember.objects.filter(
        campaign=OuterRef("pk"), arm=CampaignMember.Arm.TREATMENT, done_at__isnull=True
    )
    return (
        Campaign.objects.filter(
            kind=Campaign.Kind.MULTIPLIER, status=Campaign.Status.RUNNING, ends_at__lte=now
        )
        .exclude(Exists(undone))
        .update(status=Campaign.Status.COMPLETED, completed_at=now, updated_at=now)
    )

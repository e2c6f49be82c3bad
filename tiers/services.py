"""Writes for tiers: qualifying activity, upgrades, manual tiers, the nightly evaluation.

Points calls `tier_activity_record` and `tier_upgrade_check` inside the transaction of a
purchase, a return or an earning (after it has locked the member's points account), so an
upgrade commits or rolls back with the purchase that earned it. The nightly evaluation
(`tier_evaluate`) works set-based in batches of members, each batch one transaction that
locks only tier rows, so it never waits in a cycle with a till.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.bulk import CopyLayout, copy_escape, copy_write, prepared_fetchall, rows_update, use_copy
from core.money import money_format
from members.messaging import member_notify, member_reachable
from members.models import Member, User
from members.services import MemberError, audit_log

from .models import MemberTier, QualifyingActivity, TierHistory, TierLevel, TierNotice, TierPolicy
from .selectors import (
    BUSINESS_TZ,
    QUALIFYING_MONTHS,
    Figures,
    activity_figures,
    business_date,
    months_before,
    override_last_day,
    qualified_level,
    qualifying_window_start,
    retains,
    start_of,
    tier_level_of,
    tier_levels,
    tier_policy_get,
    validity_end,
)

BATCH_SIZE = 1000
SWEEP_RANGE = 50_000  # member ids per batch of the nightly upgrade sweep

Progress = Callable[[int, int], None]


class TierError(MemberError):
    """A tier change that is not allowed (bad level, end date in the past, no reason)."""


def tier_activity_record(
    *,
    member: Member | int,
    occurred_at: datetime.datetime,
    spend: Decimal = Decimal(0),
    points: int = 0,
    source: str,
) -> None:
    """Count a purchase, return or earning towards tiers (in the caller's transaction)."""
    if not spend and not points:
        return
    member_id = member if isinstance(member, int) else member.pk
    QualifyingActivity.objects.create(
        member_id=member_id, occurred_at=occurred_at, spend=spend, points=points, source=source
    )


_ACTIVITY_COLUMNS = ("member_id", "occurred_at", "spend", "points", "source")


def tier_activities_record(
    *, activities: list[tuple[int, datetime.datetime, Decimal, int]], source: str
) -> None:
    """`tier_activity_record` of a batch: (member id, occurred at, spend, points) each, in
    one insert (the purchase writers' batch; in the caller's transaction): on PostgreSQL
    one COPY for a batch (an import), elsewhere and for one activity the ORM."""
    if len(activities) > 1 and use_copy():
        layout = CopyLayout(QualifyingActivity, _ACTIVITY_COLUMNS, with_id=False)
        text = copy_escape(source)
        copy_write(
            layout.sql(),
            (
                f"{member_id}\t{occurred_at.isoformat()}\t{spend}\t{points}\t{text}{layout.tail}\n"
                for member_id, occurred_at, spend, points in activities
                if spend or points
            ),
        )
        return
    rows = [
        QualifyingActivity(
            member_id=member_id, occurred_at=occurred_at, spend=spend, points=points, source=source
        )
        for member_id, occurred_at, spend, points in activities
        if spend or points
    ]
    QualifyingActivity.objects.bulk_create(rows, batch_size=2000)


def _notice_text(*, history: TierHistory) -> tuple[str, str]:
    with translation.override("zh-hans"):
        names = {"level": history.to_level.name_zh, "date": history.valid_until or ""}
        if history.reason == TierHistory.Reason.UPGRADE:
            subject = _("You have a new tier")
            text = _("会员 Loyalty: congratulations, you are now %(level)s, valid until %(date)s.")
        elif history.reason == TierHistory.Reason.DOWNGRADE:
            subject = _("Your tier has changed")
            text = _("会员 Loyalty: your tier is now %(level)s, valid until %(date)s.")
        elif history.reason == TierHistory.Reason.RETAINED:
            subject = _("You kept your tier")
            text = _("会员 Loyalty: you keep %(level)s for another year, until %(date)s.")
        else:
            subject = _("Your tier has changed")
            text = _("会员 Loyalty: your tier is now %(level)s, valid until %(date)s.")
        if history.valid_until is None:
            text = _("会员 Loyalty: your tier is now %(level)s.")
        return subject, text % names


def tier_notice_send(*, history_id: int) -> bool:
    """Send one tier notice unless it was already claimed; claimed before sending, so a crash
    can lose a message but never send it twice."""
    claimed = TierNotice.objects.filter(history_id=history_id, sent_at__isnull=True).update(
        sent_at=timezone.now()
    )
    if not claimed:
        return False
    history = TierHistory.objects.select_related("member", "to_level").get(pk=history_id)
    subject, text = _notice_text(history=history)
    channels = member_notify(member=history.member, subject=subject, text=text)
    TierNotice.objects.filter(history_id=history_id).update(channels=channels)
    return True


def tier_notices_send(*, progress: Progress | None = None) -> int:
    """Send every notice not sent yet (the nightly changes), oldest first.

    Members no channel reaches see the change in the portal only: their notices are settled
    in one statement, with no channel.
    """
    unsent = TierNotice.objects.filter(sent_at__isnull=True)
    reachable = member_reachable(path="member__")
    sent = unsent.exclude(reachable).update(sent_at=timezone.now(), channels=[])
    pending = list(
        unsent.filter(reachable).order_by("history_id").values_list("history_id", flat=True)
    )
    for index, history_id in enumerate(pending, start=1):
        sent += tier_notice_send(history_id=history_id)
        if progress and index % 500 == 0:
            progress(index, len(pending))
    return sent


@dataclass(frozen=True)
class Change:
    member_id: int
    from_level: TierLevel | None
    to_level: TierLevel
    reason: str
    at: datetime.datetime
    valid_until: datetime.date | None
    period_start: datetime.datetime
    counts_from: datetime.datetime | None = None
    keep_counts_from: bool = True
    note: str = ""
    actor: User | None = None
    notify: bool = True
    extra: dict = field(default_factory=dict)


def _changes_apply(*, changes: list[Change], statuses: dict[int, MemberTier]) -> list[TierHistory]:
    """Write the new statuses and their history (and notices) for one batch, set-based."""
    now = timezone.now()
    creates, updates = [], []
    for change in changes:
        status = statuses.get(change.member_id)
        achieved = change.at if change.reason != TierHistory.Reason.RETAINED else None
        if status is None:
            creates.append(
                MemberTier(
                    member_id=change.member_id,
                    level=change.to_level,
                    achieved_at=change.at,
                    period_start=change.period_start,
                    valid_until=change.valid_until,
                    counts_from=change.counts_from,
                    override_until=change.extra.get("override_until"),
                    override_reason=change.extra.get("override_reason", ""),
                    prior_level=change.extra.get("prior_level"),
                    prior_valid_until=change.extra.get("prior_valid_until"),
                    prior_period_start=change.extra.get("prior_period_start"),
                    updated_at=now,
                )
            )
            continue
        status.level = change.to_level
        if achieved is not None:
            status.achieved_at = achieved
        status.period_start = change.period_start
        status.valid_until = change.valid_until
        if not change.keep_counts_from:
            status.counts_from = change.counts_from
        status.override_until = change.extra.get("override_until")
        status.override_reason = change.extra.get("override_reason", "")
        status.prior_level = change.extra.get("prior_level")
        status.prior_valid_until = change.extra.get("prior_valid_until")
        status.prior_period_start = change.extra.get("prior_period_start")
        status.updated_at = now
        updates.append(status)
    MemberTier.objects.bulk_create(creates, batch_size=BATCH_SIZE)
    _statuses_update(updates)
    histories = TierHistory.objects.bulk_create(
        [
            TierHistory(
                member_id=change.member_id,
                from_level=change.from_level,
                to_level=change.to_level,
                reason=change.reason,
                at=change.at,
                valid_until=change.valid_until,
                note=change.note,
                actor=change.actor if change.actor and change.actor.is_authenticated else None,
                recorded_at=now,
            )
            for change in changes
        ],
        batch_size=BATCH_SIZE,
    )
    if connection.features.can_return_rows_from_bulk_insert:
        with_ids = histories
    else:
        # SQLite before 3.35 gives no ids back: read this batch's rows again.
        with_ids = list(
            TierHistory.objects.filter(
                member_id__in=[c.member_id for c in changes], recorded_at=now
            ).order_by("id")
        )
    notify = {c.member_id for c in changes if c.notify}
    TierNotice.objects.bulk_create(
        [TierNotice(history=h, member_id=h.member_id) for h in with_ids if h.member_id in notify],
        batch_size=BATCH_SIZE,
    )
    return with_ids


# (column, PostgreSQL array type) of what a change writes to a MemberTier row.
_STATUS_COLUMNS = (
    ("level_id", "bigint"),
    ("achieved_at", "timestamptz"),
    ("period_start", "timestamptz"),
    ("valid_until", "date"),
    ("counts_from", "timestamptz"),
    ("override_until", "date"),
    ("override_reason", "text"),
    ("prior_level_id", "bigint"),
    ("prior_valid_until", "date"),
    ("prior_period_start", "timestamptz"),
    ("updated_at", "timestamptz"),
)


def _statuses_update(statuses: list[MemberTier]) -> None:
    """Save these (locked) status rows. On PostgreSQL one UPDATE … FROM unnest(arrays):
    bulk_update's CASE WHEN per row and column costs ~2 ms of Python a row at this width,
    most of an anniversary night's time."""
    if not statuses:
        return
    if connection.vendor != "postgresql":
        MemberTier.objects.bulk_update(
            statuses, [column for column, _type in _STATUS_COLUMNS], batch_size=BATCH_SIZE
        )
        return
    columns = (("member_id", "bigint"), *_STATUS_COLUMNS)
    rows_update(
        MemberTier,
        key="member_id",
        columns=columns,
        rows=[tuple(getattr(status, name) for name, _type in columns) for status in statuses],
    )


QUIET_FROM, QUIET_UNTIL = 21, 9  # PRODUCT.md: no messages 21:00–09:00


def _quiet_hours(at: datetime.datetime) -> bool:
    hour = at.astimezone(BUSINESS_TZ).hour
    return hour >= QUIET_FROM or hour < QUIET_UNTIL


def upgrade_note(*, spend: object, points: object) -> str:
    """The history note of an upgrade, in the active language (the figures as given)."""
    return _("spend ¥%(spend)s, points %(points)s in 12 months") % {
        "spend": spend,
        "points": points,
    }


def tier_notices_due_now() -> bool:
    """Whether a change's notice goes out after commit (not in quiet hours)."""
    return not _quiet_hours(timezone.now())


def tier_notices_after_commit(*, history_ids: list[int]) -> None:
    """Tell the member after commit, unless it is quiet hours: then the 09:00 tier_notices
    job sends what is still unsent."""
    if not tier_notices_due_now():
        return

    def send() -> None:
        for history_id in history_ids:
            tier_notice_send(history_id=history_id)

    transaction.on_commit(send)


def _status_locked(*, member_id: int) -> MemberTier | None:
    # `of=self`: lock the member's row only, never the shared level row it joins.
    return MemberTier.objects.select_for_update(of=("self",)).filter(member_id=member_id).first()


class _LevelsById(dict):
    # A level made in another process since this one read the ladder (core.config) is read
    # from the database rather than a KeyError in the middle of a purchase.
    def __missing__(self, level_id: int) -> TierLevel:
        level = self[level_id] = tier_level_of(level_id)
        return level


def _levels_by_id(levels: list[TierLevel]) -> dict[int, TierLevel]:
    return _LevelsById((level.pk, level) for level in levels)


def tier_upgrade_check(
    *, member: Member | int, at: datetime.datetime, actor: User | None = None
) -> TierHistory | None:
    """Upgrade the member at once if the rolling 12 months qualify for a higher level
    (several levels at a time if need be). Call inside the transaction that recorded the
    activity; the new level holds for 12 months from the business date of `at`."""
    for attempt in range(2):
        try:
            # A savepoint: a first tier row written meanwhile by a manual tier or the nightly
            # sweep (which do not hold the points account) must not fail the purchase.
            with transaction.atomic():
                return _upgrade_check(member=member, at=at, actor=actor)
        except IntegrityError:
            if attempt:
                raise
    return None


def _upgrade_check(
    *, member: Member | int, at: datetime.datetime, actor: User | None
) -> TierHistory | None:
    member_id = member if isinstance(member, int) else member.pk
    levels = tier_levels()
    status = _status_locked(member_id=member_id)
    current = _levels_by_id(levels)[status.level_id] if status is not None else levels[0]
    if current.rank >= levels[-1].rank:
        return None
    window_start = qualifying_window_start(status=status, at=at)
    # No end: a till whose clock runs behind must not hide the purchases recorded after it.
    figures = activity_figures(member_id=member_id, after=window_start, until=None)
    target = qualified_level(levels=levels, figures=figures)
    if target.rank <= current.rank:
        return None
    policy = tier_policy_get()
    change = Change(
        member_id=member_id,
        from_level=current,
        to_level=target,
        reason=TierHistory.Reason.UPGRADE,
        at=at,
        valid_until=validity_end(first_day=business_date(at), months=policy.valid_months),
        period_start=at,
        actor=actor,
        note=upgrade_note(spend=figures.spend, points=figures.points),
    )
    histories = _changes_apply(changes=[change], statuses={member_id: status} if status else {})
    tier_notices_after_commit(history_ids=[h.pk for h in histories])
    return histories[0]


def tier_upgrades_check(
    *, upgrades: list[tuple[int, datetime.datetime]], actor: User | None = None
) -> list[TierHistory]:
    """`tier_upgrade_check` for a batch of (member id, time of purchase), as the points
    writers call it after storing purchases: the members' tier rows locked in one
    statement (in member order, after their points accounts), the rolling 12 months
    summed for those below the top level, the upgrades written together. A member with
    several purchases in the batch is checked once, as of the latest. The levels and rows
    are read as plain values (a purchase pays for no model objects); the full ones only
    for an upgrade."""
    if not upgrades:
        return []
    at_of: dict[int, datetime.datetime] = {}
    for member_id, at in upgrades:
        at_of[member_id] = max(at, at_of.get(member_id, at))
    levels = [
        TierLevel.from_db(connection.alias, list(_LEVEL_FIELDS), list(values))
        for values in TierLevel.objects.order_by("rank").values_list(*_LEVEL_FIELDS)
    ]
    top = levels[-1].rank
    by_id = _levels_by_id(levels)
    rows = {
        member_id: (level_id, counts_from)
        for member_id, level_id, counts_from in MemberTier.objects.select_for_update()
        .filter(member_id__in=sorted(at_of))
        .order_by("member_id")
        .values_list("member_id", "level_id", "counts_from")
    }
    found = []
    for member_id in sorted(at_of):
        row = rows.get(member_id)
        status = (
            MemberTier(member_id=member_id, level_id=row[0], counts_from=row[1]) if row else None
        )
        current = by_id[row[0]] if row is not None else levels[0]
        if current.rank >= top:
            continue
        at = at_of[member_id]
        window_start = qualifying_window_start(status=status, at=at)
        # No end: a till whose clock runs behind must not hide the purchases recorded after it.
        figures = _figures_after(member_id=member_id, after=window_start)
        target = qualified_level(levels=levels, figures=figures)
        if target.rank > current.rank:
            found.append((member_id, current.pk, target.pk, at, figures))
    return _upgrades_apply(found=found, rows=rows, actor=actor)


def _upgrades_apply(
    *,
    found: list[tuple[int, int, int, datetime.datetime, Figures]],
    rows: dict[int, tuple[int, datetime.datetime | None]],
    actor: User | None,
) -> list[TierHistory]:
    """Write the upgrades found: (member id, current level id, target level id, at,
    figures) each; `rows`: the members' tier rows read under lock (member id → row)."""
    if not found:
        return []
    full = _levels_by_id(tier_levels())
    policy = tier_policy_get()
    changes = [
        Change(
            member_id=member_id,
            from_level=full[current_id],
            to_level=full[target_id],
            reason=TierHistory.Reason.UPGRADE,
            at=at,
            valid_until=validity_end(first_day=business_date(at), months=policy.valid_months),
            period_start=at,
            actor=actor,
            note=upgrade_note(spend=figures.spend, points=figures.points),
        )
        for member_id, current_id, target_id, at, figures in found
    ]
    try:
        # A savepoint: a first tier row written meanwhile by a manual tier or the nightly
        # sweep (which do not hold the points account) must not fail the purchases.
        with transaction.atomic():
            statuses = {
                status.member_id: status
                for status in MemberTier.objects.filter(
                    member_id__in=[c.member_id for c in changes if c.member_id in rows]
                )
            }
            histories = _changes_apply(changes=changes, statuses=statuses)
    except IntegrityError:
        # Asked again one by one, each with the row now there.
        return [
            history
            for change in changes
            if (history := tier_upgrade_check(member=change.member_id, at=change.at, actor=actor))
        ]
    tier_notices_after_commit(history_ids=[h.pk for h in histories])
    return histories


def tier_purchase_activity_record(
    *,
    member_id: int,
    occurred_at: datetime.datetime,
    spend: Decimal,
    points: int,
    upgrade: bool,
    actor: User | None = None,
) -> list[TierHistory]:
    """`tier_activities_record` + `tier_upgrades_check` of ONE purchase on PostgreSQL, in
    one round trip: the activity inserted, the member's tier row locked, the levels and the
    figures read (the sums since the rolling 12 months' start and since the row's
    `counts_from`: which one counts is decided here, by `qualifying_window_start`). Only an
    upgrade costs more statements. Elsewhere the two functions as they are."""
    if connection.vendor != "postgresql":
        tier_activities_record(
            activities=[(member_id, occurred_at, spend, points)],
            source=QualifyingActivity.Source.PURCHASE,
        )
        return (
            tier_upgrades_check(upgrades=[(member_id, occurred_at)], actor=actor) if upgrade else []
        )
    start = months_before(occurred_at, QUALIFYING_MONTHS)
    (row,) = prepared_fetchall(
        _PURCHASE_ACTIVITY_SQL,
        {
            "member": member_id,
            "at": occurred_at,
            "spend": spend,
            "points": points,
            "source": str(QualifyingActivity.Source.PURCHASE),
            "insert": bool(spend or points),
            "upgrade": upgrade,
            "start": start,
        },
    )
    if not upgrade:
        return []
    ids, ranks, qualify_spend, qualify_points, level_id, counts_from = row[:6]
    levels = _levels_of(tuple(ids), tuple(ranks), tuple(qualify_spend), tuple(qualify_points))
    status = (
        MemberTier(member_id=member_id, level_id=level_id, counts_from=counts_from)
        if level_id is not None
        else None
    )
    current = _levels_by_id(levels)[level_id] if status is not None else levels[0]
    if current.rank >= levels[-1].rank:
        return []
    window_start = qualifying_window_start(status=status, at=occurred_at)
    spend_sum, points_sum = row[6:8] if window_start == start else row[8:10]
    figures = Figures(spend=spend_sum, points=points_sum)
    target = qualified_level(levels=levels, figures=figures)
    if target.rank <= current.rank:
        return []
    rows = {member_id: (level_id, counts_from)} if status is not None else {}
    return _upgrades_apply(
        found=[(member_id, current.pk, target.pk, occurred_at, figures)], rows=rows, actor=actor
    )


@functools.lru_cache(maxsize=16)
def _levels_of(
    ids: tuple[int, ...],
    ranks: tuple[int, ...],
    qualify_spend: tuple[Decimal, ...],
    qualify_points: tuple[int, ...],
) -> list[TierLevel]:
    """The levels as read by the purchase's statement, made into models once per set of
    figures (not five models per purchase). Read only: `qualified_level` and
    `_levels_by_id` do not change them."""
    return [
        TierLevel(id=i, rank=r, qualify_spend=qs, qualify_points=qp)
        for i, r, qs, qp in zip(ids, ranks, qualify_spend, qualify_points, strict=True)
    ]


_PURCHASE_ACTIVITY_SQL = f"""
WITH ins AS (
    INSERT INTO {QualifyingActivity._meta.db_table} (member_id, occurred_at, spend, points, source)
    SELECT %(member)s, %(at)s, %(spend)s, %(points)s, %(source)s WHERE %(insert)s
    RETURNING occurred_at, spend, points
), status AS (
    SELECT level_id, counts_from FROM {MemberTier._meta.db_table}
    WHERE member_id = %(member)s AND %(upgrade)s FOR UPDATE
), activity AS (
    SELECT occurred_at, spend, points FROM {QualifyingActivity._meta.db_table}
    WHERE member_id = %(member)s AND occurred_at > %(start)s AND %(upgrade)s
    UNION ALL SELECT occurred_at, spend, points FROM ins
), sums AS (
    SELECT COALESCE(SUM(a.spend) FILTER (WHERE a.occurred_at > %(start)s), 0) AS spend_start,
        COALESCE(SUM(a.points) FILTER (WHERE a.occurred_at > %(start)s), 0) AS points_start,
        COALESCE(SUM(a.spend) FILTER (WHERE a.occurred_at > s.counts_from), 0) AS spend_from,
        COALESCE(SUM(a.points) FILTER (WHERE a.occurred_at > s.counts_from), 0) AS points_from
    FROM activity a LEFT JOIN status s ON true
), levels AS (
    SELECT array_agg(id ORDER BY rank) AS ids, array_agg(rank ORDER BY rank) AS ranks,
        array_agg(qualify_spend ORDER BY rank) AS qualify_spend,
        array_agg(qualify_points ORDER BY rank) AS qualify_points
    FROM {TierLevel._meta.db_table}
)
SELECT levels.ids, levels.ranks, levels.qualify_spend, levels.qualify_points,
    status.level_id, status.counts_from,
    sums.spend_start, sums.points_start, sums.spend_from, sums.points_from
FROM levels CROSS JOIN sums LEFT JOIN status ON true
"""  # noqa: S608


_LEVEL_FIELDS = ("id", "rank", "qualify_spend", "qualify_points")


def _figures_after(*, member_id: int, after: datetime.datetime) -> Figures:
    """`activity_figures` with no end, in plain SQL on PostgreSQL (the live purchase's
    path: no queryset to build)."""
    if connection.vendor != "postgresql":
        return activity_figures(member_id=member_id, after=after, until=None)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(SUM(spend), 0), COALESCE(SUM(points), 0) "  # noqa: S608
            f"FROM {QualifyingActivity._meta.db_table} WHERE member_id = %s AND occurred_at > %s",
            [member_id, after],
        )
        spend, points = cursor.fetchone()
    return Figures(spend=spend, points=points)


def tier_override_until_check(
    *, until: datetime.date, now: datetime.datetime | None = None
) -> datetime.date:
    """The one rule for a manual tier's end date: not before today's business day, at most
    TIER_OVERRIDE_MAX_MONTHS after it. Returns the latest end date allowed; raises TierError.
    The staff form and `tier_override_set` both ask here."""
    today = business_date(now or timezone.now())
    if until < today:
        raise TierError(_("The end date cannot be in the past."))
    last_day = override_last_day(today=today)
    if until > last_day:
        raise TierError(
            _("A manual tier ends within %(months)s months: %(day)s at the latest.")
            % {"months": settings.TIER_OVERRIDE_MAX_MONTHS, "day": last_day.isoformat()}
        )
    return last_day


def tier_override_set(
    *,
    member: Member,
    level: TierLevel,
    until: datetime.date,
    reason: str,
    actor: User,
    now: datetime.datetime | None = None,
) -> TierHistory:
    """Put a member on a level by hand until `until` (inclusive); audited. When it ends, the
    nightly evaluation puts the member where the last 12 months qualify."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise TierError(_("Give a reason for the manual tier."))
    tier_override_until_check(until=until, now=now)
    if level.is_base:
        raise TierError(_("Choose a level above the base level; it returns by itself."))
    for attempt in range(2):
        try:
            return _override_set(
                member=member, level=level, until=until, reason=reason, actor=actor, now=now
            )
        except IntegrityError:
            # A till wrote the member's first tier row meanwhile: read it and go again.
            if attempt:
                raise
    raise AssertionError("unreachable")


def _override_set(
    *,
    member: Member,
    level: TierLevel,
    until: datetime.date,
    reason: str,
    actor: User,
    now: datetime.datetime,
) -> TierHistory:
    with transaction.atomic():
        levels = tier_levels()
        status = _status_locked(member_id=member.pk)
        current = _levels_by_id(levels)[status.level_id] if status is not None else levels[0]
        if status is not None and status.override_until is not None:
            # A manual tier replaced by another: the earned tier underneath stays the same.
            prior = {
                "prior_level": status.prior_level,
                "prior_valid_until": status.prior_valid_until,
                "prior_period_start": status.prior_period_start,
            }
        elif status is not None and not current.is_base:
            prior = {
                "prior_level": current,
                "prior_valid_until": status.valid_until,
                "prior_period_start": status.period_start,
            }
        else:
            prior = {}
        change = Change(
            member_id=member.pk,
            from_level=current,
            to_level=level,
            reason=TierHistory.Reason.MANUAL,
            at=now,
            valid_until=until,
            period_start=now,
            note=reason[:200],
            actor=actor,
            extra={"override_until": until, "override_reason": reason[:200], **prior},
        )
        histories = _changes_apply(changes=[change], statuses={member.pk: status} if status else {})
        audit_log(
            actor=actor,
            action="tier.override",
            target=member,
            member=member,
            details={
                "from": current.code,
                "to": level.code,
                "until": until.isoformat(),
                "reason": reason,
                "max_months": settings.TIER_OVERRIDE_MAX_MONTHS,
            },
        )
        tier_notices_after_commit(history_ids=[h.pk for h in histories])
    return histories[0]


def tier_member_merge(*, source: Member, target: Member, at: datetime.datetime) -> None:
    """A merged duplicate's qualifying activity counts for the member it was merged into,
    and the better of the two tiers stays (with its own validity). Called inside the merge's
    transaction, which holds both members' points accounts."""
    QualifyingActivity.objects.filter(member=source).update(member=target)
    levels = tier_levels()
    by_id = _levels_by_id(levels)
    statuses = {
        s.member_id: s
        for s in MemberTier.objects.select_for_update(of=("self",))
        .filter(member_id__in=[source.pk, target.pk])
        .order_by("member_id")
    }
    mine, theirs = statuses.get(source.pk), statuses.get(target.pk)
    if mine is not None:
        current = by_id[theirs.level_id] if theirs is not None else levels[0]
        better = by_id[mine.level_id]
        if better.rank > current.rank:
            _changes_apply(
                changes=[
                    Change(
                        member_id=target.pk,
                        from_level=current,
                        to_level=better,
                        reason=TierHistory.Reason.UPGRADE,
                        at=at,
                        valid_until=mine.valid_until,
                        period_start=mine.period_start,
                        counts_from=mine.counts_from,
                        keep_counts_from=False,
                        note=_("merged from %(member_no)s") % {"member_no": source.member_no},
                        notify=False,
                    )
                ],
                statuses={target.pk: theirs} if theirs is not None else {},
            )
        # The duplicate is closed: nothing of it is evaluated any more.
        mine.delete()
    tier_upgrade_check(member=target, at=at)


# --- the nightly evaluation ---------------------------------------------------------------


def _db_time(value: datetime.datetime):
    """A datetime parameter for raw SQL as the ORM would store it (UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(value)


def _money(value) -> Decimal:
    # SQLite sums decimals as floats: back to cents.
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _figures_query(
    *, member_ids: list[int], window_start: datetime.datetime, end: datetime.datetime
) -> dict[int, tuple[Figures, Figures]]:
    """Per member: (figures since the member's period start, rolling figures since
    `window_start` or the member's counts_from), both up to `end` (exclusive)."""
    activity = QualifyingActivity._meta.db_table
    status = MemberTier._meta.db_table
    placeholders = ", ".join(["%s"] * len(member_ids))
    sql = f"""
        SELECT a.member_id,
               SUM(CASE WHEN a.occurred_at > t.period_start THEN a.spend ELSE 0 END),
               SUM(CASE WHEN a.occurred_at > t.period_start THEN a.points ELSE 0 END),
               SUM(CASE WHEN a.occurred_at > %s AND
                        (t.counts_from IS NULL OR a.occurred_at > t.counts_from)
                        THEN a.spend ELSE 0 END),
               SUM(CASE WHEN a.occurred_at > %s AND
                        (t.counts_from IS NULL OR a.occurred_at > t.counts_from)
                        THEN a.points ELSE 0 END)
        FROM {activity} a JOIN {status} t ON t.member_id = a.member_id
        WHERE a.member_id IN ({placeholders})
          AND (a.occurred_at > t.period_start OR a.occurred_at > %s)
          AND a.occurred_at < %s
        GROUP BY a.member_id
    """  # noqa: S608 - table names come from the models
    with connection.cursor() as cursor:
        start, stop = _db_time(window_start), _db_time(end)
        cursor.execute(sql, [start, start, *member_ids, start, stop])
        rows = cursor.fetchall()
    return {
        row[0]: (
            Figures(spend=_money(row[1]), points=int(row[2] or 0)),
            Figures(spend=_money(row[3]), points=int(row[4] or 0)),
        )
        for row in rows
    }


@dataclass
class EvaluationResult:
    retained: int = 0
    downgraded: int = 0
    upgraded: int = 0
    overrides_ended: int = 0

    @property
    def changed(self) -> int:
        return self.retained + self.downgraded + self.upgraded + self.overrides_ended


def _period_ends(*, business_day: datetime.date, overrides: bool) -> datetime.date | None:
    rows = MemberTier.objects.filter(valid_until__lt=business_day)
    rows = (
        rows.filter(override_until__isnull=False)
        if overrides
        else rows.filter(override_until__isnull=True)
    )
    return rows.order_by("valid_until").values_list("valid_until", flat=True).first()


def _evaluate_period_end(
    *,
    day: datetime.date,
    overrides: bool,
    levels: list[TierLevel],
    policy: TierPolicy,
    result: EvaluationResult,
) -> None:
    """Decide, as of the end of `day`, every member whose tier (or manual tier) ran out then."""
    end = start_of(day + datetime.timedelta(days=1))
    window_start = months_before(end, QUALIFYING_MONTHS)
    next_until = validity_end(
        first_day=day + datetime.timedelta(days=1), months=policy.valid_months
    )
    by_id = _levels_by_id(levels)
    last_id = 0
    while True:
        with transaction.atomic():
            rows = MemberTier.objects.select_for_update(of=("self",)).filter(
                valid_until=day, member_id__gt=last_id
            )
            rows = (
                rows.filter(override_until__isnull=False)
                if overrides
                else rows.filter(override_until__isnull=True)
            )
            statuses = {s.member_id: s for s in rows.order_by("member_id")[:BATCH_SIZE]}
            if not statuses:
                return
            last_id = max(statuses)
            figures = _figures_query(member_ids=list(statuses), window_start=window_start, end=end)
            # Closed and merged members are decided too (so their rows move on), but not told.
            silent = set(
                Member.objects.filter(pk__in=list(statuses))
                .exclude(status__in=[Member.Status.ACTIVE, Member.Status.FROZEN])
                .values_list("pk", flat=True)
            )
            changes = [
                _period_end_change(
                    status=status,
                    current=by_id[status.level_id],
                    figures=figures.get(member_id, (Figures(), Figures())),
                    overrides=overrides,
                    levels=levels,
                    policy=policy,
                    end=end,
                    next_until=next_until,
                    notify=member_id not in silent,
                )
                for member_id, status in statuses.items()
            ]
            _changes_apply(changes=changes, statuses=statuses)
        for change in changes:
            if overrides:
                result.overrides_ended += 1
            elif change.reason == TierHistory.Reason.RETAINED:
                result.retained += 1
            else:
                result.downgraded += 1


def _period_end_change(
    *,
    status: MemberTier,
    current: TierLevel,
    figures: tuple[Figures, Figures],
    overrides: bool,
    levels: list[TierLevel],
    policy: TierPolicy,
    end: datetime.datetime,
    next_until: datetime.date,
    notify: bool,
) -> Change:
    since, rolling = figures
    lower = [level for level in levels if level.rank < current.rank]
    valid_until = next_until
    period_start = end
    counts_from = status.counts_from
    note = _("since %(start)s: spend %(spend)s, points %(points)s") % {
        "start": business_date(status.period_start).isoformat(),
        "spend": money_format(since.spend),
        "points": since.points,
    }
    if overrides:
        # The manual tier ends: the better of the tier earned before it (if still valid)
        # and what the last 12 months qualify for. The spend behind either still counts.
        target = qualified_level(levels=levels, figures=rolling)
        prior = {level.pk: level for level in levels}.get(status.prior_level_id)
        if (
            prior is not None
            and status.prior_valid_until is not None
            and status.prior_valid_until > end.date() - datetime.timedelta(days=1)
            and prior.rank >= target.rank
        ):
            target = prior
            valid_until = status.prior_valid_until
            period_start = status.prior_period_start or end
        note = _("manual tier ended")
    elif retains(level=current, figures=since):
        target = current
    else:
        if policy.downgrade == TierPolicy.Downgrade.QUALIFIED:
            # What the period qualifies for, without the spend that won the tier.
            qualified = qualified_level(levels=levels, figures=since)
            target = min(qualified, lower[-1] if lower else current, key=lambda lv: lv.rank)
        else:
            target = lower[-1] if lower else current
        # The spend that won the lost tier has had its year: it cannot win it straight back.
        counts_from = max(filter(None, [status.counts_from, status.period_start]))
    if target.rank > current.rank:
        reason = TierHistory.Reason.UPGRADE
    elif target.rank < current.rank:
        reason = TierHistory.Reason.DOWNGRADE
    else:
        reason = TierHistory.Reason.RETAINED
    return Change(
        member_id=status.member_id,
        from_level=current,
        to_level=target,
        reason=reason,
        at=end,
        valid_until=None if target.is_base else valid_until,
        period_start=period_start,
        counts_from=counts_from,
        keep_counts_from=False,
        note=note,
        # A quiet renewal, unless it ends a manual tier.
        notify=notify and (reason != TierHistory.Reason.RETAINED or overrides),
    )


def _sweep_candidates(
    *,
    low: int,
    high: int,
    window_start: datetime.datetime,
    end: datetime.datetime,
    min_spend: Decimal,
    min_points: int,
) -> list[tuple[int, Figures, int | None]]:
    """Open members in [low, high) whose rolling figures (after their counts_from) reach at
    least the lowest upgrade, with their current level id (None: the base level)."""
    activity = QualifyingActivity._meta.db_table
    status = MemberTier._meta.db_table
    member = Member._meta.db_table
    sql = f"""
        SELECT a.member_id, SUM(a.spend), SUM(a.points), t.level_id
        FROM {activity} a
        JOIN {member} m ON m.id = a.member_id
        LEFT JOIN {status} t ON t.member_id = a.member_id
        WHERE a.member_id >= %s AND a.member_id < %s
          AND a.occurred_at > %s AND a.occurred_at < %s
          AND (t.counts_from IS NULL OR a.occurred_at > t.counts_from)
          AND m.status IN (%s, %s)
        GROUP BY a.member_id, t.level_id
        HAVING ROUND(SUM(a.spend), 2) >= %s OR SUM(a.points) >= %s
    """  # noqa: S608 - table names come from the models
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                low,
                high,
                _db_time(window_start),
                _db_time(end),
                Member.Status.ACTIVE,
                Member.Status.FROZEN,
                # As float: SQLite compares its float sums with text-bound decimals wrongly.
                float(min_spend),
                min_points,
            ],
        )
        return [
            (row[0], Figures(spend=_money(row[1]), points=int(row[2] or 0)), row[3])
            for row in cursor.fetchall()
        ]


def _sweep(
    *,
    business_day: datetime.date,
    levels: list[TierLevel],
    policy: TierPolicy,
    result: EvaluationResult,
    progress: Progress | None,
) -> None:
    """Upgrade everyone the rolling 12 months qualify for a higher level: members whose
    activity came in by bulk import, or whose level's requirements were lowered."""
    end = start_of(business_day)
    window_start = months_before(end, QUALIFYING_MONTHS)
    spends = [lv.qualify_spend for lv in levels[1:] if lv.qualify_spend > 0]
    points = [lv.qualify_points for lv in levels[1:] if lv.qualify_points > 0]
    if not spends and not points:
        return
    # A threshold nobody can reach stands in for "not by this figure".
    min_spend = min(spends) if spends else Decimal("1e11")
    min_points = min(points) if points else 2**62
    by_id = _levels_by_id(levels)
    top = Member.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    valid_until = validity_end(first_day=business_day, months=policy.valid_months)
    for low in range(0, top + 1, SWEEP_RANGE):
        upgrades: dict[int, tuple[TierLevel, Figures]] = {}
        for member_id, figures, level_id in _sweep_candidates(
            low=low,
            high=low + SWEEP_RANGE,
            window_start=window_start,
            end=end,
            min_spend=min_spend,
            min_points=min_points,
        ):
            current = by_id[level_id] if level_id is not None else levels[0]
            target = qualified_level(levels=levels, figures=figures)
            if target.rank > current.rank:
                upgrades[member_id] = (target, figures)
        if upgrades:
            for attempt in range(2):
                try:
                    result.upgraded += _sweep_apply(
                        upgrades=upgrades, levels=levels, end=end, valid_until=valid_until
                    )
                    break
                except IntegrityError:
                    # A till created the member's first tier row meanwhile: read again.
                    if attempt:
                        raise
        if progress:
            progress(min(low + SWEEP_RANGE, top), top)


def _sweep_apply(
    *,
    upgrades: dict[int, tuple[TierLevel, Figures]],
    levels: list[TierLevel],
    end: datetime.datetime,
    valid_until: datetime.date,
) -> int:
    by_id = _levels_by_id(levels)
    changed = 0
    ids = sorted(upgrades)
    for index in range(0, len(ids), BATCH_SIZE):
        chunk = ids[index : index + BATCH_SIZE]
        with transaction.atomic():
            statuses = {
                s.member_id: s
                for s in MemberTier.objects.select_for_update(of=("self",))
                .filter(member_id__in=chunk)
                .order_by("member_id")
            }
            changes = []
            for member_id in chunk:
                status = statuses.get(member_id)
                # Read again under the lock: a till may have upgraded the member since.
                current = by_id[status.level_id] if status is not None else levels[0]
                target, figures = upgrades[member_id]
                if target.rank <= current.rank:
                    continue
                changes.append(
                    Change(
                        member_id=member_id,
                        from_level=current,
                        to_level=target,
                        reason=TierHistory.Reason.UPGRADE,
                        at=end,
                        valid_until=valid_until,
                        period_start=end,
                        note=upgrade_note(spend=figures.spend, points=figures.points),
                    )
                )
            if changes:
                _changes_apply(changes=changes, statuses=statuses)
            changed += len(changes)
    return changed


def tier_evaluate(
    *, business_day: datetime.date, progress: Progress | None = None
) -> EvaluationResult:
    """The nightly tier run for the night that starts `business_day` (it decides up to the end
    of the day before): manual tiers that ended, anniversaries (retained or down), then the
    upgrade sweep. A run late by days or years decides each anniversary as of that date.
    Idempotent: decided members move their `valid_until` past the day, so a second run, or a
    run after a crash, finds nothing more to do."""
    levels = tier_levels()
    policy = tier_policy_get()
    result = EvaluationResult()
    for overrides in (True, False):
        while (day := _period_ends(business_day=business_day, overrides=overrides)) is not None:
            _evaluate_period_end(
                day=day, overrides=overrides, levels=levels, policy=policy, result=result
            )
    _sweep(
        business_day=business_day, levels=levels, policy=policy, result=result, progress=progress
    )
    return result

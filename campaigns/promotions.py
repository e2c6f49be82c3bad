"""Multiplier promotions: the campaigns' provider for `points.earning`, and what members and
tills see of them.

A purchase earns a promotion's multiplier when it falls in the window [starts_at, ends_at),
at one of the promotion's stores (none: every store), with a line in one of its categories
(none: every purchase), and the member is in the promotion's TREATMENT arm (the holdout
earns as usual). Whether it stacks with the birthday month is the posting plan's decision
(`points.posting.plan.promotion_multiplier`), not this module's: the provider only says
which multipliers apply.

Every purchase on every path (till, staff form, import) asks, so the provider is cheap:
each process keeps the launched promotions (window, stores, categories, multiplier) for a
few seconds, and only a purchase that one of them fits asks the database — one query on the
member's audience rows (index member, campaign) that re-checks the campaign's status, so a
cancellation holds at once. A launch in this process drops the cached list
(`promotions_cache_clear`); another process sees a new promotion within
PROMOTION_CACHE_SECONDS.
"""

from __future__ import annotations

import dataclasses
import datetime
import threading
import time
from decimal import Decimal

from django.db import connection
from django.http import HttpRequest
from django.utils.translation import get_language

from core.bulk import int_array
from members.models import Member
from points.earning import PurchaseContext, register_promotion_provider

from .models import Campaign, CampaignMember

PROMOTION_CACHE_SECONDS = 5.0

# A promotion counts once launched, until cancelled: a purchase of its window imported
# after it completed still earns it.
_COUNTING = (Campaign.Status.RUNNING, Campaign.Status.COMPLETED)


@dataclasses.dataclass(frozen=True)
class PromotionWindow:
    campaign_id: int
    multiplier: Decimal
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    store_codes: frozenset[str]
    categories: frozenset[str]
    # What members see of it: running (not yet completed), its title in either language, the
    # store names and the categories in the campaign's order.
    running: bool = False
    title_zh: str = ""
    title_en: str = ""
    store_names: tuple[str, ...] = ()
    category_list: tuple[str, ...] = ()

    def fits(self, context: PurchaseContext) -> bool:
        return (
            self.starts_at <= context.occurred_at < self.ends_at
            and (not self.store_codes or context.store_code in self.store_codes)
            and (not self.categories or not self.categories.isdisjoint(context.categories))
        )


class _Cache:
    lock = threading.Lock()
    windows: tuple[PromotionWindow, ...] = ()
    read_at: float | None = None


def promotions_cache_clear() -> None:
    with _Cache.lock:
        _Cache.read_at = None


def _windows() -> tuple[PromotionWindow, ...]:
    now = time.monotonic()
    read_at = _Cache.read_at
    if read_at is not None and now - read_at < PROMOTION_CACHE_SECONDS:
        return _Cache.windows
    campaigns = Campaign.objects.filter(
        kind=Campaign.Kind.MULTIPLIER, status__in=_COUNTING, launched_at__isnull=False
    ).prefetch_related("stores")
    windows = tuple(
        PromotionWindow(
            campaign_id=c.pk,
            multiplier=c.multiplier,
            starts_at=c.starts_at,
            ends_at=c.ends_at,
            store_codes=frozenset(store.code for store in c.stores.all()),
            categories=frozenset(c.categories or ()),
            running=c.status == Campaign.Status.RUNNING,
            title_zh=c.message_subject_zh,
            title_en=c.message_subject_en,
            store_names=tuple(store.name for store in c.stores.all()),
            category_list=tuple(c.categories or ()),
        )
        for c in campaigns
    )
    with _Cache.lock:
        _Cache.windows, _Cache.read_at = windows, now
    return windows


def _treated_in(*, member_id: int, campaign_ids: list[int]) -> set[int]:
    """Which of these campaigns (still launched, not cancelled) treat the member."""
    audience = CampaignMember._meta.db_table
    campaign = Campaign._meta.db_table
    if connection.vendor == "postgresql":
        ids, id_params = "= ANY(%s::bigint[])", [int_array(campaign_ids)]
    else:
        ids, id_params = f"IN ({', '.join(['%s'] * len(campaign_ids))})", campaign_ids
    sql = (
        f"SELECT a.campaign_id FROM {audience} AS a "  # noqa: S608 - our own tables
        f"JOIN {campaign} AS c ON c.id = a.campaign_id "
        f"WHERE a.member_id = %s AND a.campaign_id {ids} AND a.arm = %s "
        f"AND c.kind = %s AND c.status IN (%s, %s)"
    )
    params = [member_id, *id_params, CampaignMember.Arm.TREATMENT, Campaign.Kind.MULTIPLIER]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *_COUNTING])
        return {pk for (pk,) in cursor.fetchall()}


def promotion_multipliers(context: PurchaseContext) -> tuple[Decimal, ...]:
    """The provider (`points.earning.register_promotion_provider`): the multipliers of the
    promotions that apply to this purchase."""
    fitting = [window for window in _windows() if window.fits(context)]
    if not fitting:
        return ()
    treated = _treated_in(
        member_id=context.member.pk, campaign_ids=[w.campaign_id for w in fitting]
    )
    return tuple(w.multiplier for w in fitting if w.campaign_id in treated)


# --- What members and tills see ---------------------------------------------------------


def member_promotions_active(*, member_id: int, at: datetime.datetime) -> list[PromotionWindow]:
    """The running promotions whose window holds `at` and that treat the member, by end:
    from the promotions this process keeps, so no query when none is running."""
    running = sorted(
        (w for w in _windows() if w.running and w.starts_at <= at < w.ends_at),
        key=lambda w: (w.ends_at, w.campaign_id),
    )
    if not running:
        return []
    treated = _treated_in(member_id=member_id, campaign_ids=[w.campaign_id for w in running])
    return [w for w in running if w.campaign_id in treated]


def promotion_title(promotion: PromotionWindow) -> str:
    """What a member reads as the promotion's name: the message subject in the active
    language (the campaign's own name is for staff), or nothing."""
    if (get_language() or "").startswith("en"):
        return promotion.title_en or promotion.title_zh
    return promotion.title_zh or promotion.title_en


def _summary_part(member: Member, summary):
    from django.utils import timezone

    from members.selectors import PromotionSummary

    promotions = tuple(
        PromotionSummary(
            title=promotion_title(promotion),
            multiplier=promotion.multiplier,
            starts_at=promotion.starts_at,
            ends_at=promotion.ends_at,
            stores=tuple(sorted(promotion.store_codes)),
            categories=tuple(sorted(promotion.categories)),
        )
        for promotion in member_promotions_active(member_id=member.pk, at=timezone.now())
    )
    return dataclasses.replace(summary, promotions=promotions)


def portal_promotions_panel(member: Member, request: HttpRequest) -> dict | None:
    from django.utils import timezone

    from points.models import Category

    promotions = member_promotions_active(member_id=member.pk, at=timezone.now())
    if not promotions:
        return None
    codes = {code for promotion in promotions for code in promotion.category_list}
    english = (get_language() or "").startswith("en")
    names = {
        code: (name_en if english else name_zh)
        for code, name_zh, name_en in Category.objects.filter(code__in=codes).values_list(
            "code", "name_zh", "name_en"
        )
    }
    return {
        "promotions": [
            {
                "title": promotion_title(promotion),
                "multiplier": promotion.multiplier.normalize(),
                "ends_at": promotion.ends_at,
                "stores": list(promotion.store_names),
                "categories": [names.get(code, code) for code in promotion.category_list],
            }
            for promotion in promotions
        ]
    }


def register() -> None:
    """Called from `CampaignsConfig.ready()`: the promotion provider and panels."""
    from core.panels import portal_panel_register
    from members.selectors import member_summary_contributor_register

    register_promotion_provider(promotion_multipliers)
    member_summary_contributor_register(_summary_part)
    portal_panel_register(
        name="campaigns-promotions",
        order=15,
        template="campaigns/portal/_panel_promotions.html",
        context=portal_promotions_panel,
    )

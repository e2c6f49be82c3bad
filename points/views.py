"""Member portal pages for points: history, rewards, redeeming, coupons and the rules.

As in members/views.py, every page is about "me": the member always comes from the
logged-in user. The one URL that names something a member owns (a coupon code) answers 404
for anyone else's coupon, exactly as for a code that does not exist.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import segno
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from members.cards import member_no_grouped
from members.models import Member
from members.views import member_required

from .earning import policy_get
from .forms import HistoryFilterForm, RedeemForm
from .jobs import REMINDER_DAYS
from .ledger import (
    BUSINESS_TZ,
    Balance,
    IdempotencyConflict,
    InsufficientPoints,
    PointsInDebt,
    expiry_for,
)
from .models import Coupon, LedgerTransaction, Reward
from .selectors import (
    account_get,
    category_names,
    category_rate_list,
    coupon_get,
    coupon_list_portal,
    donation_get,
    donation_list,
    ledger_history,
    ledger_member_label,
    points_balance,
    points_expiring,
    points_expiring_soon,
    redemption_counts,
    reward_get,
    reward_list_available,
    reward_names,
)
from .services import (
    LimitReached,
    MemberInactive,
    OutOfStock,
    RewardUnavailable,
    TierRequired,
    member_tier_rank,
    reward_price_for,
    reward_redeem,
)

HISTORY_PAGE_SIZE = 20
EXPIRING_SOON_DAYS = 30


# --- helpers --------------------------------------------------------------------------------


def _in_chinese() -> bool:
    return (get_language() or "").startswith("zh")


def reward_name(reward: Reward) -> str:
    return reward.name_zh if _in_chinese() else reward.name_en or reward.name_zh


def reward_description(reward: Reward) -> str:
    return reward.description_zh if _in_chinese() else reward.description_en


def _plain_number(value: Decimal | int) -> str:
    """1.00 → "1", 1.50 → "1.5", 10.00 → "10": rates read as people say them.

    Decimal() first: an unsaved default policy holds the plain int defaults."""
    return f"{Decimal(value).normalize():f}"


@dataclass(frozen=True)
class RewardOffer:
    """A reward as this member sees it: their price and whether they can have it now."""

    reward: Reward
    name: str
    description: str
    price: int
    regular_price: int
    # One of: afford, short, debt, tier, out_of_stock, limit, unavailable.
    state: str
    missing: int = 0

    @property
    def can_redeem(self) -> bool:
        return self.state == "afford"

    @property
    def discounted(self) -> bool:
        return self.price < self.regular_price


def reward_offer(
    *,
    reward: Reward,
    member: Member,
    balance: Balance,
    rank: int,
    taken: int,
    at: datetime.datetime,
) -> RewardOffer:
    # The same checks, in the same order, as reward_redeem makes: the page then tells the
    # member what the service would answer (the service still decides, under its locks).
    price = reward_price_for(reward=reward, member=member)
    missing = 0
    if (
        not reward.is_active
        or (reward.available_from and at < reward.available_from)
        or (reward.available_until and at >= reward.available_until)
        or member.status != Member.Status.ACTIVE
    ):
        state = "unavailable"
    elif rank < reward.min_tier_rank:
        state = "tier"
    elif reward.per_member_limit is not None and taken >= reward.per_member_limit:
        state = "limit"
    elif reward.stock is not None and reward.stock <= 0:
        state = "out_of_stock"
    elif balance.debt:
        state = "debt"
    elif balance.available < price:
        state, missing = "short", price - max(balance.available, 0)
    else:
        state = "afford"
    return RewardOffer(
        reward=reward,
        name=reward_name(reward),
        description=reward_description(reward),
        price=price,
        regular_price=reward.points_price,
        state=state,
        missing=missing,
    )


def coupon_qr_svg(*, code: str, title: str) -> SafeString:
    # Like the member card (members/cards.py): a full QR code (no Micro QR, which phones and
    # till scanners often cannot read), inline SVG with no style attributes for the CSP.
    qr = segno.make(code, error="m", micro=False)
    svg = qr.svg_inline(
        scale=1, border=4, omitsize=True, dark="#000", light="#fff", title=title, svgclass="qr-code"
    )
    return mark_safe(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S308 - segno output


def coupon_status(coupon: Coupon, *, at: datetime.datetime) -> str:
    """The status a member should see: an issued coupon past its date is expired already,
    even before the nightly job marks it so."""
    if coupon.status == Coupon.Status.ISSUED and coupon.valid_until <= at:
        return Coupon.Status.EXPIRED
    return coupon.status


def coupon_last_day(coupon: Coupon) -> datetime.date:
    return coupon.valid_until.astimezone(BUSINESS_TZ).date()


# --- home page panels (registered from points/apps.py) --------------------------------------


def portal_balance_panel(member: Member, request: HttpRequest) -> dict[str, Any]:
    return {"balance": points_balance(member=member)}


def portal_expiring_panel(member: Member, request: HttpRequest) -> dict[str, Any] | None:
    expiring = points_expiring_soon(member=member, within_days=EXPIRING_SOON_DAYS)
    return {"expiring": expiring} if expiring is not None else None


# --- history --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryLine:
    occurred_at: datetime.datetime
    kind: str
    kind_label: str
    points: int
    description: str

    @property
    def signed(self) -> str:
        return f"{self.points:+d}"


def history_lines(txns: list[LedgerTransaction]) -> list[HistoryLine]:
    codes = {t.source_ref for t in txns if t.source == LedgerTransaction.Source.REWARD}
    rewards = reward_names(codes=codes)  # one query for the whole page
    return [
        HistoryLine(
            occurred_at=txn.occurred_at,
            kind=txn.kind,
            kind_label=txn.get_kind_display(),
            points=txn.member_amount,
            description=ledger_member_label(
                txn=txn,
                reward_name=reward_name(rewards[txn.source_ref])
                if txn.source == LedgerTransaction.Source.REWARD and txn.source_ref in rewards
                else None,
            ),
        )
        for txn in txns
    ]


@require_GET
@member_required
def points_history(request: HttpRequest, member: Member) -> HttpResponse:
    form = HistoryFilterForm(request.GET)
    kind = form.kind_or_all()
    page = Paginator(ledger_history(member=member, kind=kind), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context: dict[str, Any] = {
        "member": member,
        "form": form,
        "kind": kind,
        "page": page,
        "lines": history_lines(list(page.object_list)),
        "filter_query": f"kind={kind}" if kind else "",
    }
    # A history-restore request (back button, htmx cache miss) needs the whole page.
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "points/portal/history.html#history-list", context)
    account = account_get(member=member)
    context.update(
        balance=points_balance(member=member),
        lifetime_earned=account.lifetime_earned if account is not None else 0,
        expiring=points_expiring(member=member),
    )
    return render(request, "points/portal/history.html", context)


# --- rules ----------------------------------------------------------------------------------


@require_GET
@member_required
def points_rules(request: HttpRequest, member: Member) -> HttpResponse:
    policy = policy_get()
    rates = list(category_rate_list())
    # The list's name in the member's language; a rate's note is for staff, not shown here.
    names = category_names()
    today = timezone.localdate()
    # A worked example from today's date, so the rule and the example can never disagree.
    example_last_day = expiry_for(timezone.now()).astimezone(BUSINESS_TZ).date()
    example_last_day -= datetime.timedelta(days=1)
    return render(
        request,
        "points/portal/rules.html",
        {
            "member": member,
            "policy": policy,
            "base_rate": _plain_number(policy.base_rate),
            "birthday_multiplier": _plain_number(policy.birthday_multiplier),
            "birthday_counts": policy.birthday_multiplier > 1,
            "excluded": [
                names.get(rate.category, rate.category) for rate in rates if not rate.rate
            ],
            "special": [
                {
                    "category": names.get(rate.category, rate.category),
                    "rate": _plain_number(rate.rate),
                }
                for rate in rates
                if rate.rate
            ],
            # "30 and 7": the reminder job's own schedule, in the member's language.
            "reminder_days": _(" and ").join(str(d) for d in sorted(REMINDER_DAYS, reverse=True)),
            "example_earned": today,
            "example_last_day": example_last_day,
        },
    )


# --- rewards --------------------------------------------------------------------------------


@require_GET
@member_required
def rewards(request: HttpRequest, member: Member) -> HttpResponse:
    now = timezone.now()
    balance = points_balance(member=member, at=now)
    rank = member_tier_rank(member=member)
    taken = redemption_counts(member=member)
    offers = [
        reward_offer(
            reward=reward,
            member=member,
            balance=balance,
            rank=rank,
            taken=taken.get(reward.pk, 0),
            at=now,
        )
        for reward in reward_list_available(at=now)
    ]
    return render(
        request,
        "points/portal/rewards.html",
        {"member": member, "balance": balance, "offers": offers},
    )


def _refusal_message(error: Exception) -> str:
    if isinstance(error, InsufficientPoints):
        return _(
            "You do not have enough points for this reward: it costs %(price)s points and you "
            "have %(available)s available, so you need %(missing)s more."
        ) % {
            "price": error.needed,
            "available": error.available,
            "missing": error.needed - error.available,
        }
    if isinstance(error, PointsInDebt):
        return _(
            "Your points balance is negative by %(debt)s points, so rewards cannot be redeemed "
            "yet. The points you earn pay this back first."
        ) % {"debt": error.debt}
    if isinstance(error, OutOfStock):
        return _("Sorry, this reward has just run out.")
    if isinstance(error, LimitReached):
        return _("You have already redeemed this reward as many times as allowed.")
    if isinstance(error, TierRequired):
        return _("This reward is not available to your tier.")
    if isinstance(error, MemberInactive):
        return _("Your membership is frozen, so rewards cannot be redeemed. Please ask at a store.")
    if isinstance(error, RewardUnavailable):
        return _("This reward is not available at the moment.")
    return _("This confirmation has expired. Please check the details and confirm again.")


@require_http_methods(["GET", "POST"])
@member_required
def reward_redeem_confirm(request: HttpRequest, member: Member, reward_code: str) -> HttpResponse:
    reward = reward_get(code=reward_code)
    if reward is None:
        raise Http404("no such reward")
    error = ""
    form = RedeemForm.fresh()
    if request.method == "POST":
        posted = RedeemForm(request.POST)
        if not posted.is_valid():
            error = _("This confirmation has expired. Please check the details and confirm again.")
        else:
            now = timezone.now()
            try:
                result = reward_redeem(
                    member=member,
                    reward=reward,
                    idempotency_key=f"portal:{posted.cleaned_data['idempotency_key']}",
                    actor=request.user,
                    now=now,
                )
            except (
                InsufficientPoints,
                PointsInDebt,
                OutOfStock,
                LimitReached,
                TierRequired,
                RewardUnavailable,
                IdempotencyConflict,
            ) as refusal:
                error = _refusal_message(refusal)
            else:
                if result.created:
                    messages.success(
                        request,
                        _("Done! You redeemed %(reward)s for %(points)s points.")
                        % {"reward": reward_name(reward), "points": result.redemption.points_spent},
                    )
                elif result.coupon is None:
                    messages.info(request, _("You already gave this: here is your receipt."))
                else:
                    messages.info(request, _("You already redeemed this: here is your coupon."))
                if result.coupon is None:
                    return redirect("portal:donation-receipt", redemption_id=result.redemption.pk)
                return redirect("portal:coupon-detail", coupon_code=result.coupon.code)
    offer = _offer_now(reward=reward, member=member)
    balance = points_balance(member=member)
    return render(
        request,
        "points/portal/redeem.html",
        {
            "member": member,
            "offer": offer,
            "balance": balance,
            "balance_after": balance.available - offer.price,
            "valid_days": reward.coupon_valid_days or policy_get().coupon_valid_days,
            "form": form,
            "error": error,
        },
    )


def _offer_now(*, reward: Reward, member: Member) -> RewardOffer:
    now = timezone.now()
    return reward_offer(
        reward=reward,
        member=member,
        balance=points_balance(member=member, at=now),
        rank=member_tier_rank(member=member),
        taken=redemption_counts(member=member).get(reward.pk, 0),
        at=now,
    )


# --- coupons --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CouponView:
    coupon: Coupon
    name: str
    status: str
    status_label: str
    last_day: datetime.date


def _coupon_view(coupon: Coupon, *, at: datetime.datetime) -> CouponView:
    status = coupon_status(coupon, at=at)
    return CouponView(
        coupon=coupon,
        name=reward_name(coupon.reward),
        status=status,
        status_label=Coupon.Status(status).label,
        last_day=coupon_last_day(coupon),
    )


@require_GET
@member_required
def coupons(request: HttpRequest, member: Member) -> HttpResponse:
    now = timezone.now()
    mine = [_coupon_view(coupon, at=now) for coupon in coupon_list_portal(member=member)]
    donations = [
        {"redemption": redemption, "name": reward_name(redemption.reward)}
        for redemption in donation_list(member=member)[:DONATIONS_SHOWN]
    ]
    return render(
        request,
        "points/portal/coupons.html",
        {"member": member, "coupons": mine, "donations": donations},
    )


@require_GET
@member_required
def coupon_detail(request: HttpRequest, member: Member, coupon_code: str) -> HttpResponse:
    coupon = coupon_get(code=coupon_code)
    # Someone else's coupon is as unknown as one that does not exist: no hint it is real.
    if coupon is None or coupon.member_id != member.pk:
        raise Http404("no such coupon")
    if not coupon.reward.is_coupon:
        # A donation's code from before donations had receipts: its receipt, not a QR code.
        if coupon.redemption_id is None:
            raise Http404("no such coupon")
        return redirect("portal:donation-receipt", redemption_id=coupon.redemption_id)
    view = _coupon_view(coupon, at=timezone.now())
    title = _("Coupon %(code)s") % {"code": coupon.code}
    return render(
        request,
        "points/portal/coupon_detail.html",
        {
            "member": member,
            "coupon": view,
            "reward": coupon.reward,
            "description": reward_description(coupon.reward),
            "code_grouped": member_no_grouped(coupon.code),
            "qr_svg": coupon_qr_svg(code=coupon.code, title=title)
            if view.status == Coupon.Status.ISSUED
            else "",
        },
    )


# --- donations ------------------------------------------------------------------------------

DONATIONS_SHOWN = 50


@require_GET
@member_required
def donation_receipt(request: HttpRequest, member: Member, redemption_id: int) -> HttpResponse:
    """The receipt of a donation: who gave how many points to which cause, and when."""
    redemption = donation_get(member=member, redemption_id=redemption_id)
    if redemption is None:
        raise Http404("no such donation")
    return render(
        request,
        "points/portal/donation_receipt.html",
        {
            "member": member,
            "redemption": redemption,
            "name": reward_name(redemption.reward),
            "description": reward_description(redemption.reward),
            "day": timezone.localtime(redemption.created_at, BUSINESS_TZ).date(),
        },
    )

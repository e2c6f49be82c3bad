"""Back-office views for points: purchases, returns, coupons, adjustments, the reconcile report.

Each view checks one permission of the roles (members/migrations/0002_roles.py and
points/migrations/0007_roles.py), parses a form and calls one service; a refusal from the
service becomes a message on the same form and nothing is written. htmx requests get only
the fragment that changes (django-template-partials); every page works without it.

The member 360 page belongs to members, which cannot import points: the panels at the end
of this module are registered with members.panels from PointsConfig.ready().
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members.jobs import job_run
from members.models import JobRun, Member, Store
from members.money import money_format
from members.permissions import staff_required
from members.selectors import (
    member_get_for_staff,
    staff_store_ids,
    staff_stores,
    store_list,
)
from members.staff_forms import no_store_message

from .earning import policy_get
from .ledger import (
    BUSINESS_TZ,
    Balance,
    IdempotencyConflict,
    InsufficientPoints,
    PointsError,
    PointsInDebt,
)
from .models import Coupon, PointsAdjustment, Purchase, Reward
from .purchase_limits import (
    AmountOverLimit,
    OccurredAtOutOfRange,
    ReturnBeforePurchase,
    ReturnDatedAhead,
    limit_message,
)
from .selectors import (
    adjustment_get,
    adjustment_list_decided,
    adjustment_list_pending,
    coupon_get,
    coupon_list_for_staff,
    ledger_history_for_staff,
    member_lots,
    points_balance,
    points_expiring_soon,
    purchase_get_by_receipt,
    purchase_list_with_returns,
    reconcile_runs,
    redemption_get,
)
from .services import (
    CENT,
    AdjustmentDecisionRefused,
    AdjustmentLimitExceeded,
    AdjustmentNotAllowed,
    ApprovalRequired,
    CouponExpired,
    CouponNotAccepted,
    CouponNotFound,
    CouponUsed,
    CouponVoid,
    CrossStoreReturnRefused,
    DonationNotVoidable,
    InvalidPurchase,
    MemberInactive,
    PurchaseNotFound,
    ReturnExceedsPurchase,
    StoreNotYours,
    adjustment_authority,
    adjustment_check,
    adjustment_limit,
    coupon_use,
    points_adjust,
    points_adjust_approve,
    points_adjust_reject,
    points_adjust_request,
    purchase_record,
    redemption_void,
    return_record,
)
from .staff_forms import (
    AdjustmentDecisionForm,
    CouponLookupForm,
    CouponUseForm,
    LedgerFilterForm,
    PointsAdjustForm,
    PurchaseRecordForm,
    RedemptionVoidForm,
    ReturnRecordForm,
    coupon_code_from_scan,
    member_for_till,
)

# The store last chosen on a points form: a till records at the same store all day. The
# enrolment form's choice is the fallback, so a cashier who just enrolled someone is set.
STORE_SESSION_KEY = "staff_points_store"
ENROL_STORE_SESSION_KEY = "staff_enrol_store"
LEDGER_PAGE_SIZE = 50
PANEL_LEDGER_ROWS = 20
PANEL_PURCHASES = 10
PANEL_COUPONS = 20
PANEL_LOTS = 50
RECONCILE_RUNS = 20


def _is_fragment_request(request: HttpRequest) -> bool:
    # A history restore (back button after hx-push-url) needs the whole page, not a fragment.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _render(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    fragment: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render the page, or only its `fragment` partial for htmx."""
    name = f"{template}#{fragment}" if fragment and _is_fragment_request(request) else template
    response = render(request, name, context, status=status)
    # The same URL answers with a fragment or a page: caches must keep them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def _member_or_404(member_no: str) -> Member:
    member = member_get_for_staff(member_no=member_no)
    if member is None:
        raise Http404(_("No member with this number."))
    return member


def _initial_store(request: HttpRequest) -> Store | None:
    """The store last used on this session if it is still one of the user's, else the
    first of the user's stores."""
    stores = staff_stores(user=request.user)
    for key in (STORE_SESSION_KEY, ENROL_STORE_SESSION_KEY):
        remembered = request.session.get(key)
        store = stores.filter(pk=remembered).first() if remembered else None
        if store is not None:
            return store
    return stores.first()


def _remember_store(request: HttpRequest, store: Store) -> None:
    request.session[STORE_SESSION_KEY] = store.pk


def reward_name(reward: Reward) -> str:
    if (translation.get_language() or "").startswith("en") and reward.name_en:
        return reward.name_en
    return reward.name_zh


def _yuan(points: int, points_per_yuan: int) -> Decimal:
    return (Decimal(points) / points_per_yuan).quantize(CENT)


def points_error_message(error: PointsError) -> str:
    """What a refusal from the ledger means to the member of staff who asked for it."""
    if isinstance(error, InsufficientPoints):
        return _("This needs %(needed)s points; the member has %(available)s available.") % {
            "needed": error.needed,
            "available": error.available,
        }
    if isinstance(error, PointsInDebt):
        return _(
            "The member's balance is negative by %(debt)s points; points cannot be spent "
            "until new earnings cover it."
        ) % {"debt": error.debt}
    known: list[tuple[type[PointsError], str]] = [
        (MemberInactive, _("This member's account is frozen or closed: it cannot earn or spend.")),
        (PurchaseNotFound, _("There is no purchase with this receipt number at this store.")),
        (ReturnExceedsPurchase, _("The amount is more than what is left of the purchase.")),
        (
            CrossStoreReturnRefused,
            _(
                "This purchase was made at another store: returns are accepted only at the "
                "store of the purchase."
            ),
        ),
        (
            StoreNotYours,
            _("You can only do this for your own stores. Choose one of the stores listed."),
        ),
        (CouponNotFound, _("There is no coupon with this code.")),
        (CouponUsed, _("This coupon has already been used.")),
        (CouponExpired, _("This coupon has expired.")),
        (CouponVoid, _("This coupon was cancelled (its redemption was voided).")),
        (
            CouponNotAccepted,
            _("This is a donation receipt, not a coupon: there is nothing to accept at the till."),
        ),
        (DonationNotVoidable, _("A donation is given to the charity: it cannot be voided.")),
        (AdjustmentNotAllowed, _("This adjustment is not allowed.")),
        (IdempotencyConflict, _("This was already recorded with different details.")),
    ]
    for kind, message in known:
        if isinstance(error, kind):
            return message
    if isinstance(error, InvalidPurchase):
        return _("The purchase cannot be recorded: %(reason)s.") % {"reason": error}
    return str(error)


# --- Record a purchase --------------------------------------------------------------------


def _member_card(member: Member | None, points_per_yuan: int) -> dict[str, Any]:
    if member is None:
        return {"found_member": None}
    balance = points_balance(member=member)
    return {
        "found_member": member,
        "balance": balance,
        "balance_yuan": _yuan(max(balance.available, 0), points_per_yuan),
    }


@require_http_methods(["GET", "POST"])
@staff_required("points.add_purchase")
def purchase_record_view(request: HttpRequest) -> HttpResponse:
    points_per_yuan = policy_get().points_per_yuan
    status = 200
    existing: Purchase | None = None
    if request.method == "POST":
        form = PurchaseRecordForm(request.POST, user=request.user, points_per_yuan=points_per_yuan)
        if form.is_valid():
            data = form.cleaned_data
            member = form.member_obj
            try:
                result = purchase_record(
                    member=member,
                    store=data["store"],
                    receipt_no=data["receipt_no"],
                    occurred_at=data["occurred_at"],
                    amount=data["amount"],
                    lines=data["lines"],
                    points_to_use=data["points_to_use"],
                    actor=request.user,
                )
            except IdempotencyConflict:
                existing = purchase_get_by_receipt(
                    store=data["store"], receipt_no=data["receipt_no"]
                )
                form.add_error(
                    "receipt_no",
                    _("This receipt was already recorded for a different purchase."),
                )
            except (InsufficientPoints, PointsInDebt) as error:
                form.add_error("points_to_use", points_error_message(error))
            except AmountOverLimit as error:
                form.add_error("amount", limit_message(error))
            except OccurredAtOutOfRange as error:
                # The form checked it a moment ago; the window moved on since.
                form.add_error("occurred_at", limit_message(error))
            except PointsError as error:
                form.add_error(None, points_error_message(error))
            else:
                _remember_store(request, data["store"])
                purchase = result.purchase
                if result.created:
                    text = _("Purchase recorded: +%(points)s points") % {
                        "points": purchase.points_earned
                    }
                    if purchase.points_used:
                        text += " · " + _("%(points)s points used as payment") % {
                            "points": purchase.points_used
                        }
                    messages.success(request, text)
                else:
                    messages.info(
                        request,
                        _("This purchase was already recorded (+%(points)s points).")
                        % {"points": purchase.points_earned},
                    )
                return redirect("staff:member-detail", member_no=member.member_no)
        status = 400
        member = form.member_obj
    else:
        typed = request.GET.get("member", "").strip()
        member = member_for_till(typed)[0] if typed else None
        form = PurchaseRecordForm(
            initial={"member": typed, "store": _initial_store(request)},
            user=request.user,
            points_per_yuan=points_per_yuan,
        )
    points = _points_typed(request)
    context = {
        "form": form,
        "existing": existing,
        "points_per_yuan": points_per_yuan,
        "points_typed": points,
        "points_typed_yuan": _yuan(points, points_per_yuan) if points else None,
        "no_store_message": no_store_message(user=request.user),
        **_member_card(member, points_per_yuan),
    }
    fragment = None
    if request.method == "GET":
        # htmx asks for the part next to the field being typed in.
        is_points = request.htmx and request.htmx.trigger_name == "points_to_use"
        fragment = "payment" if is_points else "member"
    return _render(
        request, "points/staff/purchase_record.html", context, fragment=fragment, status=status
    )


def _points_typed(request: HttpRequest) -> int:
    source = request.POST if request.method == "POST" else request.GET
    try:
        points = int(source.get("points_to_use", "") or 0)
    except ValueError:
        return 0
    return max(points, 0)


# --- Record a return ----------------------------------------------------------------------


def _original_lookup(source: Any) -> dict[str, Any]:
    """The purchase a return refers to, from the (possibly half-filled) form data."""
    receipt_no = (source.get("original_receipt_no") or "").strip()
    if not receipt_no:
        return {"original_looked_up": False}
    stores = store_list()
    store_id = source.get("original_store") or source.get("store")
    # ASCII digits only, and few enough for a key: `str.isdigit` also takes "²".
    valid = re.fullmatch(r"[0-9]{1,9}", str(store_id or ""))
    store = stores.filter(pk=int(store_id)).first() if valid else None
    purchase = (
        purchase_get_by_receipt(store=store, receipt_no=receipt_no) if store is not None else None
    )
    return {"original_looked_up": True, "original": purchase}


@require_http_methods(["GET", "POST"])
@staff_required("points.add_return")
def return_record_view(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = ReturnRecordForm(request.POST, user=request.user)
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = return_record(
                    store=data["store"],
                    receipt_no=data["receipt_no"],
                    original_receipt_no=data["original_receipt_no"],
                    original_store=data["original_store"],
                    amount=data["amount"],
                    occurred_at=data["occurred_at"],
                    actor=request.user,
                )
            except PurchaseNotFound:
                form.add_error(
                    "original_receipt_no",
                    _("There is no purchase with this receipt number at that store."),
                )
            except ReturnExceedsPurchase:
                original = purchase_get_by_receipt(
                    store=data["original_store"] or data["store"],
                    receipt_no=data["original_receipt_no"],
                )
                left = original.net_amount if original else Decimal(0)
                form.add_error(
                    "amount",
                    _("%(amount)s is more than the %(left)s left of this purchase to return.")
                    % {"amount": money_format(data["amount"]), "left": money_format(left)},
                )
            except IdempotencyConflict:
                form.add_error(
                    "receipt_no",
                    _("This return receipt was already recorded for a different return."),
                )
            except CrossStoreReturnRefused as error:
                form.add_error("original_store", points_error_message(error))
            except (ReturnBeforePurchase, ReturnDatedAhead) as error:
                form.add_error("occurred_at", limit_message(error))
            except PointsError as error:
                form.add_error(None, points_error_message(error))
            else:
                _remember_store(request, data["store"])
                purchase_return = result.purchase_return
                if result.created and result.history:
                    messages.success(
                        request,
                        _("Return recorded: %(message)s") % {"message": result.history_message},
                    )
                elif result.created:
                    messages.success(
                        request,
                        _("Return recorded: −%(points)s points")
                        % {"points": purchase_return.points_reversed},
                    )
                else:
                    messages.info(request, _("This return was already recorded."))
                return redirect(
                    "staff:member-detail", member_no=purchase_return.purchase.member.member_no
                )
        status = 400
        lookup = _original_lookup(request.POST)
    else:
        form = ReturnRecordForm(initial={"store": _initial_store(request)}, user=request.user)
        lookup = _original_lookup(request.GET)
    fragment = "original" if request.method == "GET" else None
    context = {"form": form, "no_store_message": no_store_message(user=request.user), **lookup}
    return _render(
        request, "points/staff/return_record.html", context, fragment=fragment, status=status
    )


# --- Accept a coupon ----------------------------------------------------------------------


def coupon_state(coupon: Coupon, *, now: datetime.datetime | None = None) -> str:
    """The status as the till sees it: an issued coupon past its date is expired already,
    though the nightly job has not marked it yet."""
    now = now or timezone.now()
    if coupon.status == Coupon.Status.ISSUED and coupon.valid_until <= now:
        return Coupon.Status.EXPIRED
    return coupon.status


def _coupon_context(coupon: Coupon | None, *, now: datetime.datetime | None = None) -> dict:
    if coupon is None:
        return {"coupon": None}
    state = coupon_state(coupon, now=now)
    problems = {
        Coupon.Status.USED: _("This coupon has already been used."),
        Coupon.Status.EXPIRED: _("This coupon has expired."),
        Coupon.Status.VOID: _("This coupon was cancelled (its redemption was voided)."),
    }
    return {
        "coupon": coupon,
        "coupon_state": state,
        "coupon_reward": reward_name(coupon.reward),
        "coupon_state_label": _("Valid")
        if state == Coupon.Status.ISSUED
        else Coupon.Status(state).label,
        "coupon_problem": problems.get(state, ""),
    }


@require_http_methods(["GET", "POST"])
@staff_required("points.change_coupon")
def coupon_accept_view(request: HttpRequest) -> HttpResponse:
    status = 200
    error = ""
    if request.method == "POST":
        status = 400
        use_form = CouponUseForm(request.POST, user=request.user)
        lookup = CouponLookupForm({"code": request.POST.get("code", "")})
        code = coupon_code_from_scan(request.POST.get("code", ""))
        if use_form.is_valid():
            data = use_form.cleaned_data
            try:
                coupon = coupon_use(
                    code=data["code"],
                    store=data["store"],
                    receipt_no=data["receipt_no"],
                    actor=request.user,
                )
            except PointsError as exc:
                error = points_error_message(exc)
                # A coupon used twice is a conflict, as in the POS API; the rest are refusals.
                status = 409 if isinstance(exc, CouponUsed) else 400
            else:
                _remember_store(request, data["store"])
                messages.success(
                    request,
                    _("Coupon %(code)s marked used: %(reward)s")
                    % {"code": coupon.code, "reward": reward_name(coupon.reward)},
                )
                # Back to an empty lookup, ready for the next coupon: the message is the one
                # outcome (the coupon's card would now also say "used", read as a refusal).
                return redirect("staff:coupon-accept")
    else:
        lookup = CouponLookupForm(request.GET or None)
        code = lookup.cleaned_data["code"] if lookup.is_bound and lookup.is_valid() else ""
        use_form = CouponUseForm(
            initial={"code": code, "store": _initial_store(request)}, user=request.user
        )
    coupon = coupon_get(code=code) if code else None
    context = {
        "lookup": lookup,
        "use_form": use_form,
        "code": code,
        "error": error,
        "not_found": bool(code) and coupon is None,
        "no_store_message": no_store_message(user=request.user),
        **_coupon_context(coupon),
    }
    return _render(
        request, "points/staff/coupon_accept.html", context, fragment="coupon", status=status
    )


@require_http_methods(["GET", "POST"])
@staff_required("points.change_redemption")
def redemption_void_view(request: HttpRequest, redemption_id: int) -> HttpResponse:
    """Asks first: the coupon, the points that go back, a reason and a tick to confirm."""
    redemption = redemption_get(redemption_id=redemption_id)
    if redemption is None:
        raise Http404(_("No such redemption."))
    status = 200
    if request.method == "POST":
        form = RedemptionVoidForm(request.POST)
        if form.is_valid():
            try:
                redemption_void(
                    redemption=redemption,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except PointsError as error:
                form.add_error(None, points_error_message(error))
            else:
                messages.success(
                    request,
                    _("Redemption voided: %(points)s points refunded")
                    % {"points": redemption.points_spent},
                )
                return redirect("staff:member-detail", member_no=redemption.member.member_no)
        status = 400
    else:
        form = RedemptionVoidForm()
    coupon = Coupon.objects.filter(redemption=redemption).first()
    context = {
        "form": form,
        "redemption": redemption,
        "member": redemption.member,
        "reward": reward_name(redemption.reward),
        **({"coupon_code": coupon.code} if coupon is not None else {}),
    }
    return render(request, "points/staff/redemption_void.html", context, status=status)


# --- Adjust points ------------------------------------------------------------------------


def _adjust_preview(
    *, member: Member, points: int, reason: str, user: Any
) -> tuple[Balance, bool, PointsError | None]:
    """What the confirmation shows: the balance now, whether a second administrator must
    approve, and the refusal the service would give (checked again under the lock)."""
    balance = points_balance(member=member)
    needs_approval = False
    try:
        adjustment_check(
            member=member, points=points, reason=reason, actor=user, now=timezone.now()
        )
    except ApprovalRequired:
        needs_approval = True
    except PointsError as error:
        return balance, False, error
    if points < 0 and balance.debt:
        return balance, needs_approval, PointsInDebt(debt=balance.debt)
    if points < 0 and balance.available < -points:
        return (
            balance,
            needs_approval,
            InsufficientPoints(needed=-points, available=balance.available),
        )
    return balance, needs_approval, None


def _adjust_error_field(error: PointsError) -> str | None:
    """The refusals about the figure itself are shown on the points field."""
    if isinstance(error, InsufficientPoints | PointsInDebt | AdjustmentLimitExceeded):
        return "points"
    return None


def adjustment_error_message(error: PointsError) -> str:
    if isinstance(error, AdjustmentLimitExceeded) and error.daily:
        return _(
            "Store staff can adjust at most %(limit)s points per member per day (added and "
            "taken away together); %(used)s are used today. Ask a store manager."
        ) % {"limit": error.limit, "used": error.used}
    if isinstance(error, AdjustmentLimitExceeded) and error.ceiling:
        return _("No adjustment may move more than %(limit)s points.") % {"limit": error.limit}
    if isinstance(error, AdjustmentLimitExceeded) and not isinstance(error, ApprovalRequired):
        if error.authority == PointsAdjustment.Authority.STAFF:
            return _(
                "Store staff can adjust up to %(limit)s points at a time. Ask a store "
                "manager for a larger adjustment."
            ) % {"limit": error.limit}
        if error.authority == PointsAdjustment.Authority.MANAGER:
            return _(
                "Store managers can adjust up to %(limit)s points at a time. Ask an "
                "administrator for a larger adjustment."
            ) % {"limit": error.limit}
    if isinstance(error, AdjustmentLimitExceeded):
        return _("This adjustment is above your limit of %(limit)s points.") % {
            "limit": error.limit
        }
    if isinstance(error, AdjustmentDecisionRefused):
        return _(
            "A second administrator must approve or reject this adjustment, not the one who "
            "asked for it."
        )
    return points_error_message(error)


@require_http_methods(["GET", "POST"])
@staff_required("points.adjust_points")
def points_adjust_view(request: HttpRequest, member_no: str) -> HttpResponse:
    """Two submits: the first shows "balance X → Y" and asks to confirm, the second posts
    (or, above the manager limit, sends an administrator's request for approval)."""
    member = _member_or_404(member_no)
    status = 200
    confirming: dict[str, Any] | None = None
    if request.method == "POST":
        form = PointsAdjustForm(request.POST, user=request.user)
        if form.is_valid() and "edit" not in request.POST:
            data = form.cleaned_data
            balance, needs_approval, problem = _adjust_preview(
                member=member, points=data["points"], reason=data["reason"], user=request.user
            )
            if problem is not None:
                form.add_error(_adjust_error_field(problem), adjustment_error_message(problem))
            elif not data["confirm"]:
                confirming = {
                    "points": data["points"],
                    "reason": data["reason"],
                    "key": data["idempotency_key"],
                    "before": balance.available,
                    "after": balance.available + data["points"],
                    "needs_approval": needs_approval,
                }
                return render(
                    request,
                    "points/staff/points_adjust.html",
                    {
                        "form": form,
                        "member": member,
                        "balance": balance,
                        "confirming": confirming,
                    },
                )
            else:
                response = _adjust_post(request, form=form, member=member, data=data)
                if response is not None:
                    return response
            status = 400
        elif "edit" not in request.POST:
            status = 400
    else:
        form = PointsAdjustForm(user=request.user)
    authority = adjustment_authority(user=request.user)
    context = {
        "form": form,
        "member": member,
        "balance": points_balance(member=member),
        "limit": adjustment_limit(authority=authority),
        "daily_limit": settings.POINTS_ADJUST_STAFF_DAILY_MAX,
        "authority": authority,
    }
    return render(request, "points/staff/points_adjust.html", context, status=status)


def _adjust_post(
    request: HttpRequest, *, form: PointsAdjustForm, member: Member, data: dict[str, Any]
) -> HttpResponse | None:
    """The confirmed submit: post, or ask for approval; None when refused (form errors)."""
    arguments = {
        "member": member,
        "points": data["points"],
        "reason": data["reason"],
        "actor": request.user,
        "idempotency_key": str(data["idempotency_key"]),
    }
    try:
        try:
            txn = points_adjust(**arguments)
        except ApprovalRequired:
            adjustment = points_adjust_request(**arguments)
            messages.info(
                request,
                _(
                    "Adjustment of %(points)+d points sent for approval: a second "
                    "administrator must approve it before it is posted."
                )
                % {"points": adjustment.points},
            )
            return redirect("staff:adjustment-approvals")
    except IdempotencyConflict:
        form.add_error(
            None, _("This form was already submitted with other values. Reload and retry.")
        )
    except PointsError as error:
        form.add_error(_adjust_error_field(error), adjustment_error_message(error))
    else:
        messages.success(
            request,
            _("Points adjusted: %(points)+d (%(reason)s)")
            % {"points": txn.member_amount, "reason": txn.reason},
        )
        return redirect("staff:member-detail", member_no=member.member_no)
    return None


# --- Adjustments waiting for a second administrator ---------------------------------------

DECIDED_ADJUSTMENTS = 20


@require_GET
@staff_required("points.approve_adjustment")
def adjustment_approvals_view(request: HttpRequest) -> HttpResponse:
    pending = list(adjustment_list_pending())
    for adjustment in pending:
        balance = points_balance(member=adjustment.member)
        adjustment.balance_before = balance.available
        adjustment.balance_after = balance.available + adjustment.points
        adjustment.mine = adjustment.requested_by_id == request.user.pk
    context = {
        "pending": pending,
        "decided": adjustment_list_decided(limit=DECIDED_ADJUSTMENTS),
        "form": AdjustmentDecisionForm(),
        "limit": settings.POINTS_ADJUST_MANAGER_MAX,
    }
    return render(request, "points/staff/adjustment_approvals.html", context)


@require_POST
@staff_required("points.approve_adjustment")
def adjustment_decide_view(request: HttpRequest, adjustment_id: int, decision: str) -> HttpResponse:
    adjustment = adjustment_get(adjustment_id=adjustment_id)
    if adjustment is None:
        raise Http404(_("No such adjustment."))
    form = AdjustmentDecisionForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        if decision == "approve":
            adjustment = points_adjust_approve(adjustment=adjustment, actor=request.user)
        else:
            adjustment = points_adjust_reject(adjustment=adjustment, actor=request.user, note=note)
    except PointsError as error:
        messages.error(request, adjustment_error_message(error))
    else:
        if adjustment.status == PointsAdjustment.Status.POSTED:
            messages.success(
                request,
                _("Adjustment approved and posted: %(points)+d points for %(member)s")
                % {"points": adjustment.points, "member": adjustment.member.member_no},
            )
        else:
            messages.success(
                request,
                _("Adjustment rejected: nothing was posted for %(member)s")
                % {"member": adjustment.member.member_no},
            )
    return redirect("staff:adjustment-approvals")


# --- Full points history of a member -----------------------------------------------------


@require_GET
@staff_required("members.view_member", "points.view_account")
def member_ledger_view(request: HttpRequest, member_no: str) -> HttpResponse:
    member = _member_or_404(member_no)
    form = LedgerFilterForm(request.GET or None)
    kind = form.cleaned_data["kind"] if form.is_bound and form.is_valid() else ""
    history = ledger_history_for_staff(member=member, kind=kind)
    page = Paginator(history, LEDGER_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "member": member,
        "form": form,
        "page": page,
        "filter_query": query.urlencode(),
        "balance": points_balance(member=member),
    }
    return _render(request, "points/staff/member_ledger.html", context, fragment="history")


# --- Reconcile report ---------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_required("points.view_ledgertransaction")
def reconcile_view(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        run = job_run(name="reconcile", business_date=timezone.localdate())
        if run.status == JobRun.Status.SUCCEEDED:
            messages.success(request, _("Reconcile finished: the ledger reconciles."))
        else:
            messages.error(request, _("Reconcile finished: mismatches found."))
        return redirect("staff:reconcile")
    runs = reconcile_runs(limit=RECONCILE_RUNS)
    return render(request, "points/staff/reconcile.html", {"runs": runs})


# --- Panels on the member 360 page (registered in apps.py) --------------------------------


def _can_see_points(request: HttpRequest) -> bool:
    return request.user.has_perm("points.view_account")


def balance_panel(member: Member, request: HttpRequest) -> dict | None:
    if not _can_see_points(request):
        return None
    return {
        "balance": points_balance(member=member),
        "expiring": points_expiring_soon(member=member),
    }


def purchases_panel(member: Member, request: HttpRequest) -> dict | None:
    if not _can_see_points(request):
        return None
    # Store staff and managers see the purchases at their stores only.
    store_ids = staff_store_ids(user=request.user)
    purchases = purchase_list_with_returns(
        member=member, limit=PANEL_PURCHASES, store_ids=store_ids
    )
    return {"purchases": purchases, "own_stores_only": store_ids is not None}


def ledger_panel(member: Member, request: HttpRequest) -> dict | None:
    if not _can_see_points(request):
        return None
    # One row more than shown tells whether there is more, without a COUNT query.
    rows = list(ledger_history_for_staff(member=member)[: PANEL_LEDGER_ROWS + 1])
    return {"transactions": rows[:PANEL_LEDGER_ROWS], "more": len(rows) > PANEL_LEDGER_ROWS}


def lots_panel(member: Member, request: HttpRequest) -> dict | None:
    if not _can_see_points(request):
        return None
    now = timezone.now()
    lots = list(member_lots(member=member).filter(remaining__gt=0)[:PANEL_LOTS])
    for lot in lots:
        lot.is_pending = lot.available_at > now
        lot.last_day = timezone.localtime(lot.expires_at, BUSINESS_TZ) - datetime.timedelta(
            microseconds=1
        )
    return {"lots": lots}


def coupons_panel(member: Member, request: HttpRequest) -> dict | None:
    if not _can_see_points(request):
        return None
    now = timezone.now()
    coupons = coupon_list_for_staff(member=member, limit=PANEL_COUPONS)
    rows = []
    for coupon in coupons:
        context = _coupon_context(coupon, now=now)
        context["can_void"] = (
            context["coupon_state"] == Coupon.Status.ISSUED
            and coupon.redemption_id is not None
            and coupon.redemption.status == coupon.redemption.Status.ACTIVE
            and coupon.reward.is_coupon
        )
        rows.append(context)
    return {"coupons": rows}

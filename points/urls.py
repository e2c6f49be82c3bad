"""Points URLs: `portal_patterns` join the portal namespace at /, `staff_patterns` the staff
namespace at /staff/ (see loyalty_site/urls.py)."""

from __future__ import annotations

from django.urls import path, re_path

from members.urls import MEMBER_NO

from . import merge_views, staff_views, views

portal_patterns = [
    path("points/", views.points_history, name="points-history"),
    path("points/rules/", views.points_rules, name="points-rules"),
    path("rewards/", views.rewards, name="rewards"),
    path(
        "rewards/<str:reward_code>/redeem/",
        views.reward_redeem_confirm,
        name="reward-redeem",
    ),
    path("coupons/", views.coupons, name="coupons"),
    path("coupons/<str:coupon_code>/", views.coupon_detail, name="coupon-detail"),
    path("donations/<int:redemption_id>/", views.donation_receipt, name="donation-receipt"),
]

staff_patterns = [
    path("purchases/new/", staff_views.purchase_record_view, name="purchase-record"),
    path("returns/new/", staff_views.return_record_view, name="return-record"),
    path("coupons/", staff_views.coupon_accept_view, name="coupon-accept"),
    path(
        "redemptions/<int:redemption_id>/void/",
        staff_views.redemption_void_view,
        name="redemption-void",
    ),
    re_path(
        rf"^members/{MEMBER_NO}/adjust/$", staff_views.points_adjust_view, name="points-adjust"
    ),
    re_path(
        rf"^members/{MEMBER_NO}/points/$", staff_views.member_ledger_view, name="member-ledger"
    ),
    path("reconcile/", staff_views.reconcile_view, name="reconcile"),
    path(
        "adjustments/approvals/",
        staff_views.adjustment_approvals_view,
        name="adjustment-approvals",
    ),
    path(
        "adjustments/<int:adjustment_id>/approve/",
        staff_views.adjustment_decide_view,
        {"decision": "approve"},
        name="adjustment-approve",
    ),
    path(
        "adjustments/<int:adjustment_id>/reject/",
        staff_views.adjustment_decide_view,
        {"decision": "reject"},
        name="adjustment-reject",
    ),
    path("members/duplicates/", merge_views.duplicates_view, name="duplicates"),
    path("members/merge/", merge_views.member_merge_view, name="member-merge"),
]

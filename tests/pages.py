"""Every portal and back-office page, with the data that fills it, for the page-wide tests.

`page_world()` writes a member with a login, purchases, a coupon, consent changes, an
import and a job run, and a superuser; `portal_pages(world)` and `staff_pages(world)` list
the URLs to open. `visible_text(html)` is what a reader sees: text and the attributes shown
or read out (title, aria-label, placeholder, alt), never scripts, styles or the QR code.

`tests/test_page_languages.py` (Django's client) and `tests/browser/test_page_width.py`
(Chromium at 390 px) both use them, so a page added here is checked by both.
"""

from __future__ import annotations

import datetime
import html as html_lib
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from campaigns.messages import messages_enqueue, unsubscribe_token
from campaigns.models import Campaign, CampaignMember, OutboxMessage, Segment
from core.imports import import_file
from core.models import JobRun
from members.models import ConsentEvent, Member
from members.services import Consents, member_enroll, member_set_consent
from points.models import Reward
from points.services import purchase_record, reward_redeem
from tests.factories import StoreFactory, UserFactory

# Names and places people typed: shown as entered in either language.
MEMBER_NAME = "李小龙"
STORE_NAME = "上海南京路店"
CITY = "上海"
IMPORTED_NAME = "王芳"
SEGMENT_NAME = "上海会员"
CAMPAIGN_NAME = "春季回馈"
DRAFT_CAMPAIGN_NAME = "会员日加赠"


@dataclass
class World:
    member: Member
    member_password: str
    admin_email: str
    admin_password: str
    coupon_code: str
    donation_id: int
    import_id: int
    job_run_id: int
    # The member the import created, for the merge page.
    other_member_no: str
    # An in-portal notice the member got, and the unsubscribe link of their e-mails.
    notice_id: int
    unsubscribe_token: str
    # Text that people entered (names, stores, cities): allowed in either language.
    entered: list[str] = field(default_factory=list)
    segment_id: int = 0
    # A running campaign with the member in its audience, for its results page.
    campaign_id: int = 0
    # A draft bonus campaign on the segment, for its edit and launch pages.
    draft_campaign_id: int = 0


def page_world() -> World:
    store = StoreFactory(code="SH001", name=STORE_NAME, city=CITY)
    password = "demo-pass-123"
    user = UserFactory(
        email="li@example.com", phone="+8613800000001", phone_verified=True, name=MEMBER_NAME
    )
    member = member_enroll(
        user=user,
        phone="13800000001",
        name=MEMBER_NAME,
        email="li@example.com",
        gender=Member.Gender.MALE,
        birthday=datetime.date(1990, 5, 17),
        city=CITY,
        channel=Member.Channel.STORE,
        store=store,
        consents=Consents(privacy_version="2026-01", sms=True, email=False),
    )
    member_set_consent(
        member=member,
        kind=ConsentEvent.Kind.EMAIL,
        granted=True,
        source=ConsentEvent.Source.PORTAL,
        actor=user,
    )
    now = timezone.now()
    for receipt, amount in (("20260301-0001", "1943.80"), ("20260302-0002", "154.50")):
        purchase_record(
            member=member, store=store, receipt_no=receipt, occurred_at=now, amount=Decimal(amount)
        )
    reward = Reward.objects.create(
        code="CNY10",
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="10元优惠券",
        name_en="¥10 off",
        description_zh="下次购物立减10元",
        description_en="Ten yuan off your next purchase",
        points_price=1000,
        amount_off=Decimal("10"),
    )
    redemption = reward_redeem(member=member, reward=reward, idempotency_key="world-1")
    charity = Reward.objects.create(
        code="GIVE1",
        kind=Reward.Kind.DONATION,
        name_zh="希望工程捐赠",
        name_en="Project Hope donation",
        description_zh="捐出积分，资助乡村学校",
        description_en="Give points to rural schools",
        points_price=100,
    )
    donation = reward_redeem(member=member, reward=charity, idempotency_key="world-2")
    admin = UserFactory(email="admin@example.com", name="管理员", is_superuser=True, is_staff=True)
    member_import = import_file(
        kind="members",
        file_name="members.csv",
        content=(
            "source_id,phone,name,email,gender,birthday,city\n"
            f"A1,13900000001,{IMPORTED_NAME},,F,1990-01-02,{CITY}\n"
            "A2,123,,,,,\n"
        ).encode(),
        actor=admin,
    )
    JobRun.objects.create(
        job="points_expiry",
        business_date=timezone.localdate(),
        status=JobRun.Status.SUCCEEDED,
        finished_at=now,
        seconds=1.5,
        rows=3,
        details={"lots_expired": 3, "coupons_expired": 0},
    )
    # A reconcile run with every figure the job writes, a large posting with a long line in
    # its list among them, and a long error: the run's page and the list show all of it.
    job_run = JobRun.objects.create(
        job="reconcile",
        business_date=timezone.localdate(),
        status=JobRun.Status.SUCCEEDED,
        finished_at=now,
        seconds=2.5,
        rows=2,
        details={
            "accounts_checked": 2,
            "mismatches": [],
            "unbalanced_transactions": [],
            "large_postings_threshold": 100_000,
            "large_postings_from": "2026-12-05T16:00:00+00:00",
            "large_postings_until": "2026-12-06T16:00:00+00:00",
            "large_postings_count": 1,
            "large_postings": [
                {
                    "transaction": 1,
                    "member_no": member.member_no,
                    "points": 150_000,
                    "reference": "x" * 120,
                    "recorded_at": "2026-12-06T02:00:00+00:00",
                }
            ],
        },
    )
    notice = campaign_notice_send(member=member, now=now)
    campaign = Campaign.objects.create(
        name=CAMPAIGN_NAME,
        kind=Campaign.Kind.BONUS,
        bonus_points=100,
        status=Campaign.Status.RUNNING,
        launched_at=now - datetime.timedelta(days=1),
        salt="pages",
    )
    CampaignMember.objects.create(
        campaign=campaign, member=member, arm=CampaignMember.Arm.TREATMENT, draw=0.5
    )
    segment = Segment.objects.create(
        name=SEGMENT_NAME,
        rules={
            "version": 1,
            "rule": {"group": "and", "rules": [{"field": "city", "op": "eq", "value": CITY}]},
        },
    )
    return World(
        member=member,
        member_password=password,
        admin_email=admin.email,
        admin_password=password,
        coupon_code=redemption.coupon.code,
        donation_id=donation.redemption.pk,
        import_id=member_import.pk,
        job_run_id=job_run.pk,
        other_member_no=Member.objects.get(name=IMPORTED_NAME).member_no,
        notice_id=notice.pk,
        unsubscribe_token=unsubscribe_token(member_id=member.pk),
        segment_id=segment.pk,
        entered=[
            MEMBER_NAME,
            STORE_NAME,
            CITY,
            IMPORTED_NAME,
            admin.name,
            "members.csv",
            charity.code,
            NOTICE_SUBJECT,
            notice.body,
            notice.campaign.name,
            SEGMENT_NAME,
            CAMPAIGN_NAME,
            DRAFT_CAMPAIGN_NAME,
        ],
        campaign_id=campaign.pk,
        draft_campaign_id=Campaign.objects.create(
            name=DRAFT_CAMPAIGN_NAME,
            kind=Campaign.Kind.BONUS,
            bonus_points=50,
            segment=segment,
        ).pk,
    )


NOTICE_SUBJECT = "春季礼遇"


def campaign_notice_send(*, member: Member, now: datetime.datetime):
    """A message campaign's in-portal notice to `member`, as a marketer typed it."""
    campaign = Campaign.objects.create(
        name="春季回馈",
        kind=Campaign.Kind.MESSAGE,
        status=Campaign.Status.RUNNING,
        send_portal=True,
        message_subject_zh=NOTICE_SUBJECT,
        message_body_zh="{name}您好，春季回馈已开始。",
    )
    messages_enqueue(campaign=campaign, member_ids=[member.pk], now=now)
    return OutboxMessage.objects.get(campaign=campaign, member=member)


def portal_pages(world: World) -> dict[str, str]:
    """Every page a member opens (not the JSON data export)."""
    return {
        "portal:home": "/",
        "portal:profile": "/profile/",
        "portal:consent": "/privacy/",
        "portal:privacy-notice": "/privacy/notice/",
        "portal:account-close": "/privacy/close/",
        "portal:points-history": "/points/",
        "portal:points-rules": "/points/rules/",
        "portal:rewards": "/rewards/",
        "portal:reward-redeem": "/rewards/CNY10/redeem/",
        "portal:coupons": "/coupons/",
        "portal:coupon-detail": f"/coupons/{world.coupon_code}/",
        "portal:tiers": "/tiers/",
        "portal:referral": "/invite/",
        "portal:donation-receipt": f"/donations/{world.donation_id}/",
        "portal:notices": "/notices/",
        "portal:notice-detail": f"/notices/{world.notice_id}/",
        "portal:unsubscribe": f"/unsubscribe/{world.unsubscribe_token}/",
    }


def staff_pages(world: World) -> dict[str, str]:
    """Every back-office page an administrator opens (not the CSV downloads or POST-only
    actions)."""
    number = world.member.member_no
    return {
        "staff:home": "/staff/",
        "staff:member-search": "/staff/members/?q=李",
        "staff:member-enrol": "/staff/members/new/",
        "staff:import-upload": "/staff/imports/members/",
        "staff:import-detail": f"/staff/imports/{world.import_id}/",
        # One upload page per kind of import.
        "staff:import-upload#purchases": "/staff/imports/purchases/",
        "staff:import-upload#balances": "/staff/imports/balances/",
        "staff:member-detail": f"/staff/members/{number}/",
        "staff:audit-log": "/staff/audit/",
        "staff:jobs": "/staff/jobs/",
        "staff:job-run-detail": f"/staff/jobs/{world.job_run_id}/",
        "staff:purchase-record": f"/staff/purchases/new/?member={number}",
        "staff:return-record": "/staff/returns/new/",
        "staff:coupon-accept": f"/staff/coupons/?code={world.coupon_code}",
        "staff:points-adjust": f"/staff/members/{number}/adjust/",
        "staff:member-ledger": f"/staff/members/{number}/points/",
        "staff:reconcile": "/staff/reconcile/",
        "staff:duplicates": "/staff/members/duplicates/",
        "staff:member-merge": (
            f"/staff/members/merge/?source={world.other_member_no}&target={number}"
        ),
        "staff:tier-override": f"/staff/members/{number}/tier/",
        "staff:adjustment-approvals": "/staff/adjustments/approvals/",
        "staff:analytics": "/staff/analytics/",
        # A panel's own page (the dashboard's link without JavaScript).
        "staff:analytics-panel": "/staff/analytics/panel/members/",
        "staff:analytics-at-risk": "/staff/analytics/members/?kind=high-risk",
        "staff:analytics-model": "/staff/analytics/model/",
        "staff:segments": "/staff/segments/",
        "staff:segment-new": "/staff/segments/new/",
        "staff:segment-detail": f"/staff/segments/{world.segment_id}/",
        "staff:campaign-results": f"/staff/campaigns/{world.campaign_id}/results/",
        "staff:campaign-list": "/staff/campaigns/",
        "staff:campaign-new": "/staff/campaigns/new/",
        "staff:campaign-detail": f"/staff/campaigns/{world.campaign_id}/",
        "staff:campaign-edit": f"/staff/campaigns/{world.draft_campaign_id}/edit/",
        "staff:campaign-launch": f"/staff/campaigns/{world.draft_campaign_id}/launch/",
        "staff:campaign-winback": "/staff/campaigns/win-back/",
    }


# Values a page quotes literally, the same in both languages: the member import's help names
# the Chinese cell values it understands (女/男, 是/否); the segment builder's rules textarea
# holds JSON, whose keys and group codes are the format's own.
_RULES_JSON = ['"rule"', '"rules"', '"group": "and"']
LITERALS = {
    "staff:import-upload": ["女", "男", "是", "否"],
    "staff:segment-new": _RULES_JSON,
    "staff:segment-detail": _RULES_JSON,
}

# URL names that are not pages to read: downloads and POST-only actions.
NOT_PAGES = {
    "portal:data-export",
    "staff:import-errors",
    # The import pages' addresses of before: redirects to the pages above.
    *(
        f"staff:{kind}-import{page}-old"
        for kind in ("members", "purchases", "balances")
        for page in ("", "-detail", "-errors")
    ),
    "staff:member-reveal-phone",
    "staff:audit-log-csv",
    "staff:analytics-panel-csv",
    "staff:analytics-at-risk-csv",
    "staff:job-rerun",
    "staff:redemption-void",
    "staff:adjustment-approve",
    "staff:adjustment-reject",
    "staff:segment-count",
    "staff:segment-preview",
    "staff:segment-count-json",
    "staff:segment-archive",
    "staff:segment-export",
    "staff:campaign-results-refresh",
    "staff:campaign-results-csv",
    "staff:campaign-approve",
    "staff:campaign-cancel",
}

# Scripts and styles are not read; <code>, <pre>, <kbd> and <samp> hold literal values
# (CSV columns and example files, job and action codes) that read the same in any language.
_HIDDEN = re.compile(r"<(script|style|svg|template|code|pre|kbd|samp)\b.*?</\1>|<!--.*?-->", re.S)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_SHOWN_ATTRIBUTES = re.compile(r'\b(?:title|aria-label|placeholder|alt)="([^"]*)"')


def visible_text(html: str) -> str:
    """The words a reader sees or hears on the page, one text per line."""
    body = html.split("<body", 1)[-1].split(">", 1)[-1]
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    body = _HIDDEN.sub(" ", body)
    attributes = _SHOWN_ATTRIBUTES.findall(body)
    text = _EMAIL.sub(" ", re.sub(r"<[^>]+>", "\n", body))  # addresses are what people typed
    parts = [title.group(1) if title else "", *_EMAIL.sub(" ", "\n".join(attributes)).split("\n")]
    parts += text.split("\n")
    return "\n".join(line for line in (html_lib.unescape(part).strip() for part in parts) if line)

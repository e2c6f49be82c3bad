"""In-portal notices on the member's home (with an unread badge) and their page; the
member's messages on the staff member 360 page; the language a member chooses."""

from __future__ import annotations

import re

import pytest

from campaigns.messages import messages_enqueue, outbox_dispatch
from campaigns.models import OutboxMessage
from tests.conftest import make_role_user

from .outbox_world import NOON, campaign, member, past_message, shanghai

pytestmark = pytest.mark.django_db


def _badge(html: str) -> str | None:
    found = re.search(r'class="badge notices-unread"[^>]*>(\d+)<', html)
    return found.group(1) if found else None


def _notice(reader, *, subject: str, body: str, now=NOON) -> OutboxMessage:
    c = campaign(portal=True, message_subject_zh=subject, message_body_zh=body)
    messages_enqueue(campaign=c, member_ids=[reader.pk], now=now)
    return OutboxMessage.objects.get(campaign=c)


def test_home_shows_notices_with_an_unread_badge_and_the_page_reads_them(client):
    reader = member(login=True, name="王芳")
    _notice(reader, subject="春季礼遇", body="{name}您好，春季回馈已开始。", now=shanghai(8, 10))
    _notice(reader, subject="积分翻倍", body="本周末积分翻倍。", now=shanghai(9, 10))
    client.force_login(reader.user)

    home = client.get("/").content.decode()
    assert _badge(home) == "2"
    assert "2 条未读通知" in home
    assert home.index("积分翻倍") < home.index("春季礼遇")  # newest first

    page = client.get("/notices/").content.decode()
    assert "王芳您好，春季回馈已开始。" in page and "本周末积分翻倍。" in page
    assert page.count('class="badge">新') == 2  # shown as new this once

    home = client.get("/").content.decode()
    assert _badge(home) is None
    assert "积分翻倍" in home  # still listed, just read
    assert "新</span>" not in client.get("/notices/").content.decode()


def test_opening_one_notice_reads_that_one_only(client):
    reader = member(login=True)
    first = _notice(reader, subject="春季礼遇", body="一")
    _notice(reader, subject="积分翻倍", body="二")
    client.force_login(reader.user)

    response = client.get(f"/notices/{first.pk}/")

    assert response.status_code == 200 and "春季礼遇" in response.content.decode()
    assert _badge(client.get("/").content.decode()) == "1"
    first.refresh_from_db()
    assert first.read_at is not None


def test_a_member_cannot_open_someone_elses_notice(client):
    owner, nosy = member(login=True), member(login=True)
    notice = _notice(owner, subject="春季礼遇", body="一")
    client.force_login(nosy.user)
    assert client.get(f"/notices/{notice.pk}/").status_code == 404
    notice.refresh_from_db()
    assert notice.read_at is None


def test_no_notices_no_panel(client):
    reader = member(login=True)
    # A text and a notice that never reached them (no login then) are not notices.
    past_message(reader, at=NOON)
    client.force_login(reader.user)
    assert "notices-panel" not in client.get("/").content.decode()
    assert "暂无通知" in client.get("/notices/").content.decode()


def test_the_member_360_page_lists_the_members_messages_with_their_status(client, store):
    staff = make_role_user("store_staff", stores=[store])
    reader = member(sms=True, email=False, login=True, home_store=store)
    past_message(reader, at=shanghai(1, 12), purpose="service")
    c = campaign(sms=True, email=True, portal=True, name="春季回馈")
    messages_enqueue(campaign=c, member_ids=[reader.pk], now=shanghai(10, 22, 30))
    client.force_login(staff)

    html = client.get(f"/staff/members/{reader.member_no}/").content.decode()

    panel = html[html.index('class="card member-outbox"') :].split("</section>")[0]
    rows = panel.split("<tr>")[2:]
    assert len(rows) == 4
    # Newest first: the campaign's three, then the service text.
    statuses = [re.search(r'badge outbox-\w+">([^<]+)<', row).group(1) for row in rows]
    assert sorted(statuses[:3]) == sorted(["延后发送（免打扰时段）", "未获同意", "已发送"])
    assert statuses[3] == "已发送"
    assert "至 2026-03-11 09:00" in panel  # the delayed text's time
    assert "春季回馈" in panel and "服务" in panel and "营销" in panel
    assert reader.phone not in panel


def test_the_panel_shows_what_dispatch_did(client, store, sms_outbox):
    staff = make_role_user("store_staff", stores=[store])
    reader = member(sms=True, email=False, home_store=store)
    messages_enqueue(campaign=campaign(sms=True), member_ids=[reader.pk], now=NOON)
    client.force_login(staff)
    assert "待发送" in client.get(f"/staff/members/{reader.member_no}/").content.decode()
    outbox_dispatch(now=NOON)
    html = client.get(f"/staff/members/{reader.member_no}/").content.decode()
    assert "已发送" in html and "2026-03-10 14:00" in html


def test_a_member_chooses_the_language_of_their_messages(client):
    reader = member(login=True, name="Amy Li")
    client.force_login(reader.user)
    response = client.post(
        "/profile/",
        {
            "name": "Amy Li",
            "email": reader.email,
            "gender": "",
            "birthday": "",
            "city": "",
            "home_store": "",
            "language": "en",
        },
    )
    assert response.status_code == 302
    reader.refresh_from_db()
    assert reader.language == "en"
    chinese_only = campaign(portal=True, message_body_en="", message_subject_en="")
    messages_enqueue(campaign=chinese_only, member_ids=[reader.pk], now=NOON)
    notice = OutboxMessage.objects.get(campaign=chinese_only)
    assert notice.language == "zh-hans"  # no English text: the Chinese one
    c = campaign(portal=True)
    messages_enqueue(campaign=c, member_ids=[reader.pk], now=NOON)
    english = OutboxMessage.objects.get(campaign=c)
    assert (english.subject, english.body) == (
        "Spring treats",
        "Hello Amy Li, our spring treats have begun.",
    )

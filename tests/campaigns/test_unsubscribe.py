"""The one-click unsubscribe link of marketing e-mails."""

from __future__ import annotations

import pytest
from django.core import mail, signing
from django.test import Client

from campaigns.messages import messages_enqueue, outbox_dispatch
from members.models import ConsentEvent

from .outbox_world import NOON, campaign, member, statuses

pytestmark = pytest.mark.django_db


def _link_of_sent_mail(reader) -> str:
    """The path of the unsubscribe link in the e-mail the member got."""
    messages_enqueue(campaign=campaign(email=True), member_ids=[reader.pk], now=NOON)
    outbox_dispatch(now=NOON)
    [sent] = mail.outbox
    url = sent.extra_headers["List-Unsubscribe"].strip("<>")
    return url.removeprefix("http://localhost:8000")


def test_the_link_asks_first_then_withdraws_e_mail_consent_and_the_next_campaign_skips():
    reader = member(sms=True, email=True)
    path = _link_of_sent_mail(reader)
    # Opened in a browser with no session: a page says what will happen, nothing changes yet.
    page = Client().get(path)
    assert page.status_code == 200
    assert "停止接收优惠邮件" in page.content.decode()
    reader.refresh_from_db()
    assert reader.consent_email is True

    done = Client(enforce_csrf_checks=True).post(path)

    assert done.status_code == 200 and "已退订" in done.content.decode()
    reader.refresh_from_db()
    assert (reader.consent_email, reader.consent_sms) == (False, True)
    event = ConsentEvent.objects.get(member=reader, kind="email")
    assert (event.granted, event.source, event.actor) == (False, "unsubscribe", None)
    later = campaign(sms=True, email=True)
    messages_enqueue(campaign=later, member_ids=[reader.pk], now=NOON)
    assert statuses(later) == {(reader.pk, "sms"): "pending", (reader.pk, "email"): "no_consent"}


def test_the_mail_clients_one_click_post_works_without_login_or_csrf_token():
    reader = member(email=True)
    path = _link_of_sent_mail(reader)
    # RFC 8058: the client posts this form body to the List-Unsubscribe URL.
    response = Client(enforce_csrf_checks=True).post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.consent_email is False


def test_unsubscribing_twice_changes_nothing_more():
    reader = member(email=True)
    path = _link_of_sent_mail(reader)
    client = Client(enforce_csrf_checks=True)
    assert client.post(path).status_code == 200
    assert client.post(path).status_code == 200
    assert ConsentEvent.objects.filter(member=reader, kind="email").count() == 1
    # Opened again, the page says there is nothing left to do.
    assert "无需其他操作" in client.get(path).content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_tampered_or_cut_link_gets_a_clear_page_and_changes_nothing(method):
    reader = member(email=True)
    path = _link_of_sent_mail(reader)
    token = path.split("/")[2]
    other = member(email=True)
    member_part, _signature = token.rsplit(":", 1)
    # The other member's id where this one's was, the signature kept.
    other_part = signing.b64_encode(str(other.pk).encode()).decode()
    forged = f"/unsubscribe/{token.replace(member_part, other_part)}/"
    for bad in (forged, f"/unsubscribe/{member_part}/", "/unsubscribe/x/", path[:-8] + "/"):
        response = getattr(Client(enforce_csrf_checks=True), method)(bad)
        assert response.status_code == 400, bad
        assert "此退订链接无效" in response.content.decode()
    reader.refresh_from_db()
    other.refresh_from_db()
    assert reader.consent_email and other.consent_email
    assert not ConsentEvent.objects.filter(kind="email").exists()

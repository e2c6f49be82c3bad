"""Staff see likely duplicates; an administrator merges two after a confirmation."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import Member
from points.models import Account
from points.services import purchase_record
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def twins(store):
    old = MemberFactory(name="李娜", birthday=datetime.date(1990, 2, 3))
    new = MemberFactory(name="李娜", birthday=datetime.date(1990, 2, 3))
    purchase_record(
        member=old, store=store, receipt_no="R1", occurred_at=timezone.now(), amount=Decimal(120)
    )
    return old, new


def test_store_staff_see_the_duplicates_but_not_the_merge_button(client, role_user, twins):
    client.force_login(role_user("store_staff"))
    page = client.get("/staff/members/duplicates/").content.decode()
    assert twins[0].member_no in page and twins[1].member_no in page
    assert "/staff/members/merge/" not in page
    response = client.get(
        f"/staff/members/merge/?source={twins[0].member_no}&target={twins[1].member_no}"
    )
    assert response.status_code == 403


def test_an_administrator_confirms_and_merges(client, role_user, twins):
    old, new = twins
    client.force_login(role_user("administrator"))
    confirm = client.get(f"/staff/members/merge/?source={old.member_no}&target={new.member_no}")
    assert confirm.status_code == 200
    assert old.member_no in confirm.content.decode()
    assert Member.objects.get(pk=old.pk).status == Member.Status.ACTIVE  # GET changes nothing

    response = client.post(
        "/staff/members/merge/", {"source": old.member_no, "target": new.member_no}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/staff/members/{new.member_no}/"
    assert Member.objects.get(pk=old.pk).status == Member.Status.MERGED
    assert Account.objects.get(member=new).balance == 120


def test_merging_a_member_into_itself_is_refused_with_a_message(client, role_user, twins):
    client.force_login(role_user("administrator"))
    number = twins[0].member_no
    response = client.post("/staff/members/merge/", {"source": number, "target": number})
    assert response.status_code == 200
    assert Member.objects.get(pk=twins[0].pk).status == Member.Status.ACTIVE


def test_an_unknown_member_number_is_404(client, role_user, twins):
    client.force_login(role_user("administrator"))
    response = client.get(f"/staff/members/merge/?source=812345678901&target={twins[1].member_no}")
    assert response.status_code == 404

"""The member summary's compiled read (members.selectors, core.db.CompiledRead) against the
ORM queryset it is compiled from: the same members, fields, relations and annotations."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from members.selectors import (
    member_find_open,
    member_get_for_summary,
    member_summary,
    member_summary_queryset,
)
from points.services import purchase_record
from tests.factories import MemberFactory, StoreFactory, UserFactory
from tiers.models import TierLevel
from tiers.services import tier_override_set


def _fields(member) -> dict:
    values = {f.attname: getattr(member, f.attname) for f in member._meta.concrete_fields}
    account = getattr(member, "points_account", None)
    status = getattr(member, "tier_status", None)
    values["account"] = (
        None if account is None else (account.pk, account.balance, account.lifetime_earned)
    )
    values["tier"] = None if status is None else (status.level_id, status.valid_until)
    values["pending"] = member.points_pending_now
    return values


@pytest.fixture
def members(db):
    store = StoreFactory(code="SH001")
    now = timezone.now()
    plain = MemberFactory(user=UserFactory())  # no account, no tier row
    buyer = MemberFactory()
    purchase_record(
        member=buyer, store=store, receipt_no="R1", occurred_at=now, amount=Decimal("120.00")
    )
    gold = MemberFactory()
    purchase_record(
        member=gold, store=store, receipt_no="R2", occurred_at=now, amount=Decimal("80.00")
    )
    tier_override_set(
        member=gold,
        level=TierLevel.objects.get(code="gold"),
        until=(now + datetime.timedelta(days=60)).date(),
        reason="test",
        actor=UserFactory(is_superuser=True),
    )
    return [plain, buyer, gold]


def test_the_compiled_read_gives_what_the_queryset_gives(members):
    at = timezone.now()
    for member in members:
        reference = member_summary_queryset(at=at).get(pk=member.pk)
        for read in (
            member_get_for_summary(member_id=member.pk),
            member_find_open(member_no=member.member_no, for_summary=True),
            member_find_open(phone=member.phone, for_summary=True),
        ):
            assert _fields(read) == _fields(reference)
    plain = members[0]
    by_login = member_get_for_summary(user_id=plain.user_id)
    assert _fields(by_login) == _fields(member_summary_queryset(at=at).get(pk=plain.pk))


def test_the_summary_of_a_compiled_read_is_the_summary_of_a_fresh_member(members):
    from members.models import Member

    for member in members:
        fresh = Member.objects.get(pk=member.pk)
        read = member_get_for_summary(member_id=member.pk)
        assert member_summary(member=read) == member_summary(member=fresh)


def test_nobody_is_found_for_an_unknown_value(db):
    assert member_get_for_summary(member_id=987654321) is None
    assert member_find_open(member_no="100000000017", for_summary=True) is None

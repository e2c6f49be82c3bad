"""A small, hand-checkable history of purchases and returns for the analytics tests."""

from __future__ import annotations

import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from members.models import Member
from points.services import purchase_record, return_record
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: str, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(
        datetime.date.fromisoformat(day), datetime.time(hour), tzinfo=SHANGHAI
    )


def member(*, enrolled: str, store=None, **kwargs) -> Member:
    return MemberFactory(
        enrolled_at=at(enrolled, 9), home_store=store, enrolment_store=store, **kwargs
    )


def buy(who: Member, *, store, day: str, amount: str, receipt: str, hour: int = 12):
    when = at(day, hour)
    return purchase_record(
        member=who,
        store=store,
        receipt_no=receipt,
        occurred_at=when,
        amount=Decimal(amount),
        now=when,
    ).purchase


def give_back(*, store, receipt: str, day: str, amount: str, original: str):
    when = at(day, 15)
    return return_record(
        store=store,
        receipt_no=receipt,
        original_receipt_no=original,
        amount=Decimal(amount),
        occurred_at=when,
        now=when,
    )

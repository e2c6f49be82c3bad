"""Birthday benefit: members on a level with a birthday coupon get one in their birthday
month, once a year (the job runs daily at 09:00, so the 1st of the month, or the first run
after a member reaches such a level within that month)."""

from __future__ import annotations

import calendar
import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from members.messaging import member_notify, member_reachable
from members.models import Member
from tiers.models import MemberTier

from .catalogue import reward_ensure
from .ledger import BUSINESS_TZ
from .models import BirthdayGift, Coupon, Reward
from .services import coupon_code_generate

BIRTHDAY_REWARD = "BIRTHDAY"
BATCH_SIZE = 1000


def birthday_reward() -> Reward:
    """The reward birthday coupons are for; created (off the catalogue) on first use, then
    administrators edit its value and wording in the admin."""
    reward, created = reward_ensure(
        code=BIRTHDAY_REWARD,
        kind=Reward.Kind.AMOUNT_OFF,
        name_zh="生日礼券 ¥20",
        name_en="Birthday coupon ¥20",
        description_zh="生日月专享：消费立减 20 元。",
        description_en="For your birthday month: ¥20 off a purchase.",
        # Never bought with points: it is not offered in the catalogue.
        points_price=1,
        amount_off=Decimal(20),
    )
    if created:
        Reward.objects.filter(pk=reward.pk).update(is_active=False)
        reward.is_active = False
    return reward


def _month_end(day: datetime.date) -> datetime.datetime:
    last = calendar.monthrange(day.year, day.month)[1]
    return datetime.datetime(day.year, day.month, last, tzinfo=BUSINESS_TZ) + datetime.timedelta(
        days=1
    )


def birthday_gifts_issue(*, business_date: datetime.date) -> int:
    """Give this year's coupon to every eligible member whose birthday month this is."""
    reward = birthday_reward()
    due = list(
        MemberTier.objects.filter(
            level__birthday_coupon=True,
            member__status=Member.Status.ACTIVE,
            member__birthday__month=business_date.month,
        )
        .exclude(member__birthday_gifts__year=business_date.year)
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )
    now = timezone.now()
    valid_until = _month_end(business_date)
    issued = 0
    for index in range(0, len(due), BATCH_SIZE):
        batch = due[index : index + BATCH_SIZE]
        with transaction.atomic():
            coupons = Coupon.objects.bulk_create(
                [
                    Coupon(
                        code=coupon_code_generate(),
                        member_id=member_id,
                        reward=reward,
                        source=Coupon.Source.BIRTHDAY,
                        issued_at=now,
                        valid_until=valid_until,
                    )
                    for member_id in batch
                ]
            )
            if not all(c.pk for c in coupons):
                coupons = list(
                    Coupon.objects.filter(
                        member_id__in=batch, source=Coupon.Source.BIRTHDAY, issued_at=now
                    )
                )
            BirthdayGift.objects.bulk_create(
                [
                    BirthdayGift(member_id=c.member_id, year=business_date.year, coupon=c)
                    for c in coupons
                ]
            )
        issued += len(batch)
    return issued


def birthday_notices_send(*, year: int) -> int:
    """Tell each member about the coupon, once: claimed before sending, so never twice.

    Members no channel reaches see the coupon in the portal only; their gifts are marked
    told in one statement.
    """
    unsent = BirthdayGift.objects.filter(year=year, notified_at__isnull=True)
    sent = unsent.exclude(member_reachable(path="member__")).update(notified_at=timezone.now())
    pending = list(unsent.filter(member_reachable(path="member__")).values_list("pk", flat=True))
    for gift_id in pending:
        if not BirthdayGift.objects.filter(pk=gift_id, notified_at__isnull=True).update(
            notified_at=timezone.now()
        ):
            continue
        gift = BirthdayGift.objects.select_related("member", "coupon__reward").get(pk=gift_id)
        with translation.override("zh-hans"):
            text = _(
                "会员 Loyalty: happy birthday! A %(reward)s is waiting in your coupons, valid "
                "until %(date)s."
            ) % {
                "reward": gift.coupon.reward.name_zh,
                "date": (
                    gift.coupon.valid_until.astimezone(BUSINESS_TZ).date()
                    - datetime.timedelta(days=1)
                ).isoformat(),
            }
            subject = _("Happy birthday from 会员 Loyalty")
        member_notify(member=gift.member, subject=subject, text=text)
        sent += 1
    return sent

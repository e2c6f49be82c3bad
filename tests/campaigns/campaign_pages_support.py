"""What the campaign page and service tests share: users in each role, a segment, a
campaign of each kind built through the services."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from campaigns.models import Campaign, Segment
from campaigns.services import campaign_create
from tests.conftest import make_role_user

NOW = datetime.datetime(2026, 3, 10, 10, 0, tzinfo=datetime.UTC)  # 18:00 in Shanghai


def segment_make(name: str = "普通会员", *, rules: dict | None = None) -> Segment:
    return Segment.objects.create(
        name=name,
        rules=rules
        or {
            "version": 1,
            "rule": {
                "group": "and",
                "rules": [{"field": "tier", "op": "in", "value": ["regular"]}],
            },
        },
    )


def bonus_make(*, actor: Any, segment: Segment | None = None, **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": "春季回馈",
        "kind": Campaign.Kind.BONUS,
        "segment": segment,
        "bonus_points": 100,
        "send_portal": True,
        "message_body_zh": "您获得了100积分",
        "message_body_en": "You got 100 points",
        "holdout_percent": Decimal(10),
    }
    values.update(fields)
    return campaign_create(actor=actor, **values)


def marketer(**kwargs: Any):
    return make_role_user("marketer", **kwargs)


def administrator(**kwargs: Any):
    return make_role_user("administrator", **kwargs)

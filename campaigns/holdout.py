"""The holdout draw (ANALYTICS.md, campaign holdouts): u = hash(salt ‖ member id) in [0, 1);
a member is in the control arm when u < the holdout share. Deterministic, so the same
campaign and member always get the same arm, and independent across campaigns (each has its
own salt)."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal

_SCALE = float(2**64)


def holdout_salt() -> str:
    return secrets.token_hex(16)


def holdout_draw(*, salt: str, member_id: int) -> float:
    digest = hashlib.sha256(f"{salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_holdout(*, draw: float, holdout_percent: Decimal | float) -> bool:
    return draw < float(holdout_percent) / 100

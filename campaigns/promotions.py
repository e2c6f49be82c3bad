"""Multiplier promotions: the campaigns' provider for `points.earning`."""

from __future__ import annotations


def register() -> None:
    """Called from `CampaignsConfig.ready()`: the promotion provider and panels."""

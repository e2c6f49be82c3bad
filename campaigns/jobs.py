"""The campaigns' nightly job(s), registered with the job runner (core.jobs)."""

from __future__ import annotations


def register() -> None:
    """Called from `CampaignsConfig.ready()`."""

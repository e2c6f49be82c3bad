"""The POS API: one NinjaAPI at /api/v1/ that mounts each app's router."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(title="会员 Loyalty POS API", version="1", urls_namespace="api")

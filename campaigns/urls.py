"""Campaign URLs: `staff_patterns` join the staff namespace at /staff/, `portal_patterns` the
portal's at / (loyalty_site/urls.py)."""

from __future__ import annotations

staff_patterns: list = []
portal_patterns: list = []

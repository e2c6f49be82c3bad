"""The site's URLs with the churn model card joined to the staff namespace.

The lead wires `analytics.urls.churn_staff_patterns` into loyalty_site/urls.py; until then
the page's tests use this URLconf (`@pytest.mark.urls`).
"""

from __future__ import annotations

from django.urls import URLResolver, include, path

from analytics.urls import churn_staff_patterns
from loyalty_site import urls as site

_wired = any(getattr(pattern, "name", None) == "analytics-model" for pattern in site.staff_patterns)
urlpatterns = [
    path(
        "staff/",
        include((site.staff_patterns + ([] if _wired else churn_staff_patterns), "staff")),
    ),
    *(
        pattern
        for pattern in site.urlpatterns
        if not (isinstance(pattern, URLResolver) and pattern.namespace == "staff")
    ),
]

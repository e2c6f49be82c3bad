"""The Celery app. Settings come from Django's CELERY_* settings; the beat schedule is code."""

from __future__ import annotations

import os

from celery import Celery

# Production unless told otherwise, like wsgi.py and asgi.py. The package's __init__ imports
# this module, so it runs before their own defaults: one wrong default here would win for
# gunicorn too. manage.py sets dev before it imports anything.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.production")

app = Celery("loyalty_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""WSGI entry point (`gunicorn --config gunicorn.conf.py loyalty_site.wsgi`).

Production settings unless DJANGO_SETTINGS_MODULE says otherwise; manage.py defaults to dev.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings.production")

application = get_wsgi_application()

"""The WSGI application of the Django test app (settings, URLs and views: django_settings).

Served by gunicorn under ``opentelemetry-instrument`` with the contrib Django
instrumentation, which adds its middleware to the settings before this module
builds the handler.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_settings")
application = get_wsgi_application()

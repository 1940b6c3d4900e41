"""The WSGI entry point: ``gunicorn naqdemo.wsgi`` (run from examples/django_app)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "naqdemo.settings")

application = get_wsgi_application()

"""Settings for the example: one model in SQLite, naq's Django app, no middleware.

naq reads ``NAQ_NATS_URL`` (default ``nats://127.0.0.1:4222``), or ``settings.NAQ``'s
``NATS_URL`` when the variable is not set; ``NAQ_QUEUE`` picks the queue the views enqueue
on. ``NAQ_EXAMPLE_DB`` is the SQLite file (default ``db.sqlite3`` here; create it with
``python manage.py migrate``).
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "naq-example-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "naqdemo.urls"
WSGI_APPLICATION = "naqdemo.wsgi.application"
INSTALLED_APPS = ["naq.contrib.django", "naqdemo"]
MIDDLEWARE: list[str] = []
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NAQ_EXAMPLE_DB") or HERE / "db.sqlite3",
        "OPTIONS": {"timeout": 20},  # the web app and the worker write the same file
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

NAQ = {
    # Defaults for naq in the web app and the worker; a NAQ_* variable wins over each.
    "NATS_URL": "nats://127.0.0.1:4222",
    "QUEUE": "default",
}

NAQ_QUEUE = os.environ.get("NAQ_QUEUE", "default")
NAQ_MAX_WAIT = 25.0
"""Longest a request waits for a job, in seconds: below gunicorn's 30 s worker timeout."""

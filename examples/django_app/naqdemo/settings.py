"""Settings for the example: no database, no apps, no middleware; only URLs and views.

naq itself reads ``NAQ_NATS_URL`` (default ``nats://127.0.0.1:4222``); ``NAQ_QUEUE`` picks
the queue the views enqueue on.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "naq-example-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "naqdemo.urls"
WSGI_APPLICATION = "naqdemo.wsgi.application"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

NAQ_QUEUE = os.environ.get("NAQ_QUEUE", "default")
NAQ_MAX_WAIT = 25.0
"""Longest a request waits for a job, in seconds: below gunicorn's 30 s worker timeout."""

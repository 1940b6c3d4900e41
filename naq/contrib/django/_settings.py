"""``settings.NAQ`` as defaults of the ``NAQ_*`` environment, and ``django.setup()``."""

from __future__ import annotations

import os
from collections.abc import Mapping

from naq._settings import CONNECT_ENV

__all__ = ["SETTING_NAMES", "apply_settings", "environment_from", "setup"]

SETTING_NAMES: dict[str, str] = {
    **{
        ("URL" if field == "servers" else field.upper()): variable
        for field, variable in CONNECT_ENV.items()
    },
    "NATS_URL": "NAQ_NATS_URL",
    "SERIALIZER": "NAQ_SERIALIZER",
    "SIGNING_KEY": "NAQ_SIGNING_KEY",
    "QUEUE": "NAQ_QUEUE",
    "REPLICAS": "NAQ_REPLICAS",
    "CONCURRENCY": "NAQ_CONCURRENCY",
    "SYNC_THREADS": "NAQ_SYNC_THREADS",
    "ACK_WAIT": "NAQ_ACK_WAIT",
    "GRACE": "NAQ_GRACE",
    "HEARTBEAT_INTERVAL": "NAQ_HEARTBEAT_INTERVAL",
    "HOOKS": "NAQ_HOOKS",
}
"""``settings.NAQ`` keys and the variable each stands for (``URL`` and ``NATS_URL`` alike)."""


def environment_from(values: Mapping[str, object]) -> dict[str, str]:
    """``NAQ_*`` variables from a settings dict; an unknown key is an error, not ignored."""
    from django.core.exceptions import ImproperlyConfigured

    env: dict[str, str] = {}
    for key, value in values.items():
        variable = SETTING_NAMES.get(key.upper())
        if variable is None:
            known = ", ".join(sorted(SETTING_NAMES))
            raise ImproperlyConfigured(f"settings.NAQ has an unknown key {key!r} (known: {known})")
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        env[variable] = str(value)
    return env


def apply_settings() -> dict[str, str]:
    """Set the ``NAQ_*`` variables ``settings.NAQ`` names and the environment lacks.

    Returns the variables it set. Run when the app loads (``NaqConfig.ready``).
    """
    from django.conf import settings

    values = getattr(settings, "NAQ", None) or {}
    if not isinstance(values, Mapping):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("settings.NAQ must be a dict")
    applied = {}
    for variable, value in environment_from(values).items():
        if not os.environ.get(variable):
            os.environ[variable] = applied[variable] = value
    return applied


def setup(settings_module: str | None = None) -> None:
    """``django.setup()`` for a worker process (``settings_module`` else the environment's),
    then ``settings.NAQ`` as environment defaults (also when the app is not installed)."""
    import django

    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    django.setup()
    apply_settings()

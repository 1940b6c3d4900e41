"""Defaults that come from the environment, read when used (never frozen at import)."""

from __future__ import annotations

import os

from ._errors import ConfigurationError

__all__ = ["DEFAULT_RESULT_TTL", "DEFAULT_URL", "default_replicas", "default_url"]

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_RESULT_TTL = 500.0
"""Seconds a finished job's record (and result) is kept, as in RQ."""


def default_url() -> str:
    """``NAQ_NATS_URL`` when set, else the local default server."""
    return os.environ.get("NAQ_NATS_URL") or DEFAULT_URL


def default_replicas(explicit: int | None = None) -> int:
    """Replicas of the streams and buckets naq creates: ``explicit``, else ``NAQ_REPLICAS``, else 1.

    On a JetStream cluster, 3 keeps every job through the loss of one server.
    """
    value = explicit if explicit is not None else os.environ.get("NAQ_REPLICAS") or 1
    try:
        replicas = int(value)
    except (TypeError, ValueError):
        replicas = 0
    if isinstance(value, bool) or not 1 <= replicas <= 5:
        raise ConfigurationError(f"replicas must be a whole number from 1 to 5, got {value!r}")
    return replicas

"""Defaults that come from the environment, read when used (never frozen at import)."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_RESULT_TTL", "DEFAULT_TIMEOUT", "DEFAULT_URL", "default_url"]

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_RESULT_TTL = 500.0
"""Seconds a finished job's record (and result) is kept, as in RQ."""
DEFAULT_TIMEOUT = 10.0
"""Seconds a client call waits for NATS (an answer, or a reconnect) before NaqConnectionError.

Below gunicorn's default worker timeout (30 s), so a view fails cleanly instead of being killed.
"""


def default_url() -> str:
    """``NAQ_NATS_URL`` when set, else the local default server."""
    return os.environ.get("NAQ_NATS_URL") or DEFAULT_URL

"""The process's default client for module-level calls like ``naq_sync.enqueue(...)``.

Connected on first use (``NAQ_NATS_URL``, ``NAQ_SERIALIZER``), replaced in a forked child,
closed at interpreter exit: calls still in progress get up to the client's timeout to finish,
and any that did not are reported on stderr as a warning rather than dropped in silence.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from typing import TYPE_CHECKING

from naq import NaqError

if TYPE_CHECKING:
    from ._generated import Client

__all__ = ["default_client"]

_lock = threading.Lock()
_client: Client | None = None
_owner_pid: int | None = None


def default_client() -> Client:
    """The default client of this process, connected on first use."""
    global _client, _owner_pid
    client, pid = _client, os.getpid()
    if client is not None and _owner_pid == pid:
        return client
    with _lock:
        if _client is None or _owner_pid != pid:
            from ._generated import Client  # here: _generated's module functions import this

            fresh = Client()
            fresh.__enter__()
            _client, _owner_pid = fresh, pid
        return _client


@atexit.register
def _close_default_client() -> None:
    global _client
    client, _client = _client, None
    if client is None or _owner_pid != os.getpid():
        return
    try:
        client.__exit__(None, None, None)
    except NaqError as exc:
        # naq's own logging is off unless enabled; this must reach the user regardless.
        warnings.warn(f"naq_sync at exit: {exc}", RuntimeWarning, stacklevel=1)


def _reset_after_fork() -> None:
    global _lock, _client, _owner_pid
    _lock = threading.Lock()
    _client = None
    _owner_pid = None


os.register_at_fork(after_in_child=_reset_after_fork)

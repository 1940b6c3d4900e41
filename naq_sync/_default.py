"""The process's default client for module-level calls like ``naq_sync.enqueue(...)``.

Connected on first use (``NAQ_NATS_URL``, ``NAQ_SERIALIZER``), replaced in a forked child,
closed at interpreter exit: calls still in progress get up to the client's timeout to finish,
and any that did not are reported on stderr as a warning rather than dropped in silence.
"""

from __future__ import annotations

import atexit
import warnings
from typing import TYPE_CHECKING

from naq import NaqError
from naq._per_process import PerProcess

if TYPE_CHECKING:
    from ._generated import Client

__all__ = ["default_client"]


def _connected_client() -> Client:
    from ._generated import Client  # here: _generated's module functions import this

    client = Client()
    client.__enter__()
    return client


_default: PerProcess[Client] = PerProcess(_connected_client)


def default_client() -> Client:
    """The default client of this process, connected on first use."""
    return _default.get()


@atexit.register
def _close_default_client() -> None:
    client = _default.take()
    if client is None:
        return
    try:
        client.__exit__(None, None, None)
    except NaqError as exc:
        # naq's own logging is off unless enabled; this must reach the user regardless.
        warnings.warn(f"naq_sync at exit: {exc}", RuntimeWarning, stacklevel=1)

"""The process's default client for module-level calls like ``naq_sync.enqueue(...)``.

Connected on first use (``NAQ_NATS_URL``, ``NAQ_SERIALIZER``), replaced in a forked child,
closed at interpreter exit: calls still in progress get up to the client's timeout to finish,
and any that did not are reported on stderr as a warning rather than dropped in silence.

The generated module (``_generated.py``) makes the one ``DefaultClient`` from its ``Client``
class, so this module needs nothing of it.
"""

from __future__ import annotations

import atexit
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from naq import NaqError
from naq._per_process import PerProcess

__all__ = ["DefaultClient", "close_default_client"]

C = TypeVar("C", bound=AbstractContextManager[object])

_made: list[DefaultClient[Any]] = []
"""Every DefaultClient (one, made by the generated module), for close_default_client."""


def close_default_client() -> None:
    """Close this process's default client, if it has one; the next call connects anew."""
    for default in _made:
        default.close()


class DefaultClient(Generic[C]):
    """The default client of each process: made by ``factory`` and entered on first use."""

    def __init__(self, factory: Callable[[], C]) -> None:
        self._clients: PerProcess[C] = PerProcess(lambda: _entered(factory()))
        _made.append(self)
        atexit.register(self.close)

    def get(self) -> C:
        """This process's client, connected on first use."""
        return self._clients.get()

    def close(self) -> None:
        """Close this process's client if it has one; the next ``get`` connects anew."""
        client = self._clients.take()
        if client is None:
            return
        try:
            client.__exit__(None, None, None)
        except NaqError as exc:
            # naq's own logging is off unless enabled; this must reach the user regardless.
            warnings.warn(f"naq_sync at exit: {exc}", RuntimeWarning, stacklevel=1)


def _entered(client: C) -> C:
    client.__enter__()
    return client

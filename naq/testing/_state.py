"""The test server and the clean slate each test starts from.

Imported only when a fixture is first used, so loading the pytest plugin costs nothing in
projects whose tests never touch naq.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from naq._loop_thread import shared_portal
from naq._transport import wipe_naq_streams
from naq.server import EmbeddedServer

__all__ = ["URL_ENV", "clean_slate", "session_server"]

URL_ENV = "NAQ_NATS_URL"


@contextmanager
def session_server() -> Iterator[EmbeddedServer]:
    """A nats-server on a free port with a temporary store, and ``NAQ_NATS_URL`` pointing at it.

    The variable makes the code under test (``naq.Client()``, ``naq_sync.enqueue``, workers
    built without a url) reach this server, as it would reach the real one in production.
    """
    previous = os.environ.get(URL_ENV)
    with EmbeddedServer() as server:
        os.environ[URL_ENV] = server.url
        try:
            yield server
        finally:
            if previous is None:
                os.environ.pop(URL_ENV, None)
            else:
                os.environ[URL_ENV] = previous


def clean_slate(url: str) -> None:
    """Forget everything earlier tests left: naq's streams, buckets and consumers go.

    naq_sync's default client is closed too (it reconnects on next use, to ``NAQ_NATS_URL``),
    so no connection carries state from a test that came before.
    """
    default = sys.modules.get("naq_sync._default")
    if default is not None:
        default.close_default_client()
    shared_portal().call(wipe_naq_streams, url)

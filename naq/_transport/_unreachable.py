"""Why NATS could not be reached, in words, and what to do about it.

nats-py reports a failed first connect as ``NoServersError()`` and passes the real cause
(refused, timed out, unknown host) only to its error callback; the transport keeps what
that callback saw and this module turns it into one sentence.
"""

from __future__ import annotations

import socket
import ssl

__all__ = ["cannot_connect"]

START_ONE = (
    "Is a nats-server running there? `naq dev` or `naq server` starts one; --url or "
    "NAQ_NATS_URL names another"
)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused. {START_ONE}"
    if isinstance(exc, TimeoutError):
        return "timed out. Is the address right, and reachable from here?"
    if isinstance(exc, socket.gaierror):
        return "unknown host. Check the URL (--url or NAQ_NATS_URL)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc}). Check --tls-ca, --tls-cert and --tls-key"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return repr(exc)


def cannot_connect(url: str, exc: BaseException, seen: list[BaseException]) -> str:
    """The message of the NaqConnectionError for a failed first connect.

    ``seen`` holds what nats-py's error callback received while connecting; its last entry
    is the real cause when ``exc`` is nats-py's bare ``NoServersError``.
    """
    cause = seen[-1] if seen and type(exc).__name__ == "NoServersError" else exc
    return f"cannot connect to NATS at {url}: {_cause(cause)}"

"""Delete every stream naq owns on a server: the clean slate ``naq.testing`` gives each test.

Deleting, not purging: a purge keeps JetStream's duplicate window, so a job enqueued with the
same explicit id in the next test would be dropped as a duplicate. Every naq connection
creates the streams it needs when it opens, so nothing has to be recreated here.
"""

from __future__ import annotations

import nats
import nats.errors
import nats.js.errors

from .._errors import NaqConnectionError
from ._names import DEAD_STREAM, JOBS_STREAM, LOCKS_STREAM, STATS_STREAM
from ._unreachable import cannot_connect

__all__ = ["is_naq_stream", "wipe_naq_streams"]

_KV_PREFIX = "KV_naq_"


def is_naq_stream(name: str) -> bool:
    """naq's streams: the jobs, dead-letter, throughput-history and locks streams and every
    ``naq_*`` KV bucket."""
    return name in (JOBS_STREAM, DEAD_STREAM, STATS_STREAM, LOCKS_STREAM) or name.startswith(
        _KV_PREFIX
    )


async def wipe_naq_streams(url: str) -> list[str]:
    """Delete naq's streams (their consumers, messages and dedupe state go with them).

    Returns the names deleted. Other streams on the server are left alone.
    """
    seen: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        seen.append(exc)  # the cause nats-py hides behind NoServersError

    try:
        nc = await nats.connect(
            url,
            name="naq-wipe",
            max_reconnect_attempts=1,
            connect_timeout=5,
            error_cb=on_error,
        )
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        raise NaqConnectionError(cannot_connect(url, exc, seen)) from exc
    try:
        js = nc.jetstream()
        names = [info.config.name for info in await js.streams_info()]
        deleted = []
        for name in names:
            if name is not None and is_naq_stream(name):
                try:
                    await js.delete_stream(name)
                except nats.js.errors.NotFoundError:
                    continue  # deleted meanwhile: the slate is clean either way
                deleted.append(name)
        return deleted
    finally:
        await nc.close()

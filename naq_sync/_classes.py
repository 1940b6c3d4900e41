"""The blocking twins of naq.Client, naq.Queue and naq.Job."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import naq

from ._facade import Facade, run

__all__ = ["Client", "Job", "Queue"]


class Job(Facade, wraps=naq.Job):
    """Blocking twin of :class:`naq.Job`: ``job.result(timeout=10)``, ``job.get_status()``."""


class Queue(Facade, wraps=naq.Queue):
    """Blocking twin of :class:`naq.Queue`."""


class Client(Facade, wraps=naq.Client):
    """Blocking twin of :class:`naq.Client`; use it as a context manager.

    All clients share one background asyncio loop thread per process.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        serializer: str | naq.Serializer | None = None,
        scheduler_engine: str | None = None,
        connect_options: naq.ConnectOptions | None = None,
    ):
        self._async = naq.Client(
            url,
            serializer=serializer,
            scheduler_engine=scheduler_engine,
            connect_options=connect_options,
        )

    def __enter__(self) -> Self:
        run(self._async.__aenter__)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run(self._async.__aexit__, exc_type, exc, tb)

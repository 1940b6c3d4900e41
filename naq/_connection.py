"""A connected transport, the bridge that reaches it, and the serializer: shared by all roles."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ._errors import JobNotFound, NaqConnectionError, ResultTimeout
from ._record import JobRecord, JobStatus, decode_record
from ._serializers import Serializer
from ._settings import DEFAULT_TIMEOUT, ConnectOptions, default_replicas
from ._transport import Bridge, NatsTransport, bridge_for_current_backend

__all__ = ["Connection"]

T = TypeVar("T")


class _StatusIn:
    """Predicate on raw record bytes, evaluated on the transport's loop."""

    def __init__(self, statuses: frozenset[JobStatus]) -> None:
        self.statuses = statuses

    def __call__(self, data: bytes) -> bool:
        return decode_record(data).status in self.statuses


_TERMINAL = _StatusIn(frozenset(s for s in JobStatus if s.is_terminal))


class Connection:
    """Opened by a Client or Worker; every call to NATS goes through :meth:`call`.

    A connection opened before ``os.fork()`` belongs to the parent: in the child the first
    call connects anew (once, however many threads call) and the parent's is never touched.
    """

    def __init__(
        self,
        options: ConnectOptions | str,
        serializer: Serializer,
        timeout: float = DEFAULT_TIMEOUT,
        replicas: int | None = None,
    ) -> None:
        self.transport = NatsTransport(options, timeout, default_replicas(replicas))
        self.options = self.transport.options
        self.url = self.transport.url
        self.serializer = serializer
        self._bridge: Bridge | None = None
        self._pid = os.getpid()
        self._child_opening: tuple[int, anyio.Event] | None = None

    async def open(self) -> None:
        self._bridge = bridge_for_current_backend()
        self._pid = os.getpid()
        await self.call(self.transport.connect)

    async def close(self) -> int:
        """Close; returns how many calls were still unfinished (see NatsTransport.close)."""
        if self._bridge is None:
            return 0
        if self._pid != os.getpid():  # inherited through fork: the connection is the parent's
            self.transport.abandon()
            self._bridge = None
            return 0
        unfinished = await self.call(self.transport.close)
        self._bridge = None
        return unfinished

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a transport coroutine function on the transport's loop (one crossing)."""
        if self._bridge is None:
            raise RuntimeError("not connected: use 'async with' on the Client or Worker")
        if self._pid != os.getpid():
            await self._open_in_child()
        return await self._bridge.call(fn, *args)

    async def _open_in_child(self) -> None:
        """In a forked child: drop the parent's connection unseen and open this process's own."""
        pid = os.getpid()
        if self._child_opening is not None and self._child_opening[0] == pid:
            await self._child_opening[1].wait()  # another call of this process is opening it
            if self._pid != pid:
                raise NaqConnectionError(f"cannot connect to NATS at {self.url} after fork")
            return
        opened = anyio.Event()
        self._child_opening = (pid, opened)
        try:
            self.transport.abandon()
            self._bridge = bridge_for_current_backend()
            await self._bridge.call(self.transport.connect)
            self._pid = pid
        except BaseException:
            self._child_opening = None  # the next call tries again
            raise
        finally:
            opened.set()

    async def get_record(self, job_id: str) -> JobRecord:
        data = await self.call(self.transport.get_record, job_id)
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (it never existed or its record expired)")
        return decode_record(data)

    async def wait_status(
        self, job_id: str, statuses: frozenset[JobStatus] | None, timeout: float | None
    ) -> JobRecord:
        """Wait, woken by each write of the record, until its status is one of ``statuses``.

        ``None`` means any terminal status (finished, failed, canceled).
        """
        done = _TERMINAL if statuses is None else _StatusIn(statuses)
        try:
            data = await self.call(self.transport.wait_record, job_id, done, timeout)
        except TimeoutError:
            wanted = "end" if statuses is None else "reach " + "/".join(sorted(statuses))
            raise ResultTimeout(f"job {job_id} did not {wanted} within {timeout} s") from None
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (it never existed or its record expired)")
        return decode_record(data)

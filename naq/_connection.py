"""A connected transport, the bridge that reaches it, and the serializer: shared by all roles."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from ._blocking import run_blocking
from ._caller_thread import in_caller_thread
from ._errors import JobNotFound, NaqConnectionError, ResultTimeout
from ._record import JobRecord, JobStatus, decode_record
from ._serializers import Serializer
from ._settings import DEFAULT_TIMEOUT, ConnectOptions, default_replicas, native_enabled
from ._transport import (
    BlockingPool,
    Bridge,
    CallerCalls,
    NativeCalls,
    NatsTransport,
    bridge_for_current_backend,
    open_native,
    wire_connect_kwargs,
)

__all__ = ["Connection"]

T = TypeVar("T")


class _StatusIn:
    """Predicate on raw record bytes, evaluated on the transport's loop. One per wait: it
    keeps the record it decoded last, so the one that ends the wait is not decoded twice."""

    def __init__(self, statuses: frozenset[JobStatus]) -> None:
        self.statuses = statuses
        self._last: tuple[bytes, JobRecord] | None = None

    def __call__(self, data: bytes) -> bool:
        record = decode_record(data)
        self._last = (data, record)
        return record.status in self.statuses

    def decoded(self, data: bytes) -> JobRecord:
        """``data`` as a record: the one decoded last if it is the same bytes."""
        last = self._last
        return last[1] if last is not None and last[0] is data else decode_record(data)


_TERMINAL = frozenset(s for s in JobStatus if s.is_terminal)


class Connection:
    """Opened by a Client or Worker; every call to NATS goes through :meth:`call`.

    It also opens naq's native client, and :meth:`call` sends the hot calls (``enqueue``,
    ``get_record``, ``wait_record`` and a worker's consuming calls) there instead of to
    nats-py (see ``_transport/_native.py``); everything else goes to nats-py, on Trio across
    the thread bridge. ``NAQ_NATIVE=0`` keeps every call on nats-py. Callers do not change:
    they pass ``NatsTransport`` methods either way.

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
        self._use_native = native_enabled()
        self._native: NativeCalls | None = None
        self._routes: dict[Callable[..., Any], Callable[..., Awaitable[Any]]] = {}
        """``NatsTransport`` function -> native method that serves it (on Trio only)."""
        self._caller: CallerCalls | None = None
        self._caller_routes: dict[Callable[..., Any], Callable[..., Any]] | None = None
        """``NatsTransport`` function -> blocking method for a caller's thread (naq_sync)."""
        self._caller_lock = threading.Lock()

    async def open(self) -> None:
        self._bridge = bridge_for_current_backend()
        self._pid = os.getpid()
        await self.call(self.transport.connect)
        if self._use_native:
            try:
                self._native = await open_native(self.transport, self._bridge)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._bridge.call(self.transport.close)
                self._bridge = None
                raise
            if self._native is not None:
                self._routes = self._native.routes()

    async def close(self) -> int:
        """Close; returns how many calls were still unfinished (see NatsTransport.close)."""
        if self._bridge is None:
            return 0
        if self._pid != os.getpid():  # inherited through fork: the connection is the parent's
            self.transport.abandon()
            self._bridge, self._native, self._routes = None, None, {}
            return 0
        unfinished = 0
        native = self._native
        if native is not None:
            unfinished = await native.finish_calls()
            self._routes, self._native = {}, None
            await native.close()
        with self._caller_lock:
            caller, self._caller, self._caller_routes = self._caller, None, None
        if caller is not None:
            caller.close()
        unfinished += await self.call(self.transport.close)
        self._bridge = None
        return unfinished

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a transport coroutine function: natively when routed, else over the bridge."""
        if self._bridge is None:
            raise RuntimeError("not connected: use 'async with' on the Client or Worker")
        if in_caller_thread():
            return self._call_in_caller(fn, *args)
        if self._pid != os.getpid():
            await self._open_in_child()
        if self._routes:
            native = self._routes.get(getattr(fn, "__func__", fn))
            if native is not None and getattr(fn, "__self__", None) is self.transport:
                return await native(*args)
        return await self._bridge.call(fn, *args)

    def _call_in_caller(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """From a thread running ``run_in_caller`` (naq_sync): the call, done here at once.

        A call with a blocking route (a job's enqueue) is made on the caller's own
        connection; any other crosses to the loop thread, waited for here.
        """
        if self._pid == os.getpid() and getattr(fn, "__self__", None) is self.transport:
            route = self._routes_for_caller().get(getattr(fn, "__func__", fn))
            if route is not None:
                return route(*args)
        return run_blocking(self.call, fn, *args)

    def _routes_for_caller(self) -> dict[Callable[..., Any], Callable[..., Any]]:
        routes = self._caller_routes
        if routes is None:
            with self._caller_lock:
                routes = self._caller_routes
                if routes is None:
                    kwargs = wire_connect_kwargs(self.options)
                    if kwargs is not None:  # else nkeys or credentials: only nats-py has them
                        cross = functools.partial(run_blocking, self.call)
                        self._caller = CallerCalls(self.transport, BlockingPool(**kwargs), cross)
                    routes = self._caller.routes() if self._caller is not None else {}
                    self._caller_routes = routes
        return routes

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
            # The native client's socket is the parent's too: the child goes through the bridge.
            self._native, self._routes = None, {}
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
        done = _StatusIn(_TERMINAL if statuses is None else statuses)
        try:
            data = await self.call(self.transport.wait_record, job_id, done, timeout)
        except TimeoutError:
            wanted = "end" if statuses is None else "reach " + "/".join(sorted(statuses))
            raise ResultTimeout(f"job {job_id} did not {wanted} within {timeout} s") from None
        if data is None:
            raise JobNotFound(f"no job {job_id!r} (it never existed or its record expired)")
        return done.decoded(data)

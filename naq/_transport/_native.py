"""The hot calls over naq's own NATS client (``_wire``), on the caller's event loop.

A :class:`~naq._connection.Connection` opens a ``WireConnection`` beside nats-py and sends
``enqueue``, ``get_record`` and ``wait_record`` here, and a worker's consuming calls to
``_native_worker``; every other call goes to nats-py (on Trio across the thread bridge). On
Trio this saves a thread hop each way per call; on asyncio the wire client's one reader, one
writer and shared inbox cost less per call than nats-py's (see docs/architecture.md, "The
native path"). Each method keeps the semantics of its ``NatsTransport`` twin, including
``Link``'s rules for outages (see :class:`_WireLink`), so callers cannot tell which path ran.

Not used when the connect options need what the wire client lacks (nkeys, credentials files,
URLs it cannot parse): ``wire_connect_kwargs`` returns None and every call goes to nats-py.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import anyio
import sniffio
from loguru import logger

from .._errors import NaqConnectionError, SerializationError
from .._settings import ConnectOptions
from ._bridge import Bridge
from ._codes import SERVICE_UNAVAILABLE
from ._connect import _tls_context
from ._deliveries import OutgoingJob, message_headers, record_too_large
from ._link import (
    FIRST_PAUSE,
    FIRST_RECHECK,
    MAX_PAUSE,
    MAX_RECHECK,
    UNKNOWN_OUTCOME,
    call_failed,
)
from ._names import (
    JOBS_BUCKET_STREAM,
    JOBS_STREAM,
    any_record_subject,
    job_subject,
    queued_job_subject,
    stored_record_subject,
)
from ._native_worker import NativeConsumers
from ._nats import NatsTransport, _publish_failure
from ._publisher import PublishError
from ._wire import (
    ConnectionClosedError,
    ConnectionLostError,
    JetStreamAPIError,
    NoRespondersError,
    WireConnection,
    WireError,
)

__all__ = ["NativeCalls", "open_native", "wire_connect_kwargs"]

T = TypeVar("T")

_DEFAULT_PORT = 4222
_RECONNECT_WAIT = 2.0
"""Seconds between rounds of reconnect attempts at most, as nats-py's transport waits."""


def wire_connect_kwargs(options: ConnectOptions) -> dict[str, Any] | None:
    """``WireConnection.connect`` arguments for ``options``, or None when it cannot do them.

    The wire client does user/password, token and TLS; nkeys and credentials files need
    nats-py (and the ``nkeys`` package), so such a connection stays on the bridge.
    """
    if options.nkey_seed or options.nkey_seed_file or options.creds:
        return None
    servers: list[tuple[str, int]] = []
    url_auth: set[tuple[str | None, str | None]] = set()
    for url in options.servers:
        try:
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            port = parts.port or _DEFAULT_PORT
        except ValueError:
            return None
        if parts.scheme not in ("nats", "tls") or not parts.hostname or parts.path.strip("/"):
            return None  # websocket URLs and the like: nats-py's business
        servers.append((parts.hostname, port))
        if parts.username is not None:
            url_auth.add((unquote(parts.username), parts.password and unquote(parts.password)))
    kwargs: dict[str, Any] = {"servers": servers, "user": options.user, "token": options.token}
    kwargs["password"] = (options.password or "") if options.user else None
    if url_auth:  # credentials in the URL: only when they are the only ones, and all alike
        if len(url_auth) > 1 or options.user or options.token:
            return None
        ((user, password),) = url_auth
        if password is None:
            kwargs["token"] = user
        else:
            kwargs["user"], kwargs["password"] = user, password
    if options.uses_tls:
        kwargs["ssl_context"] = _tls_context(options)
    return kwargs


class _Watch:
    """One waiter for a record: told to read it again after a reconnect."""

    __slots__ = ("scope", "stale")

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None
        self.stale = False


class _WireLink:
    """``Link``'s rules for a client call, over the wire connection and on its backend.

    Each call has the client's timeout as its deadline. Made while reconnecting, a request
    waits for the reconnect (the wire client sends it only then). A call in flight when the
    connection drops fails at once (ConnectionLostError) and is made again if it is
    idempotent; otherwise its outcome is unknown and NaqConnectionError says so. "No
    responders" just after a restart is waited out with a short backoff.
    """

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        self.wire: WireConnection | None = None
        self._busy = 0
        self._settled: anyio.Event | None = None  # set when no call is busy, or on a drop
        self._watches: set[_Watch] = set()

    # -- fed by the wire connection's hooks ---------------------------------------------------

    def disconnected(self, _: ConnectionLostError) -> None:
        if self._settled is not None:
            self._settled.set()  # closing does not wait for calls while disconnected

    def reconnected(self) -> None:
        """Records republished while disconnected were missed: waiters read again."""
        for watch in self._watches:
            watch.stale = True
            if watch.scope is not None:
                watch.scope.cancel()

    # -- client calls -------------------------------------------------------------------------

    @property
    def _up(self) -> bool:
        return self.wire is not None and self.wire.is_connected

    def _error(self, what: str, problem: str, exc: BaseException) -> NaqConnectionError:
        return call_failed(what, problem, exc, self.url, self._up, self.timeout)

    async def call(
        self, what: str, op: Callable[[float], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """``await op(deadline)`` (in ``anyio.current_time()``), across reconnects.

        ``retry=False`` for an op that must not run twice (see ``Link.call``).
        """
        deadline = anyio.current_time() + self.timeout
        pause = FIRST_PAUSE
        self._busy += 1
        try:
            while True:
                try:
                    return await op(deadline)
                except TimeoutError as exc:
                    reconnecting = self.wire is not None and self.wire.is_reconnecting
                    problem = "no reconnect" if reconnecting else "no answer"
                    raise self._error(what, f"{problem} within the timeout", exc) from exc
                except ConnectionLostError as exc:
                    # Told as Link tells it: the attempt was abandoned, like a timeout.
                    lost = TimeoutError(str(exc))
                    if not retry:
                        raise self._error(what, UNKNOWN_OUTCOME, lost) from exc
                    if anyio.current_time() >= deadline:
                        raise self._error(what, "no answer within the timeout", lost) from exc
                    # Ask again: the next attempt waits for the reconnect, then is sent.
                except ConnectionClosedError as exc:
                    raise NaqConnectionError(
                        f"{what}: the client's connection to {self.url} is closed"
                    ) from exc
                except (NoRespondersError, JetStreamAPIError) as exc:
                    not_ready = isinstance(exc, NoRespondersError) or (
                        exc.code == SERVICE_UNAVAILABLE
                    )
                    if not not_ready:
                        raise self._error(what, "refused", exc) from exc
                    if anyio.current_time() + pause >= deadline:
                        raise self._error(what, "JetStream not ready in time", exc) from exc
                    await anyio.sleep(pause)
                    pause = min(pause * 2, MAX_PAUSE)
                except WireError as exc:
                    raise self._error(what, "refused", exc) from exc
        finally:
            self._busy -= 1
            if not self._busy and self._settled is not None:
                self._settled.set()

    async def finish_calls(self) -> int:
        """Let calls in progress finish, up to the timeout, while connected; how many did not."""
        if self._busy and self._up:
            self._settled = anyio.Event()
            with anyio.move_on_after(self.timeout):
                await self._settled.wait()
        return self._busy

    def watch(self) -> _Watch:
        watch = _Watch()
        self._watches.add(watch)
        return watch

    def unwatch(self, watch: _Watch) -> None:
        self._watches.discard(watch)


class NativeCalls:
    """``NatsTransport``'s enqueue, get_record and wait_record, natively on the wire client.

    What the wire client does not do (creating a queue's consumer on its first enqueue)
    crosses to ``transport`` through ``bridge``, as every other call does.
    """

    def __init__(self, transport: NatsTransport, bridge: Bridge) -> None:
        self._transport = transport
        self._bridge = bridge
        self._link = _WireLink(transport.url, transport.timeout)
        self._announced: set[str] = set()
        self._stopped: anyio.Event | None = None
        self._consumers = NativeConsumers(lambda: self.wire, transport, bridge)

    @property
    def wire(self) -> WireConnection:
        wire = self._link.wire
        if wire is None:
            raise NaqConnectionError("not connected to NATS: the native client was never opened")
        return wire

    def routes(self) -> dict[Callable[..., Any], Callable[..., Awaitable[Any]]]:
        """``NatsTransport`` functions -> the methods that replace them on this backend."""
        return {
            NatsTransport.enqueue: self.enqueue,
            NatsTransport.get_record: self.get_record,
            NatsTransport.wait_record: self.wait_record,
            **self._consumers.routes(),
        }

    # -- calls --------------------------------------------------------------------------------

    async def enqueue(self, job: OutgoingJob) -> None:
        """As ``NatsTransport.enqueue``: one publish, confirmed on return, the same errors."""
        too_large = record_too_large(job, self.wire.max_payload)
        if too_large is not None:
            raise too_large
        if job.lane not in self._announced:  # once per queue (a consumer for operators)
            await self._bridge.call(self._transport.announce_queues, {job.lane})
            self._announced.add(job.lane)
        publish = functools.partial(self._publish, job)
        await self._link.call(f"enqueue of job {job.job_id}", publish, retry=job.dedupe)

    async def _publish(self, job: OutgoingJob, deadline: float) -> None:
        headers = message_headers(job)
        subject = job_subject(job.lane, job.job_id)
        try:
            await self.wire.js_publish(
                subject, job.record, headers, timeout=deadline - anyio.current_time()
            )
        except JetStreamAPIError as exc:
            if exc.code == SERVICE_UNAVAILABLE:
                raise  # not ready yet: the link waits it out
            raise _publish_failure(
                self._link.url, PublishError(exc.description, exc.err_code)
            ) from exc
        except ValueError as exc:  # larger than the server's max_payload
            raise SerializationError(f"job is larger than the server's max_payload: {exc}") from exc

    async def get_record(self, job_id: str) -> bytes | None:
        """As ``NatsTransport.get_record``: the KV record, the queued message, the KV again."""
        read = functools.partial(self._read_record, job_id)
        return await self._link.call(f"reading job {job_id}", read)

    async def _read_record(self, job_id: str, deadline: float) -> bytes | None:
        # As NatsTransport._read_record: the KV record and the queued message in one round
        # trip, then the KV again only if neither was there.
        wire, record = self.wire, (JOBS_BUCKET_STREAM, any_record_subject(job_id))
        lasts = [record, (JOBS_STREAM, queued_job_subject(job_id))]
        for msg in await wire.direct_gets(lasts, deadline - anyio.current_time()):
            if msg is not None and msg.data:  # no data: a KV delete or purge marker
                return msg.data
        again = await wire.direct_get(*record, deadline - anyio.current_time())
        return again.data if again is not None and again.data else None

    async def wait_record(
        self, job_id: str, done: Callable[[bytes], bool], timeout: float | None
    ) -> bytes | None:
        """As ``NatsTransport.wait_record``: subscribe, read, then wait for stored writes.

        Read again after each reconnect, and from the stream's leader after ``FIRST_RECHECK``
        s without a write, then twice as long each time up to ``MAX_RECHECK`` (a cluster can
        lose the notification: see ``NatsTransport.wait_record``). TimeoutError after
        ``timeout`` seconds, NaqConnectionError if disconnected by then or once the client
        closes.
        """
        deadline = anyio.current_time() + (float("inf") if timeout is None else timeout)
        what = f"waiting for job {job_id}"
        wire = self.wire
        watch = self._link.watch()
        try:
            try:
                sub = await wire.subscribe(stored_record_subject("*", job_id))
            except ConnectionClosedError as exc:
                raise NaqConnectionError(f"{what}: the connection to {self.url} is closed") from exc
            try:
                current = await self.get_record(job_id)
                recheck = FIRST_RECHECK
                while current is not None and not done(current):
                    if watch.stale:
                        watch.stale = False
                        current = await self.get_record(job_id)
                        recheck = FIRST_RECHECK  # the SUB is new again on the servers
                        continue
                    msg = None
                    wake = min(deadline, anyio.current_time() + recheck)
                    with anyio.CancelScope(deadline=wake) as scope:
                        watch.scope = scope  # cancelled by a reconnect, see _WireLink
                        try:
                            msg = await sub.next_msg()
                        except ConnectionClosedError as exc:
                            raise NaqConnectionError(
                                f"{what}: the client's connection to {self.url} closed"
                            ) from exc
                    watch.scope = None
                    if msg is not None:
                        if msg.data:  # a delete or purge marker has no data
                            current = msg.data
                    elif watch.stale:
                        continue
                    elif wake < deadline:  # nothing for ``recheck`` s: ask the leader
                        current = await self._leader_record(job_id) or current
                        recheck = min(recheck * 2, MAX_RECHECK)
                    else:  # the deadline passed
                        if not wire.is_connected:
                            raise NaqConnectionError(
                                f"{what}: disconnected from NATS at {self.url} "
                                "when the wait ran out"
                            )
                        raise TimeoutError(f"{what}: not done within {timeout} s")
            finally:
                if not wire.is_closed:
                    await sub.unsubscribe()
        finally:
            self._link.unwatch(watch)
        return current

    async def _leader_record(self, job_id: str) -> bytes | None:
        """As ``NatsTransport._leader_record``: the KV record as the stream's leader has it;
        None when there is none or it could not be asked (logged)."""
        wire = self.wire
        if not wire.is_connected:
            return None  # the reconnect makes the waiter read again
        try:
            data = await wire.leader_get(
                JOBS_BUCKET_STREAM, any_record_subject(job_id), self._link.timeout
            )
        except (WireError, TimeoutError) as exc:
            logger.warning("could not read job {} from the stream leader: {!r}", job_id, exc)
            return None
        return data or None  # no data: a KV delete or purge marker

    @property
    def url(self) -> str:
        return self._link.url

    # -- opening and closing ------------------------------------------------------------------

    async def open(self, kwargs: dict[str, Any]) -> None:
        """Connect, and run the connection in a task of its own until :meth:`close`.

        Its own task (a Trio system task, or a bare asyncio task), not a task group of the
        caller: a Client may be opened and closed in different cancel scopes (fixtures,
        exit stacks), and the connection must not end with whichever scope opened it.
        """
        link = self._link
        opened: list[WireConnection | BaseException] = []
        ready, stopped = anyio.Event(), anyio.Event()
        self._stopped = stopped

        async def serve() -> None:
            try:
                async with anyio.create_task_group() as tg:
                    try:
                        wire = await WireConnection.connect(
                            **kwargs,
                            name="naq",
                            connect_timeout=5,
                            reconnect_wait=_RECONNECT_WAIT,
                            on_disconnected=link.disconnected,
                            on_reconnected=link.reconnected,
                            task_group=tg,
                        )
                    except (OSError, WireError) as exc:  # TimeoutError is an OSError
                        opened.append(exc)  # raised by the caller
                    else:
                        opened.append(wire)
                    ready.set()
            except Exception:  # noqa: BLE001 - its error would end a Trio run, or go unseen
                logger.exception("naq's native NATS connection to {} failed", link.url)
            finally:
                ready.set()
                stopped.set()

        _spawn_detached(serve, "naq wire connection")
        try:
            await ready.wait()
        except BaseException:  # cancelled while connecting: do not leave it running
            with anyio.CancelScope(shield=True):
                await ready.wait()
                if opened and isinstance(opened[0], WireConnection):
                    await opened[0].close()
            raise
        if not opened:
            raise NaqConnectionError(f"naq's native NATS client could not start for {link.url}")
        if isinstance(opened[0], BaseException):
            raise opened[0]
        link.wire = opened[0]

    async def finish_calls(self) -> int:
        """Let calls in progress finish (see ``Link.finish_calls``); how many did not."""
        return await self._link.finish_calls()

    async def close(self) -> None:
        """Close the connection; calls still waiting fail with NaqConnectionError."""
        wire, stopped = self._link.wire, self._stopped
        if wire is not None:
            await wire.close()
        if stopped is not None:
            await stopped.wait()


_detached: set[asyncio.Task[None]] = set()
"""asyncio keeps only weak references to tasks: these are held until they end."""


def _spawn_detached(serve: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
    """Run ``serve()`` in a task no caller's cancel scope owns, until it returns."""
    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(serve, name=name)
        return
    task = asyncio.get_running_loop().create_task(serve(), name=name)
    _detached.add(task)
    task.add_done_callback(_detached.discard)


async def open_native(transport: NatsTransport, bridge: Bridge) -> NativeCalls | None:
    """The native calls for a connected transport, or None when its options need nats-py.

    A wire connection that fails while nats-py's succeeded is logged and left out: the
    bridge still serves every call.
    """
    kwargs = wire_connect_kwargs(transport.options)
    if kwargs is None:
        return None
    native = NativeCalls(transport, bridge)
    try:
        await native.open(kwargs)
    except (OSError, WireError) as exc:  # TimeoutError is an OSError
        logger.warning(
            "naq's native NATS client cannot connect to {} ({!r}); using nats-py", native.url, exc
        )
        return None
    return native

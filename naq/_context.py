"""``naq.current_job()``: the running job, seen from inside its own function.

A job reports progress and meta through it, reads its dependencies' results, and (if it is
a sync job, which cannot be interrupted) checks whether it has been canceled. Updates are
queued to the worker's settle loop without waiting, from the event loop or a job thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

import attrs
from typing_extensions import deprecated

from ._errors import NaqError
from ._record import JobRecord
from ._serializers import JsonSerializer

__all__ = ["JobContext", "current_job"]

_current: ContextVar[JobContext | None] = ContextVar("naq_current_job", default=None)


class JobContext:
    """What a running job knows about itself; get it with :func:`naq.current_job`."""

    def __init__(
        self,
        record: JobRecord,
        publish: Callable[[JobRecord], None],
        dependency_results: Mapping[str, Any],
        call_in_loop: Callable[[Callable[[], object]], None],
        *,
        is_async: bool = False,
    ) -> None:
        self.record = record
        self.is_async = is_async
        """True for an ``async def`` job (run on the worker's loop), False for a ``def`` job
        (run in a job thread): a hook can skip work that only one kind needs."""
        self.dependency_results = dict(dependency_results)
        self._publish = publish
        self._call_in_loop = call_in_loop
        self._loop_thread = threading.get_ident()
        self._canceled = False

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def attempt(self) -> int:
        return self.record.attempts

    @property
    def canceled(self) -> bool:
        """True once the job was canceled: a sync job should check it and return early."""
        return self._canceled

    if TYPE_CHECKING:  # deprecated for type checkers and IDEs (struck through), not at run
        # time yet: the worker itself still reads it once per job (naq/_runner.py).

        @property
        @deprecated("JobContext.cancelled is now spelled canceled")
        def cancelled(self) -> bool: ...

    else:

        @property
        def cancelled(self) -> bool:
            """Deprecated alias of :attr:`canceled`: naq spells it the American way everywhere
            (``JobStatus.CANCELED``, ``JobCanceled``)."""
            return self._canceled

    def set_progress(self, progress: float, **meta: Any) -> None:
        """Record progress (any number, e.g. 0.0-1.0) and optionally meta; readers see it."""
        self._update(progress=float(progress), meta={**self.record.meta, **meta})

    def update_meta(self, **meta: Any) -> None:
        """Merge ``meta`` into the job's meta (JSON values); readers see it."""
        self._update(meta={**self.record.meta, **meta})

    def _update(self, **changes: Any) -> None:
        if "meta" in changes:
            changes["meta"] = JsonSerializer().encode_value(changes["meta"])
        record = self.record = attrs.evolve(self.record, **changes)
        if threading.get_ident() == self._loop_thread:
            self._publish(record)
        else:  # a job thread: hand the update to the worker's loop, in order, without waiting
            self._call_in_loop(lambda: self._publish(record))

    def _cancel(self) -> None:
        self._canceled = True

    def activate(self) -> Token[JobContext | None]:
        """Make this the current job for the code (and threads) run from here on."""
        return _current.set(self)

    @staticmethod
    def deactivate(token: Token[JobContext | None]) -> None:
        _current.reset(token)


def current_job() -> JobContext:
    """The job running in this task or thread; NaqError outside a job."""
    context = _current.get()
    if context is None:
        raise NaqError("naq.current_job() is only available inside a running job")
    return context

"""One mechanism that turns naq's async classes into blocking twins.

A facade class names the async class it wraps; every public method of that class gets a
twin of the same name, signature and docstring that runs the coroutine on the shared loop
thread (``naq._loop_thread``) and waits. Results that are naq objects come back wrapped in
their own facades. Nothing else lives here: all behaviour is in the async core.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import anyio.lowlevel

from naq import NaqError
from naq._loop_thread import shared_portal

__all__ = ["Facade", "run", "wrap"]

_FACADES: dict[type, type[Facade]] = {}


def _refuse_inside_event_loop() -> None:
    try:
        anyio.lowlevel.current_token()
    except anyio.NoEventLoopError:
        return
    raise NaqError(
        "naq_sync blocks and would stall the event loop running in this thread; "
        "use the async API here instead: `async with naq.Client() as client: ...`"
    )


def run(async_fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run ``async_fn(*args, **kwargs)`` on the shared loop thread and return its result."""
    _refuse_inside_event_loop()
    return wrap(shared_portal().call(functools.partial(async_fn, *args, **kwargs)))


def wrap(value: Any) -> Any:
    """Wrap naq objects (and lists of them) in their blocking facades."""
    facade = _FACADES.get(type(value))
    if facade is not None:
        instance = object.__new__(facade)
        instance._async = value
        return instance
    if isinstance(value, list):
        return [wrap(item) for item in value]
    return value


def _blocking_twin(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def twin(self: Facade, *args: Any, **kwargs: Any) -> Any:
        return run(getattr(self._async, name), *args, **kwargs)

    return twin


def _plain_twin(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def twin(self: Facade, *args: Any, **kwargs: Any) -> Any:
        return wrap(getattr(self._async, name)(*args, **kwargs))

    return twin


class Facade:
    """Base of the blocking twins: ``class Job(Facade, wraps=naq.Job)``."""

    wraps: ClassVar[type]
    _async: Any

    def __init_subclass__(cls, *, wraps: type, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.wraps = wraps
        _FACADES[wraps] = cls
        for name, member in inspect.getmembers(wraps):
            if name.startswith("_") or name in cls.__dict__:
                continue
            if inspect.iscoroutinefunction(member):
                setattr(cls, name, _blocking_twin(name, member))
            elif inspect.isfunction(member):
                setattr(cls, name, _plain_twin(name, member))
            elif isinstance(member, property):
                setattr(cls, name, property(lambda self, _n=name: getattr(self._async, _n)))

    def __getattr__(self, name: str) -> Any:
        # Plain data attributes of the wrapped object (``job.id``, ``queue.name``).
        if name.startswith("_"):
            raise AttributeError(name)
        return wrap(getattr(self._async, name))

    def __repr__(self) -> str:
        return repr(self._async).replace("<naq.", "<naq_sync.", 1)

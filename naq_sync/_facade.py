"""One mechanism that turns naq's async classes into blocking twins.

A facade class names the async class it wraps; every public method of that class gets a
twin of the same name, signature and docstring. A coroutine method's twin runs it on the
process's loop thread and waits (``naq._blocking.run_blocking``); the async context-manager
and iterator methods become their blocking counterparts (``__aenter__`` -> ``__enter__``,
``__anext__`` -> ``__next__``, ...); properties and plain methods are forwarded. Results
that are naq objects come back wrapped in their own facades. Nothing else lives here: all
behaviour is in the async core.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from naq._blocking import run_blocking

__all__ = ["Facade", "forward", "run", "wrap"]

_FACADES: dict[type, type[Facade]] = {}
_DUNDER_TWINS = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
}
"""Async protocol methods and the blocking protocol methods that are their twins."""


def run(async_fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run ``async_fn(*args, **kwargs)`` on the shared loop thread; its result, wrapped."""
    return wrap(run_blocking(async_fn, *args, **kwargs))


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


def _same_or_wrapped(facade: Facade, value: Any) -> Any:
    # ``__aenter__`` returns the async object itself: its twin returns the same facade.
    return facade if value is facade._async else wrap(value)


def _blocking_twin(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def twin(self: Facade, *args: Any, **kwargs: Any) -> Any:
        try:
            value = run_blocking(getattr(self._async, name), *args, **kwargs)
        except StopAsyncIteration:
            raise StopIteration from None  # the end of an async iterator, in blocking terms
        return _same_or_wrapped(self, value)

    twin.__name__ = _DUNDER_TWINS.get(name, name)
    twin.__qualname__ = twin.__qualname__.rsplit(".", 1)[0] + "." + twin.__name__
    return twin


def _plain_twin(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def twin(self: Facade, *args: Any, **kwargs: Any) -> Any:
        return _same_or_wrapped(self, getattr(self._async, name)(*args, **kwargs))

    twin.__name__ = _DUNDER_TWINS.get(name, name)
    return twin


def _property_twin(name: str, prop: property) -> property:
    return property(lambda self: wrap(getattr(self._async, name)), doc=prop.__doc__)


def _init_twin(wraps: type) -> Callable[..., None]:
    @functools.wraps(wraps.__init__)
    def __init__(self: Facade, *args: Any, **kwargs: Any) -> None:
        self._async = wraps(*args, **kwargs)

    return __init__


class Facade:
    """Base of the blocking twins: ``class Job(Facade, wraps=naq.Job)``.

    ``constructible=True`` also gives the twin the wrapped class's constructor.
    """

    wraps: ClassVar[type]
    _async: Any

    def __init_subclass__(cls, *, wraps: type, constructible: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.wraps = wraps
        _FACADES[wraps] = cls
        for name, member in inspect.getmembers(wraps):
            twin_name = _DUNDER_TWINS.get(name, name)
            if (name.startswith("_") and name not in _DUNDER_TWINS) or twin_name in cls.__dict__:
                continue  # private, or written by hand in the class body
            if inspect.iscoroutinefunction(member):
                setattr(cls, twin_name, _blocking_twin(name, member))
            elif inspect.isfunction(member):
                setattr(cls, twin_name, _plain_twin(name, member))
            elif isinstance(member, property):
                setattr(cls, name, _property_twin(name, member))
        if constructible:
            cls.__init__ = _init_twin(wraps)  # type: ignore[method-assign]

    def __getattr__(self, name: str) -> Any:
        # Plain data attributes of the wrapped object (``job.id``, ``queue.name``).
        if name.startswith("_"):
            raise AttributeError(name)
        return wrap(getattr(self._async, name))

    def __repr__(self) -> str:
        return repr(self._async).replace("<naq.", "<naq_sync.", 1)


def forward(name: str, instance: Callable[[], Facade], facade: type[Facade]) -> Callable[..., Any]:
    """A module-level function that calls method ``name`` of ``instance()``.

    It has the method's signature (without ``self``) and docstring, so
    ``naq_sync.enqueue`` matches ``naq.Client.enqueue`` parameter for parameter.
    """
    method = getattr(facade, name)

    def forwarded(*args: Any, **kwargs: Any) -> Any:
        return getattr(instance(), name)(*args, **kwargs)

    functools.update_wrapper(forwarded, method)
    signature = inspect.signature(method)
    forwarded.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]
    )
    forwarded.__qualname__ = name
    forwarded.__module__ = "naq_sync"
    forwarded.__doc__ = f"On the default client: {method.__doc__ or name}"
    return forwarded

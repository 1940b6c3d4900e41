"""Function references: turn a callable into an import path and an import path back into it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from ._errors import ConfigurationError

__all__ = ["describe", "import_object", "import_path", "importable_path", "resolve"]

_IMPORTABLE: dict[Any, str | None] = {}
"""Cache of :func:`importable_path` for functions seen (module-level ones are few)."""


def describe(func: Callable[..., Any] | str) -> str:
    """A readable name for display: the import path when there is one, else the repr."""
    if isinstance(func, str):
        return func
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if module and qualname:
        return f"{module}:{qualname}"
    return repr(func)


def import_path(func: Callable[..., Any] | str) -> str:
    """The ``"pkg.mod:qualname"`` path a worker can import ``func`` from; else a clear error."""
    if isinstance(func, str):
        module, sep, qualname = func.partition(":")
        if not sep or not module or not qualname:
            raise ConfigurationError(f"function path must be 'pkg.module:func', got {func!r}")
        return func
    if not callable(func):
        raise ConfigurationError(f"expected a callable or 'pkg.module:func', got {func!r}")
    path = describe(func)
    if "<" in path or path.startswith("__main__:") or ":" not in path:
        raise ConfigurationError(
            f"{path} cannot be imported by a worker; define it at module level in an "
            "importable module or pass its path as 'pkg.module:func'"
        )
    return path


def importable_path(func: Callable[..., Any]) -> str | None:
    """``func``'s import path if importing it yields ``func`` itself, else None (cached).

    ``__main__`` never counts: a worker's ``__main__`` is not the producer's.
    """
    try:
        return _IMPORTABLE[func]
    except KeyError:
        pass
    except TypeError:  # unhashable callable
        return None
    module_name = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", "")
    path = None
    module = sys.modules.get(module_name) if module_name and module_name != "__main__" else None
    if module is not None and "<" not in qualname:
        target: Any = module
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if target is func:
            path = f"{module_name}:{qualname}"
    if len(_IMPORTABLE) < 10_000:
        _IMPORTABLE[func] = path
    return path


_RESOLVED: dict[str, Callable[..., Any]] = {}


def resolve(path: str) -> Callable[..., Any]:
    """Import the callable named by ``"pkg.mod:qualname"`` (cached: workers resolve a lot)."""
    found = _RESOLVED.get(path)
    if found is not None:
        return found
    target = _import(path)
    if len(_RESOLVED) < 10_000:
        _RESOLVED[path] = target
    return target


def import_object(spec: str, what: str | None = None, example: str = "func") -> Any:
    """The object named by ``"pkg.mod:qualname"``; ConfigurationError saying what is wrong.

    ``what`` names it in the errors ("cannot import hooks pkg.mod:x: ..."); without it, the
    errors speak of a job's function ("cannot import pkg.mod:x: ...").
    """
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise ConfigurationError(
            f"{what or 'function path'} must look like 'pkg.module:{example}', got {spec!r}"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        named = f"{what} " if what else ""
        raise ConfigurationError(f"cannot import {named}{spec}: {exc}") from exc
    return target


def _import(path: str) -> Callable[..., Any]:
    target = import_object(path)
    if not callable(target):
        raise ConfigurationError(f"{path} is not callable")
    return target

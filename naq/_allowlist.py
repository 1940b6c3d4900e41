"""Which modules a worker may import job functions from when a record names them as text.

A JSON record names its function by import path, and anyone who can publish on a queue
subject can write one: ``"os:system"`` with ``["rm -rf ~"]`` is valid JSON. So a worker
resolves a named function only from modules it allows, and checks that the object found is
defined there (``tests.jobs:os.system`` reaches ``os.system`` through an allowed module).

The default is the application the worker was started with: the top-level modules and
packages in the directory of ``sys.path[0]`` (``naq worker --path``, the script's directory,
or the current directory). The standard library and installed packages (``os``,
``subprocess``, ``builtins``, ``pickle``...) are never allowed unless named explicitly.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ._errors import ConfigurationError
from ._functions import resolve

__all__ = ["Allowlist", "default_allowed_modules"]

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def default_allowed_modules(directory: str | Path | None = None) -> list[str]:
    """Top-level modules and packages in ``directory`` (default: ``sys.path[0]`` or cwd)."""
    root = Path(directory if directory is not None else (sys.path[0] or os.getcwd()))
    names = set()
    try:
        entries = list(root.iterdir())
    except OSError as exc:
        raise ConfigurationError(f"cannot list the worker's directory {root}: {exc}") from exc
    for entry in entries:
        if entry.suffix == ".py" and entry.is_file():
            names.add(entry.stem)
        elif entry.is_dir() and (entry / "__init__.py").is_file():
            names.add(entry.name)
    return sorted(name for name in names if _MODULE.match(name))


class Allowlist:
    """Resolves ``"pkg.mod:func"`` only inside the allowed modules (and their submodules)."""

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = tuple(dict.fromkeys(modules))
        for module in self.modules:
            if not isinstance(module, str) or not _MODULE.match(module):
                raise ConfigurationError(f"allowed module must be a dotted name, got {module!r}")

    def __repr__(self) -> str:
        return f"Allowlist({list(self.modules)!r})"

    def allows(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.modules)

    def resolve(self, path: str) -> Callable[..., Any]:
        """The callable at ``path``, or ConfigurationError when it is outside the allowlist."""
        module, sep, qualname = path.partition(":")
        if not sep or not module or not qualname:
            raise ConfigurationError(
                f"function path must look like 'pkg.module:func', got {path!r}"
            )
        if not self.allows(module):
            raise ConfigurationError(f"refused {path}: {module} is not an allowed module ({self})")
        if any(part.startswith("__") for part in qualname.split(".")):
            raise ConfigurationError(f"refused {path}: dunder attributes are never resolved")
        func = resolve(path)
        owner = getattr(func, "__module__", None)
        if not isinstance(owner, str) or not (
            self.allows(owner) or _accelerator_of(owner, module, qualname)
        ):
            raise ConfigurationError(
                f"refused {path}: it is defined in {owner}, which is not an allowed module"
            )
        return func


def _accelerator_of(owner: str, module: str, qualname: str) -> bool:
    """True for ``operator:add`` defined in ``_operator``: the C half of the module named."""
    return "." not in qualname and owner == "_" + module.rpartition(".")[2]

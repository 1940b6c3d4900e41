"""The command line a supervised child runs: ``python -m naq worker`` and the options given.

A child gets the options of the supervisor's own command line, rebuilt from the parsed
parameters (so ``--processes=2``, ``-q`` or ``--no-django`` read the same), minus the
supervisor's own options. Options that came from the environment are not repeated: the child
inherits the environment, so a password in ``NAQ_PASSWORD`` stays out of process listings.
Parameters are read by their stable attributes (``opts``, ``is_flag``, ``multiple``...):
typer vendors its own click, so neither click's classes nor its current context are used.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Collection, Mapping

import typer

__all__ = ["naq_worker_command", "parameters_argv"]


def naq_worker_command() -> list[str]:
    """This interpreter running ``naq worker`` (not the ``naq`` script: it may not be on PATH)."""
    return [sys.executable, "-m", "naq", "worker"]


def parameters_argv(
    context: typer.Context,
    *,
    skip: Collection[str] = (),
    only_given: bool = True,
    values: Mapping[str, object] | None = None,
) -> list[str]:
    """Arguments that give ``context``'s command its parameters again.

    With ``only_given``, only the parameters from the command line; else every parameter
    whose value is not None. ``values`` replaces parsed values (by parameter name).
    """
    argv: list[str] = []
    arguments: list[str] = []
    for param in context.command.params:
        name = param.name
        if name is None or name in skip:
            continue
        source = context.get_parameter_source(name)
        if only_given and (source is None or source.name != "COMMANDLINE"):
            continue
        value = (values or {}).get(name, context.params.get(name))
        if value is None:
            continue
        if param.param_type_name == "argument":
            arguments += [_text(v) for v in _as_list(value)]
        else:
            argv += _option_argv(param.opts, param.secondary_opts, param, value)
    return argv + (["--", *arguments] if arguments else [])


def _option_argv(opts: list[str], off: list[str], param: object, value: object) -> list[str]:
    flag = max(opts, key=len)  # the long name
    if getattr(param, "is_flag", False):
        if value:
            return [flag]
        return [max(off, key=len)] if off else []
    if getattr(param, "multiple", False):
        return [part for v in _as_list(value) for part in (flag, _text(v))]
    return [flag, _text(value)]


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _text(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)  # a Path too

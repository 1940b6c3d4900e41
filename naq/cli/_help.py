"""Plain ``--help`` for every naq command: readable at 80 columns and in a pipe.

Typer's own help draws option tables that cut long option names to fit 80 columns
(``--heartbeat-interv…``) and labels values with Python types (``<list[str]>``,
``<int range> [x>=1]``). naq's commands use these classes instead: click's plain layout
(long option names get their own line, text wraps, nothing is cut), values shown by a
metavar (``SECONDS``, ``[pickle|json]``), options grouped by their ``rich_help_panel``.
Only click's stable parameter attributes are read, so it works across typer versions.
"""

from __future__ import annotations

import enum
from typing import Any

from typer.core import TyperCommand, TyperGroup

__all__ = ["NaqCommand", "NaqGroup", "usage_pieces", "value_label"]


def _choices(param: Any) -> list[str] | None:
    """The allowed values of a parameter, whichever typer built it."""
    for holder in (getattr(param, "type", None), getattr(param, "type_descriptor", None)):
        choices = getattr(holder, "choices", None)
        if choices:
            return [c.value if isinstance(c, enum.Enum) else str(c) for c in choices]
    return None


def value_label(param: Any) -> str:
    """What an option's value or an argument is called in help: its metavar, its choices
    (``[asyncio|trio]``), else its name in capitals."""
    if param.metavar:
        return param.metavar
    choices = _choices(param)
    if choices:
        return "[" + "|".join(choices) + "]"
    return (param.name or "value").upper()


def usage_pieces(command: Any, ctx: Any) -> list[str]:
    """``[OPTIONS] FUNC [ARGS]...``: required arguments bare, optional ones in brackets."""
    pieces = ["[OPTIONS]"]
    for param in command.get_params(ctx):
        if getattr(param, "param_type_name", "") != "argument":
            continue
        name = value_label(param)
        repeated = param.nargs == -1
        if repeated:
            name = name.removesuffix("...")
        piece = name if param.required else f"[{name}]"
        pieces.append(piece + ("..." if repeated else ""))
    return pieces


def _default(param: Any) -> str | None:
    if param.is_flag or getattr(param, "multiple", False) or param.show_default is False:
        return None
    if isinstance(param.show_default, str):
        return param.show_default
    value = param.default
    if value is None or callable(value):
        return None
    return str(value.value if isinstance(value, enum.Enum) else value)


def _option_row(param: Any) -> tuple[str, str]:
    names = ", ".join(sorted(param.opts, key=len))
    if not param.is_flag:
        names += " " + value_label(param)
    if param.secondary_opts:
        names += " / " + ", ".join(param.secondary_opts)
    extra = []
    if getattr(param, "multiple", False):
        extra.append("repeatable")
    envvar = param.envvar if getattr(param, "show_envvar", True) else None
    if envvar:
        extra.append("env " + (envvar if isinstance(envvar, str) else ", ".join(envvar)))
    default = _default(param)
    if default is not None:
        extra.append("default " + default)
    if param.required:
        extra.append("required")
    text = param.help or ""
    if extra:
        text = f"{text}  [{'; '.join(extra)}]" if text else f"[{'; '.join(extra)}]"
    return names, text


def _write_params(command: Any, ctx: Any, formatter: Any) -> None:
    arguments: list[tuple[str, str]] = []
    sections: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if getattr(param, "param_type_name", "") == "argument":
            if param.help:
                arguments.append((value_label(param), param.help))
            continue
        panel = getattr(param, "rich_help_panel", None) or "Options"
        sections.setdefault(panel, []).append(_option_row(param))
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    for title, rows in sections.items():
        with formatter.section(title):
            formatter.write_dl(rows)


class NaqCommand(TyperCommand):
    """A naq command with plain, uncut help."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return usage_pieces(self, ctx)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        _write_params(self, ctx, formatter)
        self.format_epilog(ctx, formatter)


class NaqGroup(TyperGroup):
    """The ``naq`` app and its ``dead-letters`` group, with plain help."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.format_usage(ctx, formatter)
        self.format_help_text(ctx, formatter)
        _write_params(self, ctx, formatter)
        self.format_commands(ctx, formatter)
        self.format_epilog(ctx, formatter)

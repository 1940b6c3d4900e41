"""What every ``naq`` command shares: connection and logging options, errors, running.

``naq_command`` adds the connection options (``--url``, ``--user``, ``--tls-ca``...) and the
logging options to a command, builds a ``ConnectOptions`` from them (option > ``NAQ_*``
environment > default) and turns naq's errors into one red line and exit code 1, also when
they come out of a task group (an ``ExceptionGroup``). Bad usage (a value not among the
choices, a missing argument) is click's usage error and exit code 2. ``run`` starts a
command's async part on the chosen backend.
"""

from __future__ import annotations

import enum
import functools
import importlib.util
import inspect
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import typer
from loguru import logger
from rich.console import Console

from .._errors import ConfigurationError, NaqError
from .._settings import CONNECT_ENV, ConnectOptions
from .._transport import check_queue_name
from ._help import NaqCommand

__all__ = [
    "Backend",
    "LogFormat",
    "LogLevel",
    "SerializerName",
    "check_queues",
    "fail",
    "naq_command",
    "naq_error_in",
    "run",
    "setup_logging",
    "usage_error",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_stderr = Console(stderr=True, highlight=False)

_CONNECTION_PANEL = "Connection"
_LOGGING_PANEL = "Logging"


class LogFormat(enum.StrEnum):
    text = "text"
    json = "json"


class LogLevel(enum.StrEnum):
    """The levels ``--log-level`` takes, in any case (``--log-level debug``)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Backend(enum.StrEnum):
    asyncio = "asyncio"
    trio = "trio"


class SerializerName(enum.StrEnum):
    pickle = "pickle"
    json = "json"


def setup_logging(level: str, fmt: LogFormat = LogFormat.text) -> None:
    """Send naq's logs to stderr: the CLI owns the process, so it may replace handlers
    (the library never does; it only logs when enabled)."""
    logger.remove()
    logger.add(sys.stderr, level=level.upper(), serialize=fmt is LogFormat.json)
    logger.enable("naq")


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``naq: message`` in red on stderr and return the Exit to raise."""
    _stderr.print(f"naq: {message}", style="red", markup=False, soft_wrap=True)
    return typer.Exit(code)


def usage_error(message: str) -> typer.BadParameter:
    """Bad usage found by a command itself (exit code 2, like click's own usage errors)."""
    return typer.BadParameter(message)


def check_queues(value: list[str] | None) -> list[str] | None:
    """Typer callback: queue names are checked before anything connects (exit code 2)."""
    for name in value or []:
        try:
            check_queue_name(name)
        except ConfigurationError as exc:
            raise usage_error(str(exc)) from None
    return value


def naq_error_in(exc: BaseException) -> NaqError | None:
    """The NaqError behind ``exc``: itself, or the first one inside an exception group."""
    if isinstance(exc, NaqError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = naq_error_in(inner)
            if found is not None:
                return found
    return None


def run(fn: Callable[..., Awaitable[T]], *args: Any, backend: str = "asyncio") -> T:
    """``anyio.run`` for a command; a missing trio is named by naq's extra."""
    if backend == Backend.trio and importlib.util.find_spec("trio") is None:
        raise ConfigurationError("the trio backend needs trio: pip install 'naq[trio]'")
    return anyio.run(fn, *args, backend=backend)


_HELP = {
    "servers": "NATS server URL(s), comma-separated.",
    "user": "User name (with --password).",
    "password": "Password (prefer the env var: options show in process lists).",
    "token": "Authentication token.",
    "nkey_seed": "NKey seed (SU...); needs the nkeys extra.",
    "nkey_seed_file": "File holding an NKey seed; needs the nkeys extra.",
    "creds": "Credentials file (JWT + seed); needs the nkeys extra.",
    "tls_ca": "CA certificate to verify the server (PEM).",
    "tls_cert": "Client certificate (PEM), with --tls-key.",
    "tls_key": "Client private key (PEM), with --tls-cert.",
}
_PATHS = {"nkey_seed_file", "creds", "tls_ca", "tls_cert", "tls_key"}
_METAVARS = {"servers": "URL", "user": "NAME", "password": "PASSWORD", "token": "TOKEN",
             "nkey_seed": "SEED"}  # fmt: skip


def _option_name(field: str) -> str:
    return "--url" if field == "servers" else "--" + field.replace("_", "-")


def _connection_parameters() -> list[inspect.Parameter]:
    params = []
    for field, envvar in CONNECT_ENV.items():
        kind = Path if field in _PATHS else str
        option = typer.Option(
            _option_name(field),
            metavar=_METAVARS.get(field, "FILE" if field in _PATHS else "TEXT"),
            envvar=envvar,
            help=_HELP[field],
            rich_help_panel=_CONNECTION_PANEL,
            show_default=False,
        )
        params.append(
            inspect.Parameter(
                f"connect_{field}",
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, option],
            )
        )
    return params


def _logging_parameters() -> list[inspect.Parameter]:
    level = typer.Option(
        "--log-level",
        envvar="NAQ_LOG_LEVEL",
        help="Least severe level logged (any case).",
        case_sensitive=False,
        rich_help_panel=_LOGGING_PANEL,
    )
    fmt = typer.Option(
        "--log-format",
        envvar="NAQ_LOG_FORMAT",
        help="text, or json (one object per line).",
        rich_help_panel=_LOGGING_PANEL,
    )
    return [
        inspect.Parameter(
            "log_level",
            inspect.Parameter.KEYWORD_ONLY,
            default=LogLevel.INFO,
            annotation=Annotated[LogLevel, level],
        ),
        inspect.Parameter(
            "log_format",
            inspect.Parameter.KEYWORD_ONLY,
            default=LogFormat.text,
            annotation=Annotated[LogFormat, fmt],
        ),
    ]


def naq_command(app: typer.Typer, name: str | None = None, *, connects: bool = True):
    """Register ``fn`` as a command with naq's shared options.

    ``fn`` receives ``options: ConnectOptions`` when ``connects``; logging is set up before
    it runs. NaqError, alone or inside an exception group, becomes one red line and exit 1;
    Ctrl-C exits 130 without a traceback.
    """

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "options"]
        extra = (_connection_parameters() if connects else []) + _logging_parameters()

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            setup_logging(kwargs.pop("log_level"), kwargs.pop("log_format"))
            try:
                if connects:
                    kwargs["options"] = ConnectOptions.from_env(
                        **{field: kwargs.pop(f"connect_{field}") for field in CONNECT_ENV}
                    )
                return fn(**kwargs)
            except NaqError as exc:
                raise fail(str(exc)) from None
            except KeyboardInterrupt:
                raise fail("interrupted", 130) from None
            except BaseExceptionGroup as group:
                error = naq_error_in(group)
                if error is not None:
                    raise fail(str(error)) from None
                if group.subgroup(KeyboardInterrupt) is not None:
                    raise fail("interrupted", 130) from None
                raise

        params = own + extra
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must see the new signature, not fn's
        app.command(name, cls=NaqCommand)(command)
        return fn

    return decorate

"""What every ``naq`` command shares: connection and logging options, errors, output.

``naq_command`` adds the connection options (``--url``, ``--user``, ``--tls-ca``...) and the
logging options to a command, builds a ``ConnectOptions`` from them (option > ``NAQ_*``
environment > default) and turns naq's errors into one red line and exit code 1.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from loguru import logger
from rich.console import Console

from .._errors import NaqError
from .._settings import CONNECT_ENV, ConnectOptions

__all__ = [
    "LogFormat",
    "console",
    "fail",
    "naq_command",
    "print_json",
    "setup_logging",
]

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False)
_stderr = Console(stderr=True, highlight=False)

_CONNECTION_PANEL = "Connection"
_LOGGING_PANEL = "Logging"


class LogFormat(enum.StrEnum):
    text = "text"
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


def print_json(value: Any) -> None:
    """JSON for scripts: plain stdout, never wrapped or coloured."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


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


def _option_name(field: str) -> str:
    return "--url" if field == "servers" else "--" + field.replace("_", "-")


def _connection_parameters() -> list[inspect.Parameter]:
    params = []
    for field, envvar in CONNECT_ENV.items():
        kind = Path if field in _PATHS else str
        option = typer.Option(
            _option_name(field),
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
        help="DEBUG, INFO, WARNING, ERROR.",
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
            default="INFO",
            annotation=Annotated[str, level],
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
    it runs. NaqError becomes one red line and exit 1; Ctrl-C exits 130 without a traceback.
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

        params = own + extra
        command.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must see the new signature, not fn's
        app.command(name)(command)
        return fn

    return decorate

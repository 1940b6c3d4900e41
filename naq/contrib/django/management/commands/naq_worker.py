"""``python manage.py naq_worker [QUEUE...]``: ``naq worker`` for a Django project.

Django is set up by ``manage.py``; ``settings.NAQ`` fills the ``NAQ_*`` variables the
environment lacks (``NaqConfig.ready``); every job runs between :func:`django_hooks`. The
options are ``naq worker``'s, with the same ``NAQ_*`` variables and defaults.
"""

from __future__ import annotations

import os
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from naq._errors import NaqError
from naq._settings import CONNECT_ENV, ConnectOptions

_OPTIONS: list[tuple[str, str | None, type, str]] = [
    ("--backend", "NAQ_BACKEND", str, "asyncio or trio (default: asyncio)."),
    ("--concurrency", "NAQ_CONCURRENCY", int, "Jobs run at once (default: 10)."),
    ("--sync-threads", "NAQ_SYNC_THREADS", int, "Threads for def jobs (default: concurrency)."),
    ("--ack-wait", "NAQ_ACK_WAIT", float, "Seconds before a silent worker's job is redelivered."),
    ("--grace", "NAQ_GRACE", float, "Seconds running jobs get to finish after SIGTERM/SIGINT."),
    ("--heartbeat-interval", "NAQ_HEARTBEAT_INTERVAL", float, "Seconds between heartbeats."),
    ("--name", None, str, "Worker id (default: host.pid.random)."),
    ("--serializer", "NAQ_SERIALIZER", str, "Encoding of new results: pickle or json."),
    ("--log-level", "NAQ_LOG_LEVEL", str, "Least severe level logged (default: INFO)."),
]
_DEFAULTS: dict[str, Any] = {
    "backend": "asyncio", "concurrency": 10, "ack_wait": 30.0, "grace": 25.0,
    "heartbeat_interval": 5.0, "log_level": "INFO",
}  # fmt: skip


def _connect_option(field: str) -> str:
    return "--url" if field == "servers" else "--" + field.replace("_", "-")


class Command(BaseCommand):
    help = "Run a naq worker for QUEUES (default: NAQ_QUEUE, else default), Django set up."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("queues", nargs="*", metavar="QUEUE")
        for option, variable, kind, text in _OPTIONS:
            suffix = f" [env {variable}]" if variable else ""
            parser.add_argument(option, type=kind, default=None, help=text + suffix)
        for field, variable in CONNECT_ENV.items():
            parser.add_argument(
                _connect_option(field), dest=f"connect_{field}", default=None,
                help=f"[env {variable}]",
            )  # fmt: skip
        parser.add_argument("--burst", action="store_true", help="Run what is queued, then exit.")
        parser.add_argument(
            "--allow", action="append", metavar="MODULE", help="Module JSON jobs may name."
        )
        parser.add_argument(
            "--hooks", action="append", metavar="PKG.MOD:NAME", default=None,
            help="More naq.WorkerHooks, by import path [env NAQ_HOOKS, space-separated].",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except NaqError as exc:
            raise CommandError(str(exc)) from None

    def _value(self, options: dict[str, Any], name: str, variable: str | None, kind: type) -> Any:
        value = options.get(name)
        if value is None and variable and os.environ.get(variable):
            try:
                value = kind(os.environ[variable])
            except ValueError:
                wrong = f"{variable}={os.environ[variable]!r} is not a {kind.__name__}"
                raise CommandError(wrong) from None
        return _DEFAULTS.get(name) if value is None else value

    def _run(self, options: dict[str, Any]) -> None:
        import anyio
        from loguru import logger

        from naq._integrations import load_hooks
        from naq._worker import Worker
        from naq.cli import run_until_signalled

        from ... import django_hooks

        values = {
            option[2:].replace("-", "_"): self._value(
                options, option[2:].replace("-", "_"), variable, kind
            )
            for option, variable, kind, _ in _OPTIONS
        }
        logger.remove()
        logger.add(sys.stderr, level=str(values["log_level"]).upper())
        logger.enable("naq")
        # NAQ_HOOKS: paths separated by spaces (as click splits it for naq worker) or commas
        hook_paths = options["hooks"] or os.environ.get("NAQ_HOOKS", "").replace(",", " ").split()
        connect = ConnectOptions.from_env(
            **{field: options[f"connect_{field}"] for field in CONNECT_ENV}
        )
        queues = options["queues"] or [os.environ.get("NAQ_QUEUE") or "default"]
        worker = Worker(
            queues,
            connect_options=connect,
            concurrency=values["concurrency"],
            sync_threads=values["sync_threads"],
            serializer=values["serializer"],
            ack_wait=values["ack_wait"],
            heartbeat_interval=values["heartbeat_interval"],
            name=values["name"],
            burst=options["burst"],
            allowed_modules=options["allow"] or None,
            hooks=[django_hooks(), *load_hooks(hook_paths)],
        )
        anyio.run(run_until_signalled, worker, values["grace"], backend=values["backend"])

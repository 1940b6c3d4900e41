"""naq for Flask: an extension reading the app's config, and jobs run in the app's context.

    naq = Naq(app)                    # or Naq() then naq.init_app(app) in an app factory
    naq.enqueue(send_mail, user_id)   # a naq_sync.Job, on the app's NAQ_QUEUE

Config keys are the ``NAQ_*`` variables' names (``NAQ_NATS_URL``, ``NAQ_USER``,
``NAQ_SERIALIZER``, ``NAQ_QUEUE``...). A ``NAQ_*`` environment variable beats the app's config,
which beats naq's default (the same order as for Django's ``settings.NAQ``). A worker runs its
jobs inside the app's context with ``naq worker --flask module:app``, or in code with
``naq.Worker(..., hooks=app_context_hooks(app))``: ``current_app``, ``app.config`` and
extensions bound to the app context (Flask-SQLAlchemy's session, removed at teardown) work.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from flask import Flask
from flask.ctx import AppContext

from naq._hooks import WorkerHooks
from naq._record import JobRecord
from naq._settings import CONNECT_ENV

__all__ = ["Naq", "app_context_hooks", "apply_config", "config_environment"]

_EXTRA = ("NAQ_SERIALIZER", "NAQ_SIGNING_KEY", "NAQ_QUEUE", "NAQ_REPLICAS")


def config_environment(app: Flask) -> dict[str, str]:
    """The ``NAQ_*`` keys of ``app.config`` as variables (lists of URLs joined by commas)."""
    env = {}
    for key in (*CONNECT_ENV.values(), *_EXTRA):
        value = app.config.get(key)
        if value is None or value == "":
            continue
        env[key] = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return env


def apply_config(app: Flask) -> dict[str, str]:
    """Set the ``NAQ_*`` variables ``app.config`` has and the environment lacks (a worker
    process does this, so the worker and ``naq_sync`` read them); returns those set."""
    applied = {}
    for key, value in config_environment(app).items():
        if not os.environ.get(key):
            os.environ[key] = applied[key] = value
    return applied


_pushed: ContextVar[AppContext | None] = ContextVar("naq_flask_app_context", default=None)


def app_context_hooks(app: Flask) -> WorkerHooks:
    """Hooks pushing ``app``'s context before every job and popping it after (its teardown
    functions run then), in the job's thread for a ``def`` job."""

    def push(record: JobRecord) -> None:
        context = app.app_context()
        context.push()
        _pushed.set(context)

    def pop(record: JobRecord) -> None:
        context = _pushed.get()
        if context is not None:
            _pushed.set(None)
            context.pop()

    return WorkerHooks(before_job=push, after_job=pop)


class Naq:
    """The Flask extension: ``app.extensions["naq"]``; the app's config sets naq's defaults.

    ``init_app`` fills the ``NAQ_*`` variables the environment lacks from the app's config,
    so :meth:`enqueue` (naq_sync's default client, one per process: a forked gunicorn worker
    makes its own on first use) and a worker started with ``--flask`` read the same settings.
    The first app initialised in a process sets them.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self.queue = "default"
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        apply_config(app)
        app.extensions["naq"] = self
        self.queue = os.environ.get("NAQ_QUEUE") or "default"

    def enqueue(self, func: Callable[..., Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """``naq_sync.enqueue`` on the app's queue unless ``queue=`` says otherwise."""
        import naq_sync

        kwargs.setdefault("queue", self.queue)
        return naq_sync.enqueue(func, *args, **kwargs)

    def fetch_job(self, job_id: str) -> Any:
        """``naq_sync.fetch_job``."""
        import naq_sync

        return naq_sync.fetch_job(job_id)

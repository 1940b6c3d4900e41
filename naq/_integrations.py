"""What ``naq worker``, ``naq dev`` and ``naq scheduler`` do for Django, Flask and ``--hooks``.

Kept out of the CLI module so it is tested by calling it, and imported by the CLI only when
one of these options is used (nothing here imports Django or Flask unless asked to):

- :func:`setup_django`: ``django.setup()`` when ``DJANGO_SETTINGS_MODULE`` is set (or when
  asked), then ``settings.NAQ`` as defaults of the ``NAQ_*`` variables;
- :func:`load_hooks`: ``WorkerHooks`` from import paths (``pkg.mod:hooks``);
- :func:`flask_hooks`: hooks running every job in a Flask app's context (``module:app``);
- :func:`prepare_worker`: all of it at once, returning the hooks to give the Worker;
- :func:`connect_options_after_setup`: the connect options again, now that settings may have
  filled ``NAQ_*`` variables (options given on the command line still win).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from ._errors import ConfigurationError
from ._functions import import_object
from ._hooks import WorkerHooks, combine_hooks
from ._settings import CONNECT_ENV, ConnectOptions

__all__ = [
    "connect_options_after_setup",
    "flask_hooks",
    "load_hooks",
    "prepare_worker",
    "setup_django",
]


def setup_django(enabled: bool | None = None, settings_module: str | None = None) -> bool:
    """Set Django up for a worker: always when ``enabled``, never when False, and when None
    only if ``DJANGO_SETTINGS_MODULE`` (or ``settings_module``) is set. True if it did."""
    if enabled is False:
        return False
    if not (settings_module or os.environ.get("DJANGO_SETTINGS_MODULE")):
        if enabled:
            raise ConfigurationError("--django needs DJANGO_SETTINGS_MODULE (the settings module)")
        return False
    try:
        from .contrib.django import setup
    except ImportError as exc:
        raise ConfigurationError(f"Django is not importable: {exc}") from exc
    try:
        setup(settings_module)
    except Exception as exc:  # ImproperlyConfigured, an ImportError of the settings...
        raise ConfigurationError(f"Django setup failed: {type(exc).__name__}: {exc}") from exc
    return True


def load_hooks(specs: Sequence[str]) -> list[WorkerHooks]:
    """``WorkerHooks`` from ``pkg.mod:name`` paths: each names a ``WorkerHooks`` or a callable
    that returns one when called without arguments."""
    loaded = []
    for spec in specs:
        target = import_object(spec, "hooks", example="name")
        if not isinstance(target, WorkerHooks) and callable(target):
            try:
                target = target()
            except Exception as exc:
                raise ConfigurationError(
                    f"hooks {spec} raised {type(exc).__name__}: {exc}"
                ) from exc
        if not isinstance(target, WorkerHooks):
            raise ConfigurationError(
                f"hooks {spec} is {type(target).__name__}, not naq.WorkerHooks "
                "(or a function returning them)"
            )
        loaded.append(target)
    return loaded


def flask_hooks(spec: str) -> WorkerHooks:
    """Hooks running every job in the app context of the Flask app ``module:app`` (or
    ``module:create_app()``, or ``module`` alone, found as ``flask --app`` finds it); its
    config's ``NAQ_*`` keys become defaults of the environment's."""
    try:
        from flask.cli import NoAppException, locate_app
    except ImportError as exc:
        raise ConfigurationError(f"Flask is not importable: {exc}") from exc
    from .contrib.flask import app_context_hooks, apply_config

    module, _, name = spec.partition(":")
    try:
        app = locate_app(module, name or None)
    except NoAppException as exc:
        raise ConfigurationError(f"--flask {spec}: {exc}") from exc
    assert app is not None
    apply_config(app)
    return app_context_hooks(app)


def prepare_worker(
    *,
    hooks: Sequence[str] = (),
    django: bool | None = None,
    flask: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> WorkerHooks | None:
    """Everything before a worker is made: ``path`` on ``sys.path`` (if not already), Django
    set up (see :func:`setup_django`), then the hooks, nested in this order: Django's, the
    Flask app context, ``hooks`` from their import paths."""
    if path is not None:
        directory = os.path.abspath(path)
        if directory not in sys.path:
            sys.path.insert(0, directory)
    found: list[WorkerHooks] = []
    if setup_django(django):
        from .contrib.django import django_hooks

        found.append(django_hooks())
    if flask:
        found.append(flask_hooks(flask))
    found += load_hooks(hooks)
    return combine_hooks(found)


def connect_options_after_setup(options: ConnectOptions) -> ConnectOptions:
    """``options`` made again from the environment (which settings may have filled), keeping
    the values given on the command line. Outside a click command, ``options`` as they are."""
    import click
    from click.core import ParameterSource

    context = click.get_current_context(silent=True)
    if context is None:
        return options
    explicit = {
        field: context.params.get(f"connect_{field}")
        for field in CONNECT_ENV
        if context.get_parameter_source(f"connect_{field}") is ParameterSource.COMMANDLINE
    }
    return ConnectOptions.from_env(**explicit)

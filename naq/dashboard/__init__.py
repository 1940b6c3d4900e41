"""The web dashboard: live views of queues, jobs, workers, schedules and dead letters.

``create_app`` builds the ASGI app (Starlette + Jinja2); ``serve`` runs it on hypercorn on
the current backend (asyncio or Trio). Needs the ``dashboard`` extra.
"""

from __future__ import annotations

from .._errors import ConfigurationError

try:
    import hypercorn  # noqa: F401
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ConfigurationError(
        f"the dashboard needs the dashboard extra ({exc.name} is missing): "
        "pip install 'naq[dashboard]'"
    ) from exc

from ._app import create_app
from ._serve import serve

__all__ = ["create_app", "serve"]

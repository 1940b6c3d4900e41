"""Run the dashboard app on hypercorn, on whichever backend (asyncio or Trio) is running."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import sniffio
from hypercorn.config import Config

__all__ = ["serve"]


async def serve(
    app: object,
    bind: str,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]] = anyio.sleep_forever,
) -> None:
    """Serve ``app`` on ``bind`` (``host:port`` or ``fd://N``) until cancelled, or until
    ``shutdown_trigger`` returns (then gracefully). Installs no signal handlers itself."""
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.graceful_timeout = 1.0
    if sniffio.current_async_library() == "trio":
        from hypercorn.trio import serve as trio_serve

        await trio_serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        await asyncio_serve(app, config, shutdown_trigger=shutdown_trigger)  # type: ignore[arg-type]

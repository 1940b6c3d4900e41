"""HTTP Basic auth for the whole dashboard and CSRF checks for its POSTs."""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import ConfigurationError

__all__ = ["BasicAuth", "csrf_problem", "parse_auth"]

CSRF_HEADER = "x-csrf-token"


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); None or "" -> no auth."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ConfigurationError("dashboard auth must be 'user:password'")
    return user, password


class BasicAuth:
    """ASGI middleware: every HTTP request needs the user and password (HTTP Basic)."""

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self._expected = f"{user}:{password}".encode()

    def _allowed(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._allowed(
            Request(scope).headers.get("authorization")
        ):
            response = PlainTextResponse(
                "authentication required",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="naq dashboard"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def csrf_problem(request: Request, token: str) -> Response | None:
    """A 403 response when a POST lacks the page's token or comes from another origin."""
    given = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return PlainTextResponse("missing or wrong CSRF token", status_code=403)
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        return PlainTextResponse("cross-origin request refused", status_code=403)
    return None

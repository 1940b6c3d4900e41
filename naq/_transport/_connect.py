"""Turn naq's ``ConnectOptions`` into ``nats.connect`` keyword arguments (servers, auth, TLS)."""

from __future__ import annotations

import importlib.util
import ssl
from typing import Any

from .._errors import ConfigurationError
from .._settings import ConnectOptions

__all__ = ["nats_connect_kwargs"]


def _require_nkeys(why: str) -> None:
    """nats-py signs nkey and credentials challenges with the optional ``nkeys`` package."""
    if importlib.util.find_spec("nkeys") is None:
        raise ConfigurationError(
            f"{why} needs the 'nkeys' package; install it with: pip install 'naq[nkeys]'"
        )


def _readable(path: Any, what: str) -> str:
    if not path.is_file():
        raise ConfigurationError(f"{what} file not found: {path}")
    return str(path)


def _tls_context(options: ConnectOptions) -> ssl.SSLContext:
    """A client TLS context: the system's CAs or ``tls_ca``, and the client certificate."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH,
            cafile=_readable(options.tls_ca, "TLS CA") if options.tls_ca else None,
        )
        if options.tls_cert and options.tls_key:
            context.load_cert_chain(
                _readable(options.tls_cert, "TLS certificate"),
                _readable(options.tls_key, "TLS key"),
            )
    except ssl.SSLError as exc:
        raise ConfigurationError(f"cannot load TLS files: {exc}") from exc
    return context


def nats_connect_kwargs(options: ConnectOptions) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` (everything but naq's callbacks and timeouts)."""
    kwargs: dict[str, Any] = {"servers": list(options.servers)}
    if options.user:
        kwargs["user"] = options.user
        kwargs["password"] = options.password or ""
    if options.token:
        kwargs["token"] = options.token
    if options.nkey_seed:
        _require_nkeys("an nkey seed")
        kwargs["nkeys_seed_str"] = options.nkey_seed.strip()
    elif options.nkey_seed_file:
        _require_nkeys("an nkey seed")
        kwargs["nkeys_seed"] = _readable(options.nkey_seed_file, "nkey seed")
    if options.creds:
        _require_nkeys("a credentials file")
        kwargs["user_credentials"] = _readable(options.creds, "credentials")
    if options.uses_tls:
        kwargs["tls"] = _tls_context(options)
    return kwargs

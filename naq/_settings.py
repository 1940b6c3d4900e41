"""Configuration: how to reach NATS, and defaults that come from the environment.

Every setting has one name used everywhere: the ``ConnectOptions`` field ``tls_ca`` is the
CLI option ``--tls-ca`` and the environment variable ``NAQ_TLS_CA``. Precedence is explicit
value (argument or CLI option) > environment > default. The environment is read when
used, never frozen at import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from ._errors import ConfigurationError

__all__ = [
    "CONNECT_ENV",
    "DEFAULT_RESULT_TTL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "ConnectOptions",
    "default_replicas",
    "default_sync_threads",
    "default_url",
    "native_enabled",
    "resolve_connect_options",
    "split_servers",
]

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_RESULT_TTL = 500.0
"""Seconds a finished job's record (and result) is kept, as in RQ."""
DEFAULT_TIMEOUT = 10.0
"""Seconds a client call waits for NATS (an answer, or a reconnect) before NaqConnectionError.

Below gunicorn's default worker timeout (30 s), so a view fails cleanly instead of being killed.
"""


def default_url() -> str:
    """``NAQ_NATS_URL`` when set, else the local default server."""
    return os.environ.get("NAQ_NATS_URL") or DEFAULT_URL


def split_servers(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Server URLs from a list, or from one string of comma-separated URLs."""
    items = value.split(",") if isinstance(value, str) else list(value)
    servers = tuple(s.strip() for s in items if s and s.strip())
    if not servers:
        raise ConfigurationError(f"no NATS server URL in {value!r}")
    return servers


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None or value == "" else Path(value)


@attrs.frozen(kw_only=True)
class ConnectOptions:
    """How naq connects to NATS: servers, credentials and TLS, passed on to nats-py.

    ``ConnectOptions(...)`` is used as given; ``ConnectOptions.from_env(...)`` fills what
    is not given from ``NAQ_*`` variables. Give at most one of user/password, token, nkey
    seed (or seed file) and credentials file. TLS is used for ``tls://`` URLs or when any
    ``tls_*`` file is set; ``tls_ca`` verifies the server, ``tls_cert``/``tls_key`` are the
    client's certificate (for servers that verify clients).
    """

    servers: tuple[str, ...] = attrs.field(default=(DEFAULT_URL,), converter=split_servers)
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    nkey_seed: str | None = attrs.field(default=None, repr=False)
    nkey_seed_file: Path | None = attrs.field(default=None, converter=_optional_path)
    creds: Path | None = attrs.field(default=None, converter=_optional_path)
    tls_ca: Path | None = attrs.field(default=None, converter=_optional_path)
    tls_cert: Path | None = attrs.field(default=None, converter=_optional_path)
    tls_key: Path | None = attrs.field(default=None, converter=_optional_path)

    def __attrs_post_init__(self) -> None:
        methods = [
            name
            for name, value in (
                ("user", self.user),
                ("token", self.token),
                ("nkey_seed", self.nkey_seed or self.nkey_seed_file),
                ("creds", self.creds),
            )
            if value
        ]
        if len(methods) > 1:
            raise ConfigurationError(f"choose one way to authenticate, not {' and '.join(methods)}")
        if self.password and not self.user:
            raise ConfigurationError("a password needs a user")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigurationError("tls_cert and tls_key go together (the client certificate)")

    @property
    def url(self) -> str:
        """The servers as one comma-separated string (for messages and ``NAQ_NATS_URL``)."""
        return ",".join(self.servers)

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert) or any(
            s.startswith("tls://") for s in self.servers
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **explicit: object) -> ConnectOptions:
        """Options from explicit values (None means not given), else ``NAQ_*``, else defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for field, variable in CONNECT_ENV.items():
            value = explicit.pop(field, None)
            if value is None or value == () or value == []:
                value = env.get(variable) or None
            if value is not None:
                values[field] = value
        if explicit:
            raise TypeError(f"unknown connect options: {', '.join(sorted(explicit))}")
        return cls(**values)  # type: ignore[arg-type]


CONNECT_ENV: dict[str, str] = {
    "servers": "NAQ_NATS_URL",
    "user": "NAQ_USER",
    "password": "NAQ_PASSWORD",
    "token": "NAQ_TOKEN",
    "nkey_seed": "NAQ_NKEY_SEED",
    "nkey_seed_file": "NAQ_NKEY_SEED_FILE",
    "creds": "NAQ_CREDS",
    "tls_ca": "NAQ_TLS_CA",
    "tls_cert": "NAQ_TLS_CERT",
    "tls_key": "NAQ_TLS_KEY",
}
"""Each connect option's environment variable (the CLI option is ``--`` + field with dashes,
except ``servers``, which is ``--url``)."""


def resolve_connect_options(
    url: str | list[str] | None, options: ConnectOptions | None
) -> ConnectOptions:
    """What a Client or Worker connects with: ``options`` (else the environment), with
    ``url`` (when given) replacing its servers."""
    resolved = options if options is not None else ConnectOptions.from_env()
    if url:
        resolved = attrs.evolve(resolved, servers=url)
    return resolved


def default_replicas(explicit: int | None = None) -> int:
    """Replicas of the streams and buckets naq creates: ``explicit``, else ``NAQ_REPLICAS``, else 1.

    On a JetStream cluster, 3 keeps every job through the loss of one server.
    """
    value = explicit if explicit is not None else os.environ.get("NAQ_REPLICAS") or 1
    try:
        replicas = int(value)
    except (TypeError, ValueError):
        replicas = 0
    if isinstance(value, bool) or not 1 <= replicas <= 5:
        raise ConfigurationError(f"replicas must be a whole number from 1 to 5, got {value!r}")
    return replicas


def default_sync_threads(explicit: int | None, concurrency: int) -> int:
    """Threads for ``def`` jobs: ``explicit``, else ``NAQ_SYNC_THREADS``, else ``concurrency``.

    Threads start only when jobs need them, so the default costs nothing when the jobs are
    quick; fewer threads cap how many ``def`` jobs run at once (CPU-bound jobs gain nothing
    from more threads than one under the GIL).
    """
    value = explicit if explicit is not None else os.environ.get("NAQ_SYNC_THREADS") or concurrency
    try:
        threads = int(value)
    except (TypeError, ValueError):
        threads = 0
    if isinstance(value, bool) or threads < 1:
        raise ConfigurationError(f"sync_threads must be a whole number >= 1, got {value!r}")
    return threads


def native_enabled() -> bool:
    """Whether connections use naq's own NATS client for the hot calls: ``NAQ_NATIVE``
    (``1`` or unset: yes; ``0``: every call goes to nats-py, the escape hatch)."""
    value = os.environ.get("NAQ_NATIVE", "1").strip().lower()
    if value not in ("0", "1"):
        raise ConfigurationError(f"NAQ_NATIVE must be 0 or 1, got {value!r}")
    return value == "1"

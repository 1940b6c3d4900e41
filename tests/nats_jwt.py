"""Just enough NATS JWT (operator, account, user) to run a server in operator mode for tests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time

import nkeys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Identity:
    """An nkey pair of one kind (operator, account or user)."""

    def __init__(self, prefix: int) -> None:
        self.seed = nkeys.encode_seed(os.urandom(32), prefix)
        self.pair = nkeys.from_seed(self.seed)
        self.public = self.pair.public_key.decode()


def _jwt(issuer: Identity, subject: Identity, name: str, nats: dict) -> str:
    claims = {"iat": int(time.time()), "iss": issuer.public, "name": name, "sub": subject.public}
    claims["nats"] = {**nats, "version": 2}
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(issuer.pair.sign(f"{header}.{body}".encode()))
    return f"{header}.{body}.{signature}"


def operator_setup() -> tuple[str, str]:
    """A server configuration for operator mode with one JetStream account, and the
    credentials file text of a user of that account."""
    operator = Identity(nkeys.PREFIX_BYTE_OPERATOR)
    account = Identity(nkeys.PREFIX_BYTE_ACCOUNT)
    system = Identity(nkeys.PREFIX_BYTE_ACCOUNT)
    user = Identity(nkeys.PREFIX_BYTE_USER)
    unlimited = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                 "wildcards": True, "conn": -1, "leaf": -1,
                 "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}  # fmt: skip
    operator_jwt = _jwt(operator, operator, "naq-test", {"type": "operator"})
    account_jwt = _jwt(operator, account, "naq", {"type": "account", "limits": unlimited})
    system_jwt = _jwt(operator, system, "SYS", {"type": "account"})
    user_jwt = _jwt(
        account, user, "naq-user",
        {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1},
    )  # fmt: skip
    config = (
        f"operator: {operator_jwt}\n"
        f"system_account: {system.public}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{ {account.public}: {account_jwt}, {system.public}: {system_jwt} }}\n"
    )
    creds = (
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    return config, creds

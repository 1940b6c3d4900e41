"""HMAC-SHA256 signatures for pickled payloads, so a worker unpickles only what it can trust.

Unpickling runs code chosen by whoever wrote the bytes. With a signing key (``signing_key=``
on Client and Worker, else env ``NAQ_SIGNING_KEY``) producers sign every pickled call and
workers sign every pickled result; the reader checks the signature *before* unpickling and
refuses anything unsigned or wrongly signed. The signature covers the function name too, so
a signed call cannot be pointed at another function.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from ._errors import ConfigurationError, SerializationError

__all__ = ["SIGNING_KEY_ENV", "Signer", "signing_key"]

SIGNING_KEY_ENV = "NAQ_SIGNING_KEY"


def signing_key(explicit: str | bytes | None = None) -> bytes | None:
    """The key to sign with: ``explicit``, else env ``NAQ_SIGNING_KEY``, else None (unsigned)."""
    key = explicit if explicit is not None else os.environ.get(SIGNING_KEY_ENV) or None
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or len(key) < 16:
        raise ConfigurationError("a signing key must be at least 16 bytes (or characters) long")
    return key


class Signer:
    """Signs and verifies ``(purpose, text)`` pairs with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, purpose: str, text: str) -> str:
        message = purpose.encode() + b"\n" + text.encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, purpose: str, text: str, signature: object) -> None:
        """Raise SerializationError unless ``signature`` is this key's signature of the text."""
        if not isinstance(signature, str):
            raise SerializationError(
                f"refused an unsigned pickled payload ({purpose}): this side has a signing "
                "key, so only payloads signed with it are unpickled"
            )
        if not hmac.compare_digest(self.sign(purpose, text), signature):
            raise SerializationError(
                f"refused a pickled payload with a bad signature ({purpose}): it was signed "
                "with another key or changed after signing"
            )

"""Serializers: how a call (function, args, kwargs) and a result become JSON-safe values.

Job records are always JSON so any tool can read them; what differs is how the call and the
result are encoded inside. ``PickleSerializer`` (the default) takes any Python object and
base64-encodes a cloudpickle; ``JsonSerializer`` accepts plain JSON values only, names the
function by import path, and never unpickles anything.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import cloudpickle

from . import _signing
from ._allowlist import Allowlist, default_allowed_modules
from ._errors import ConfigurationError, SerializationError
from ._functions import describe, import_path, importable_path, resolve

__all__ = [
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "get_serializer",
    "serializer_for_record",
    "worker_serializer",
]

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Serializer(ABC):
    """Encodes calls and results for a job record; ``name`` is stored in the record."""

    name: ClassVar[str]
    allowlist: Allowlist | None = None
    """Modules a worker resolves functions named in JSON records from (None: any)."""

    @abstractmethod
    def encode_call(
        self, func: Callable[..., Any] | str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> tuple[str, Any]:
        """Return ``(function name for display, JSON-safe payload)`` or raise SerializationError."""

    @abstractmethod
    def decode_call(self, func_name: str, payload: Any) -> Call:
        """Rebuild ``(callable, args, kwargs)`` from a record's payload."""

    @abstractmethod
    def encode_value(self, value: Any) -> Any:
        """Turn a result into a JSON-safe value."""

    @abstractmethod
    def decode_value(self, data: Any) -> Any:
        """Inverse of :meth:`encode_value`."""


class PickleSerializer(Serializer):
    """cloudpickle, so lambdas, closures and any picklable object work. Trust your producers.

    With a signing key (``signing_key=``, else env ``NAQ_SIGNING_KEY``) every pickled call
    and result carries an HMAC, checked before anything is unpickled (see ``_signing``).
    """

    name = "pickle"

    def __init__(self, signing_key: str | bytes | None = None) -> None:
        key = _signing.signing_key(signing_key)
        self._signer = _signing.Signer(key) if key is not None else None

    @property
    def signed(self) -> bool:
        return self._signer is not None

    def encode_call(self, func, args, kwargs):
        # An importable function travels by path (cheap, and readable in the record); only
        # lambdas, closures and the like are pickled along with their arguments.
        path = import_path(func) if isinstance(func, str) else importable_path(func)
        if path is None:
            name, kind, data = describe(func), "call", _dumps((func, tuple(args), dict(kwargs)))
        elif not args and not kwargs:
            name, kind, data = path, "args", _NO_ARGUMENTS
        else:
            name, kind, data = path, "args", _dumps((tuple(args), dict(kwargs)))
        payload = {kind: data}
        if self._signer is not None:
            payload["sig"] = self._signer.sign(f"{kind} {name}", data)
        return name, payload

    def decode_call(self, func_name, payload):
        for kind in ("call", "args"):
            if isinstance(payload, dict) and isinstance(payload.get(kind), str):
                data = payload[kind]
                if self._signer is not None:  # checked before anything is unpickled
                    self._signer.verify(f"{kind} {func_name}", data, payload.get("sig"))
                if kind == "call":
                    return _loads(data)
                args, kwargs = _loads(data)
                return resolve(func_name), args, kwargs
        raise SerializationError("pickle payload must be {'call': ...} or {'args': ...}")

    def encode_value(self, value):
        data = _NONE if value is None else _dumps(value)  # None: the result of most jobs
        if self._signer is None:
            return data
        return {"pickle": data, "sig": self._signer.sign("value", data)}

    def decode_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("pickle"), str):
            if self._signer is not None:
                self._signer.verify("value", data["pickle"], data.get("sig"))
            return _loads(data["pickle"])
        if self._signer is not None:
            self._signer.verify("value", str(data), None)  # unsigned: refused
        return _loads(data)


def _dumps(value: Any) -> str:
    try:
        data = cloudpickle.dumps(value)
    except Exception as exc:  # cloudpickle raises many types for unpicklable values
        raise SerializationError(f"cannot pickle {type(value).__name__}: {exc}") from exc
    return base64.b64encode(data).decode("ascii")


def _loads(data: Any) -> Any:
    try:
        return pickle.loads(base64.b64decode(data))
    except Exception as exc:  # unpickling can raise nearly anything
        raise SerializationError(f"cannot unpickle payload: {exc}") from exc


_NO_ARGUMENTS = base64.b64encode(cloudpickle.dumps(((), {}))).decode("ascii")
_NONE = base64.b64encode(cloudpickle.dumps(None)).decode("ascii")


def _reject(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON type")


class JsonSerializer(Serializer):
    """Plain JSON: functions by import path, args and results as JSON values. Never unpickles.

    ``allowlist`` (set by workers) limits the modules a named function may come from.
    """

    name = "json"

    def __init__(self, allowlist: Allowlist | None = None) -> None:
        self.allowlist = allowlist

    def encode_call(self, func, args, kwargs):
        path = import_path(func)
        return path, {"args": self.encode_value(list(args)), "kwargs": self.encode_value(kwargs)}

    def decode_call(self, func_name, payload):
        if (
            not isinstance(payload, dict)
            or not isinstance(payload.get("args"), list)
            or not isinstance(payload.get("kwargs"), dict)
        ):
            raise SerializationError("JSON payload must be {'args': [...], 'kwargs': {...}}")
        func = self.allowlist.resolve(func_name) if self.allowlist else resolve(func_name)
        return func, tuple(payload["args"]), payload["kwargs"]

    def encode_value(self, value):
        try:
            # A dumps/loads round trip proves the value is JSON and yields what a reader sees.
            return json.loads(json.dumps(value, default=_reject, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"value is not JSON-serializable: {exc}") from exc

    def decode_value(self, data):
        return data


_SERIALIZERS: dict[str, type[Serializer]] = {"pickle": PickleSerializer, "json": JsonSerializer}


def get_serializer(
    choice: str | Serializer | None = None, *, signing_key: str | bytes | None = None
) -> Serializer:
    """The serializer named by ``choice``, else by env ``NAQ_SERIALIZER``, else pickle.

    Pickle signs with ``signing_key``, else env ``NAQ_SIGNING_KEY`` (see ``_signing``).
    """
    if isinstance(choice, Serializer):
        return choice
    name = choice or os.environ.get("NAQ_SERIALIZER") or "pickle"
    try:
        if name == "pickle":
            return PickleSerializer(signing_key)
        return _SERIALIZERS[name]()
    except KeyError:
        raise ConfigurationError(
            f"unknown serializer {name!r}; choose one of {sorted(_SERIALIZERS)}"
        ) from None


def worker_serializer(
    choice: str | Serializer | None,
    signing_key: str | bytes | None,
    allowed_modules: Sequence[str] | None,
) -> Serializer:
    """A worker's own serializer: signing as configured, and its JSON allowlist attached.

    ``allowed_modules=None`` allows the application the worker was started with (see
    ``_allowlist``); a Serializer passed in is copied, never changed.
    """
    serializer = copy.copy(get_serializer(choice, signing_key=signing_key))
    modules = default_allowed_modules() if allowed_modules is None else allowed_modules
    serializer.allowlist = Allowlist(modules)
    return serializer


def serializer_for_record(name: str, worker_serializer: Serializer) -> Serializer:
    """The serializer to decode a record written with ``name``, as the worker's policy allows.

    A JSON worker refuses pickled records outright, so JSON mode can never unpickle.
    """
    if name == worker_serializer.name:
        return worker_serializer
    if name == "json":
        return JsonSerializer(worker_serializer.allowlist)
    raise SerializationError(
        f"record is encoded with {name!r} but this worker only accepts {worker_serializer.name!r}"
    )

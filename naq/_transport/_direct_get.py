"""Batched direct gets: the ``multi_last`` requests, and the dependency edges they find.

Both clients (nats-py's and the wire client) look up a batch's dependents this way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from ._wire_protocol import Msg as WireMsg

__all__ = ["dependency_edges", "multi_last_requests"]


def multi_last_requests(subjects: Sequence[str]) -> list[bytes]:
    """Direct-get requests for the last message of each subject, 100 subjects a request.

    Each request's answers (on one reply subject) end with a status message: 204 at the end
    of the batch, 404 when nothing matched.
    """
    return [
        json.dumps({"multi_last": subjects[start : start + 100], "batch": 10_000}).encode()
        for start in range(0, len(subjects), 100)
    ]


def dependency_edges(msgs: Iterable[Msg | WireMsg]) -> dict[str, list[str]]:
    """dependency id -> the ids of the jobs waiting for it, from the edges' direct gets."""
    found: dict[str, list[str]] = {}
    for msg in msgs:
        if not msg.data:
            continue  # deleted edge
        subject = (msg.headers or {}).get("Nats-Subject", "")
        *_, dependency_id, dependent_id = subject.split(".")
        found.setdefault(dependency_id, []).append(dependent_id)
    return found

"""JetStream's error numbers (``err_code``) and API status codes that naq reacts to, in one place.

Each answer is expected somewhere (a race lost, a stream made already); any other error is
raised to the caller as it is.
"""

from __future__ import annotations

__all__ = ["MESSAGE_GONE", "SERVICE_UNAVAILABLE", "STREAM_EXISTS", "WRONG_LAST_SEQUENCE"]

STREAM_EXISTS = 10058
"""A stream (or a bucket's stream) of that name exists with another configuration."""
WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
"""A compare-and-set lost: ``Nats-Expected-Last-Subject-Sequence`` no longer holds (10071
names the sequence it found; 10164 is the constant form newer servers send)."""
MESSAGE_GONE = frozenset({10043, 10057})
"""A message to delete is gone already: "sequence not found", "no message found"."""
SERVICE_UNAVAILABLE = 503
"""The API status while JetStream is still starting (nats-py's ServiceUnavailableError)."""

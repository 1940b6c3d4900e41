"""Database connections around every job, as Django's request cycle handles them.

Django runs ``close_old_connections`` when a request starts and when it ends: a connection
past ``CONN_MAX_AGE``, or one that had errors and is no longer usable, is closed, and the
next query opens a new one. A worker does the same around every job:

- a ``def`` job's ORM calls use its job thread's connection: the sync hook runs in that
  thread;
- an ``async def`` job on asyncio uses the async ORM, which runs its queries in asgiref's
  thread-sensitive thread: the async hook runs there (``sync_to_async``). On Trio the async
  ORM does not run; an async job's blocking ORM calls use the event loop thread's connection,
  which the sync hook handles.
"""

from __future__ import annotations

import asyncio

import sniffio
from asgiref.sync import sync_to_async
from django.db import close_old_connections

from naq._context import current_job
from naq._hooks import WorkerHooks
from naq._record import JobRecord

__all__ = ["django_hooks"]


def _close_in_this_thread(record: JobRecord) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # a job thread (or Trio's): its own connections
        close_old_connections()
    # else an async job on asyncio: its connections are the ORM thread's, see below


_close_in_orm_thread = sync_to_async(close_old_connections, thread_sensitive=True)


async def _close_for_async_orm(record: JobRecord) -> None:
    # Only an async job uses the async ORM's thread: a def job would pay two thread hops here.
    if sniffio.current_async_library() == "asyncio" and current_job().is_async:
        await _close_in_orm_thread()


def django_hooks() -> WorkerHooks:
    """Worker hooks closing stale database connections before and after every job."""
    hooks = [_close_in_this_thread, _close_for_async_orm]
    return WorkerHooks(before_job=hooks, after_job=hooks)

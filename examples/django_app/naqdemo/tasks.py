"""Job functions. Run the worker with ``python manage.py naq_worker`` (Django set up, database
connections handled around every job), or ``naq worker`` with ``DJANGO_SETTINGS_MODULE`` set."""

from asgiref.sync import sync_to_async
from django.db import connection

from .models import Sum


def add(a: int, b: int) -> int:
    return a + b


def compute_sum(sum_id: int) -> int:
    """Enqueued on commit by the view that creates the row: the row is always there."""
    row = Sum.objects.get(pk=sum_id)
    row.result = row.a + row.b
    row.save(update_fields=["result"])
    return row.result


async def acompute_sum(sum_id: int) -> int:
    """:func:`compute_sum` with the async ORM."""
    row = await Sum.objects.aget(pk=sum_id)
    row.result = row.a + row.b
    await row.asave(update_fields=["result"])
    return row.result


def _drop_connection() -> None:
    connection.ensure_connection()
    connection.connection.close()  # as a database restart would: Django still holds it


def drop_database_connection() -> str:
    """Close this thread's database connection behind Django's back (a database restart)."""
    _drop_connection()
    return "dropped"


async def adrop_database_connection() -> str:
    """The same for the async ORM's connection."""
    await sync_to_async(_drop_connection)()
    return "dropped"

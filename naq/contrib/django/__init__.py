"""naq for Django: add ``"naq.contrib.django"`` to ``INSTALLED_APPS``.

- ``settings.NAQ`` (a dict: ``NATS_URL``, ``USER``, ``PASSWORD``, ``SERIALIZER``, ``QUEUE``...)
  fills the matching ``NAQ_*`` environment variables that are not set, when the app loads:
  an explicit option beats a ``NAQ_*`` variable, which beats ``settings.NAQ``, which beats
  naq's default.
- :func:`enqueue_on_commit` / :func:`aenqueue_on_commit`: publish a job only when the current
  transaction commits (never if it rolls back); the job id is returned at once.
- :func:`django_hooks`: worker hooks that close stale database connections before and after
  every job, as Django's request cycle does.
- ``python manage.py naq_worker``: ``naq worker`` with Django set up and those hooks.
"""

from ._commit import aenqueue_on_commit, enqueue_on_commit
from ._hooks import django_hooks
from ._settings import apply_settings, setup

__all__ = ["aenqueue_on_commit", "apply_settings", "django_hooks", "enqueue_on_commit", "setup"]

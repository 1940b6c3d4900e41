"""naq_sync mirrors naq: every public method has a blocking twin with the same parameters."""

from __future__ import annotations

import inspect

import pytest

import naq
import naq_sync
from naq._events import EventStream
from naq_sync._facade import Facade

PAIRS = [
    (naq.Client, naq_sync.Client),
    (naq.Queue, naq_sync.Queue),
    (naq.Job, naq_sync.Job),
    (EventStream, naq_sync.EventStream),
    (naq.Admin, naq_sync.Admin),
]
TWIN_NAMES = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
}
MODULE_FUNCTIONS = [
    "cancel", "cancel_schedule", "dead_letters", "delete_dead_letter", "drain", "enqueue",
    "enqueue_at", "enqueue_call", "enqueue_in", "enqueue_many", "fetch_job", "fetch_schedule",
    "events", "list_schedules", "pause_schedule", "queue", "requeue_dead_letter", "reschedule",
    "resume_schedule", "schedule",
]  # fmt: skip


def _parameters(fn, *, drop_first: bool = False) -> list[tuple]:
    params = list(inspect.signature(fn).parameters.values())[1 if drop_first else 0 :]
    return [(p.name, p.kind, p.default, p.annotation) for p in params]


def api_differences(async_cls: type, sync_cls: type) -> list[str]:
    """What ``sync_cls`` lacks or does differently from ``async_cls``'s public API."""
    problems = []
    for name, member in inspect.getmembers(async_cls):
        if name.startswith("_") and name not in TWIN_NAMES:
            continue
        twin_name = TWIN_NAMES.get(name, name)
        twin = getattr(sync_cls, twin_name, None)
        if isinstance(member, property):
            if not isinstance(twin, property):
                problems.append(f"{twin_name}: not a property")
        elif callable(member):
            if twin is None:
                problems.append(f"{twin_name}: missing")
            elif inspect.iscoroutinefunction(twin):
                problems.append(f"{twin_name}: is a coroutine function, not blocking")
            elif _parameters(twin) != _parameters(member):
                problems.append(f"{twin_name}: {inspect.signature(twin)} differs")
    return problems


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_method_has_a_blocking_twin(async_cls, sync_cls):
    assert api_differences(async_cls, sync_cls) == []


def test_client_constructor_matches():
    assert _parameters(naq_sync.Client) == _parameters(naq.Client)


@pytest.mark.parametrize("name", MODULE_FUNCTIONS)
def test_module_functions_match_client_methods(name):
    function = getattr(naq_sync, name)
    assert name in naq_sync.__all__
    assert _parameters(function) == _parameters(getattr(naq.Client, name), drop_first=True)


def test_module_functions_cover_the_client():
    methods = [
        name
        for name, member in inspect.getmembers(naq.Client, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert sorted(methods) == sorted(MODULE_FUNCTIONS)


class _Async:
    async def same(self, x: int, *, y: int = 1) -> int:
        return x + y

    async def changed(self, x: int, y: int = 2) -> int:
        return x + y

    async def dropped(self) -> None:
        return None

    @property
    def name(self) -> str:
        return "a"


class _Twin(Facade, wraps=_Async):
    def changed(self, x: int, y: int = 3) -> int:  # written by hand, with another default
        return x + y


del _Twin.dropped


def test_comparison_catches_a_missing_or_different_twin():
    problems = api_differences(_Async, _Twin)
    assert [problem.split(":")[0] for problem in problems] == ["changed", "dropped"]
    assert problems[0].endswith("= 3) -> 'int' differs")
    assert problems[1] == "dropped: missing"

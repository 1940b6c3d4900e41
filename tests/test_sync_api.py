"""naq_sync mirrors naq: every public method has a blocking twin with the same parameters,
its results are naq_sync's twins, and the generated source is current."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import naq
import naq_sync
from naq._client import _dependency_ids
from naq._events import EventStream
from naq_sync._generated import _twin_client, _twin_job

ROOT = Path(__file__).resolve().parent.parent
PAIRS = [
    (naq.Client, naq_sync.Client),
    (naq.Queue, naq_sync.Queue),
    (naq.Job, naq_sync.Job),
    (EventStream, naq_sync.EventStream),
    (naq.Admin, naq_sync.Admin),
]
TWIN_OF = dict(PAIRS)
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


def _public_attributes(cls: type) -> list[str]:
    """The public data attributes a class declares (``Job.id``, ``Queue.name``)."""
    return [name for name in inspect.get_annotations(cls) if not name.startswith("_")]


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
            elif inspect.signature(twin).return_annotation != (
                inspect.signature(member).return_annotation
            ):
                problems.append(f"{twin_name}: returns {inspect.signature(twin).return_annotation}")
    problems += [
        f"{name}: not a property"
        for name in _public_attributes(async_cls)
        if not isinstance(getattr(sync_cls, name, None), property)
    ]
    return problems


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_method_has_a_blocking_twin(async_cls, sync_cls):
    assert api_differences(async_cls, sync_cls) == []


@pytest.mark.parametrize("name", ["Client", "Queue", "Admin"])
def test_constructors_match(name):
    assert _parameters(getattr(naq_sync, name)) == _parameters(getattr(naq, name))


@pytest.mark.parametrize("name", MODULE_FUNCTIONS)
def test_module_functions_match_client_methods(name):
    function = getattr(naq_sync, name)
    assert name in naq_sync.__all__
    method = getattr(naq.Client, name)
    assert _parameters(function) == _parameters(method, drop_first=True)
    assert function.__doc__.startswith(method.__doc__.split("\n")[0])


def test_module_functions_cover_the_client():
    methods = [
        name
        for name, member in inspect.getmembers(naq.Client, inspect.isfunction)
        if not name.startswith("_")
    ]
    assert sorted(methods) == sorted(MODULE_FUNCTIONS)


def _classes_in(hint: object) -> set[object]:
    """Every class a type hint names, however nested (``list[Job[int]]`` -> list, Job, int)."""
    found = {typing.get_origin(hint) or hint}
    for arg in typing.get_args(hint):
        found |= _classes_in(arg)
    return found


def _twinned_methods():
    for async_cls, sync_cls in PAIRS:
        for name, member in inspect.getmembers(sync_cls):
            public = not name.startswith("_") or name in TWIN_NAMES.values()
            if isinstance(member, property) or (callable(member) and public):
                yield pytest.param(async_cls, sync_cls, name, id=f"{sync_cls.__name__}.{name}")
    for name in MODULE_FUNCTIONS:
        yield pytest.param(naq.Client, None, name, id=f"naq_sync.{name}")


@pytest.mark.parametrize(("async_cls", "sync_cls", "name"), list(_twinned_methods()))
def test_results_are_naq_sync_twins(async_cls, sync_cls, name):
    """A method that gives a naq object in naq gives its naq_sync twin, by its annotation
    (never ``naq.Job``), and the annotations resolve at run time (``typing.get_type_hints``)."""
    twin = getattr(sync_cls, name) if sync_cls is not None else getattr(naq_sync, name)
    twin = twin.fget if isinstance(twin, property) else twin
    returned = _classes_in(typing.get_type_hints(twin).get("return"))
    assert not returned & set(TWIN_OF), f"{name} returns naq's {returned & set(TWIN_OF)}"
    async_name = {v: k for k, v in TWIN_NAMES.items()}.get(name, name)
    member = inspect.getattr_static(async_cls, async_name, None)
    if isinstance(member, property) or callable(member):
        member = member.fget if isinstance(member, property) else member
        async_returned = _classes_in(typing.get_type_hints(member).get("return"))
        expected = {TWIN_OF[c] for c in async_returned if c in TWIN_OF}
        if typing.Self in async_returned:
            expected.add(typing.Self)
        assert expected <= returned


def test_declared_attributes_are_typed_properties():
    def returned(prop: property) -> object:
        return typing.get_type_hints(prop.fget)["return"]

    assert returned(naq_sync.Job.id) is str
    assert returned(naq_sync.Job.record) == naq.JobRecord | None
    assert returned(naq_sync.Queue.client) is naq_sync.Client


def test_generated_code_is_current():
    """``python scripts/gen_naq_sync.py`` would write exactly the committed file."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_naq_sync.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_file_says_how_it_is_made():
    header = (ROOT / "naq_sync" / "_generated.py").read_text().splitlines()[0]
    assert header.startswith("# Generated by `python scripts/gen_naq_sync.py`")


# -- naq_sync objects are accepted where naq's are -------------------------------------------


def test_dependencies_take_naq_sync_jobs_and_mixed_lists():
    naq_job = naq.Job(None, "a1")  # no connection: only the id is read
    sync_job = _twin_job(naq.Job(None, "b2"))
    assert _dependency_ids(sync_job) == ("b2",)
    assert _dependency_ids([sync_job, "c3", naq_job]) == ("b2", "c3", "a1")
    assert _dependency_ids((sync_job,)) == ("b2",)
    assert _dependency_ids("c3") == ("c3",)
    with pytest.raises(naq.ConfigurationError, match="depends_on takes jobs or job ids"):
        _dependency_ids([sync_job, 3])


def test_admin_and_queue_take_a_naq_sync_client():
    sync_client = naq_sync.Client("nats://127.0.0.1:1")  # never connected: nothing is called
    assert naq_sync.Admin(sync_client)._async._connection is sync_client._async._connection
    assert naq.Admin(sync_client)._connection is sync_client._async._connection
    queue = naq_sync.Queue(sync_client, "mail")
    assert queue.client._async is sync_client._async
    assert queue.name == "mail"
    assert naq.Queue(sync_client, "mail").client is sync_client._async
    assert _twin_client(sync_client._async)._async is sync_client._async


# -- the comparison itself catches what it should -------------------------------------------


class _Async:
    label: str

    async def same(self, x: int, *, y: int = 1) -> int:
        return x + y

    async def changed(self, x: int, y: int = 2) -> int:
        return x + y

    async def dropped(self) -> None:
        return None

    async def retyped(self) -> int:
        return 1

    @property
    def name(self) -> str:
        return "a"


class _Twin:
    def same(self, x: int, *, y: int = 1) -> int:
        return x + y

    def changed(self, x: int, y: int = 3) -> int:  # another default
        return x + y

    def retyped(self) -> str:  # another result
        return "1"

    @property
    def name(self) -> str:
        return "a"


def test_comparison_catches_a_missing_or_different_twin():
    problems = api_differences(_Async, _Twin)
    assert [problem.split(":")[0] for problem in problems] == [
        "changed",
        "dropped",
        "retyped",
        "label",
    ]
    assert problems[0].endswith("= 3) -> 'int' differs")
    assert problems[1] == "dropped: missing"
    assert problems[2] == "retyped: returns str"
    assert problems[3] == "label: not a property"

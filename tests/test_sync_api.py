"""naq_sync mirrors naq: every public method has a blocking twin with the same parameters,
its results are naq_sync's twins, and the generated source is current."""

from __future__ import annotations

import functools
import inspect
import operator
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

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
    """Names, kinds and defaults; the types are compared resolved (``signature_differences``)."""
    params = list(inspect.signature(fn).parameters.values())[1 if drop_first else 0 :]
    return [(p.name, p.kind, p.default) for p in params]


def twin_type(hint: object) -> object:
    """What naq_sync must say for ``hint``: naq's twinned classes replaced by their twins,
    however nested (``list[naq.Job[R]]`` -> ``list[naq_sync.Job[R]]``); the rest unchanged."""
    if isinstance(hint, type) and hint in TWIN_OF:
        return TWIN_OF[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is None or not args:
        return hint
    mapped = tuple(twin_type(arg) for arg in args)
    twin_origin = TWIN_OF.get(origin, origin)
    if mapped == args and twin_origin is origin:
        return hint
    if origin is typing.Union or origin is types.UnionType:
        return functools.reduce(operator.or_, mapped)
    return twin_origin[mapped]


def _show(hint: object) -> str:
    return hint.__name__ if isinstance(hint, type) else repr(hint)


def signature_differences(name: str, member, twin, *, drop_first: bool = False) -> list[str]:
    """How ``twin`` differs from the blocking form of ``member``: the same parameters (names,
    kinds, defaults, and types resolved at run time, not their spelling: ``Job`` reads the
    same in both modules and is a different class) and the twin of its result type."""
    if _parameters(twin) != _parameters(member, drop_first=drop_first):
        return [f"{name}: {inspect.signature(twin)} differs"]
    # Parameters take the same types (aliases such as ClientRef take naq's and naq_sync's
    # objects); the result is the twin of the async one's.
    wanted = typing.get_type_hints(member)
    if "return" in wanted:
        wanted["return"] = twin_type(wanted["return"])
    if drop_first:
        wanted.pop(next(iter(inspect.signature(member).parameters)), None)
    got = typing.get_type_hints(twin)
    problems = [
        f"{name}: parameter {key} is {_show(got.get(key))}, not {_show(hint)}"
        for key, hint in wanted.items()
        if key != "return" and got.get(key) != hint
    ]
    if "return" in wanted and got.get("return") != wanted["return"]:  # __init__ may omit it
        problems.append(
            f"{name}: returns {_show(got.get('return'))}, not {_show(wanted.get('return'))}"
        )
    return problems


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
            elif member.fget is not None and twin.fget is not None:
                problems += signature_differences(twin_name, member.fget, twin.fget)
        elif callable(member):
            if twin is None:
                problems.append(f"{twin_name}: missing")
            elif inspect.iscoroutinefunction(twin):
                problems.append(f"{twin_name}: is a coroutine function, not blocking")
            else:
                problems += signature_differences(twin_name, member, twin)
    hints = typing.get_type_hints(async_cls)
    for name in _public_attributes(async_cls):
        twin = getattr(sync_cls, name, None)
        if not isinstance(twin, property) or twin.fget is None:
            problems.append(f"{name}: not a property")
        elif typing.get_type_hints(twin.fget).get("return") != twin_type(hints[name]):
            problems.append(f"{name}: returns {_show(typing.get_type_hints(twin.fget)['return'])}")
    return problems


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda c: c.__name__)
def test_every_public_method_has_a_blocking_twin(async_cls, sync_cls):
    assert api_differences(async_cls, sync_cls) == []


@pytest.mark.parametrize("name", ["Client", "Queue", "Admin"])
def test_constructors_match(name):
    async_init, twin_init = getattr(naq, name).__init__, getattr(naq_sync, name).__init__
    assert signature_differences(name, async_init, twin_init) == []


@pytest.mark.parametrize("name", MODULE_FUNCTIONS)
def test_module_functions_match_client_methods(name):
    function = getattr(naq_sync, name)
    assert name in naq_sync.__all__
    method = getattr(naq.Client, name)
    assert signature_differences(name, method, function, drop_first=True) == []
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
def test_results_are_naq_sync_twins(async_cls, sync_cls, name: str):
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
    no_connection: Any = None  # only the id is read
    naq_job = naq.Job(no_connection, "a1")
    sync_job = _twin_job(naq.Job(no_connection, "b2"))
    assert _dependency_ids(sync_job) == ("b2",)
    assert _dependency_ids([sync_job, "c3", naq_job]) == ("b2", "c3", "a1")
    assert _dependency_ids((sync_job,)) == ("b2",)
    assert _dependency_ids("c3") == ("c3",)
    with pytest.raises(naq.ConfigurationError, match="depends_on takes jobs or job ids"):
        _dependency_ids([sync_job, 3])  # pyright: ignore[reportArgumentType]


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
    job_id: str

    async def same(self, x: int, *, y: int = 1) -> int:
        return x + y

    async def changed(self, x: int, y: int = 2) -> int:
        return x + y

    async def dropped(self) -> None:
        return None

    async def retyped(self) -> int:
        return 1

    async def job(self) -> naq.Job[int]:
        raise NotImplementedError

    async def jobs(self, limit: int | None = None) -> list[naq.Job[int]] | None:
        raise NotImplementedError

    async def spelled(self, x: Seconds) -> None:
        return None

    @property
    def name(self) -> str:
        return "a"


Seconds = float


class _Twin:
    def same(self, x: int, *, y: int = 1) -> int:
        return x + y

    def changed(self, x: int, y: int = 3) -> int:  # another default
        return x + y

    def retyped(self) -> str:  # another result
        return "1"

    def job(self) -> naq.Job[int]:  # spelled as the async one's, so a comparison of the
        # annotations' text passed it; the twin must return naq_sync's Job
        raise NotImplementedError

    def jobs(self, limit: int | None = None) -> list[naq_sync.Job[int]] | None:  # right
        raise NotImplementedError

    def spelled(self, x: _TwinSeconds) -> None:  # an alias of another type
        return None

    @property
    def name(self) -> str:
        return "a"

    @property
    def job_id(self) -> int:  # declared str in the async class
        return 1


_TwinSeconds = int


def test_comparison_catches_a_missing_or_different_twin():
    problems = api_differences(_Async, _Twin)
    assert problems == [
        "changed: (self, x: 'int', y: 'int' = 3) -> 'int' differs",
        "dropped: missing",
        "job: returns naq._job.Job[int], not naq_sync._generated.Job[int]",
        "retyped: returns str, not int",
        "spelled: parameter x is int, not float",
        "label: not a property",
        "job_id: returns int",
    ]


def test_twin_type_maps_nested_results():
    assert twin_type(naq.Job) is naq_sync.Job
    assert twin_type(list[naq.Job[int]] | None) == list[naq_sync.Job[int]] | None
    assert twin_type(dict[str, naq.Queue]) == dict[str, naq_sync.Queue]
    assert twin_type(typing.Self) is typing.Self
    assert twin_type(int | None) == int | None

"""naq's types as a user's type checker sees them, and the typed forms at run time.

pyright (pinned in the ``dev`` extra) checks a small user file that imports naq and naq_sync
as an installed package would be imported, and tests/typing_api.py; the tests read its JSON
report. They are skipped only when pyright is not installed.
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import naq
from tests import jobs
from tests.conftest import running_worker

ROOT = Path(__file__).resolve().parent.parent
PYRIGHT = shutil.which("pyright")

USER_FILE = """
from typing import reveal_type

import naq
import naq_sync


def add(a: int, b: int) -> int:
    return a + b


reveal_type(naq_sync.enqueue(add, 1, 2).result())  # reveal: sync result
reveal_type(naq_sync.enqueue("operator:add", 1, 2).result())  # reveal: by name


async def main(client: naq.Client) -> None:
    job = await client.enqueue_call(naq.call(add, 1, 2), queue="math")
    reveal_type(await job.result())  # reveal: async result


naq_sync.enqueue_call(naq_sync.call(add, 1, 2))  # fine
naq_sync.enqueue_call(naq_sync.call(add, 1, "2"))  # error: wrong argument type
naq_sync.enqueue_call(naq_sync.call(add, 1))  # error: missing argument
naq.call(add, 1, 2, c=3)  # error: unknown keyword
"""


@pytest.fixture(scope="module")
def pyright_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """pyright's diagnostics for the user file (and tests/typing_api.py), by file name."""
    if PYRIGHT is None:
        pytest.skip("pyright is not installed (pip install -e '.[dev]' installs it)")
    project = tmp_path_factory.mktemp("user_project")
    # The repository stands for the installed packages (the editable install's import hook is
    # invisible to pyright); the file itself is outside naq's project, as a user's is.
    config = {"extraPaths": [str(ROOT)], "pythonVersion": "3.11", "typeCheckingMode": "standard"}
    (project / "pyrightconfig.json").write_text(json.dumps(config))
    (project / "user.py").write_text(textwrap.dedent(USER_FILE))
    typing_api = ROOT / "tests" / "typing_api.py"
    done = subprocess.run(
        [PYRIGHT, "--outputjson", "--pythonpath", sys.executable, "user.py", str(typing_api)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    by_file: dict[str, list[dict]] = {"user.py": [], "typing_api.py": []}
    for diagnostic in report["generalDiagnostics"]:
        by_file.setdefault(Path(diagnostic["file"]).name, []).append(diagnostic)
    return by_file


def _user_line(marker: str) -> int:
    """The 0-based line of the user file whose comment is ``marker``."""
    [line] = [
        n for n, text in enumerate(textwrap.dedent(USER_FILE).splitlines()) if f"# {marker}" in text
    ]
    return line


def _at(diagnostics: list[dict], line: int, severity: str) -> list[str]:
    return [
        d["message"]
        for d in diagnostics
        if d["range"]["start"]["line"] == line and d["severity"] == severity
    ]


def test_blocking_result_is_typed_as_the_function_returns(pyright_report):
    """``naq_sync.enqueue(add, 1, 2).result()`` is an int to the type checker."""
    [message] = _at(pyright_report["user.py"], _user_line("reveal: sync result"), "information")
    assert message.endswith('is "int"')


def test_async_typed_form_result(pyright_report):
    [message] = _at(pyright_report["user.py"], _user_line("reveal: async result"), "information")
    assert message.endswith('is "int"')


def test_a_job_by_name_is_unknown(pyright_report):
    [message] = _at(pyright_report["user.py"], _user_line("reveal: by name"), "information")
    assert message.endswith('is "Any"')


def test_typed_form_reports_a_wrong_argument(pyright_report):
    diagnostics = pyright_report["user.py"]
    [wrong_type] = _at(diagnostics, _user_line("error: wrong argument type"), "error")
    assert '"Literal[\'2\']" cannot be assigned to parameter "b" of type "int"' in wrong_type
    [missing] = _at(diagnostics, _user_line("error: missing argument"), "error")
    assert '"b"' in missing
    [unknown] = _at(diagnostics, _user_line("error: unknown keyword"), "error")
    assert '"c"' in unknown
    assert _at(diagnostics, _user_line("fine"), "error") == []
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert len(errors) == 3, errors


def test_typing_api_file_checks_clean(pyright_report):
    """Every ``assert_type`` in tests/typing_api.py holds, on both APIs."""
    assert [d["message"] for d in pyright_report["typing_api.py"]] == []


# -- the typed forms at run time ------------------------------------------------------------


@pytest.mark.anyio
async def test_enqueue_call_with_a_typed_call(client, nats_url, queue_name):
    async with running_worker(nats_url, [queue_name]):
        job = await client.enqueue_call(naq.call(jobs.add, 2, 3), queue=queue_name)
        assert await job.result(timeout=10) == 5
        echoed = await client.queue(queue_name).enqueue_call(
            naq.call(jobs.echo, 1, queue="a keyword of the job's own")
        )
        assert await echoed.result(timeout=10) == {
            "args": [1],
            "kwargs": {"queue": "a keyword of the job's own"},
        }
        many = await client.enqueue_many([naq.call(jobs.add, 1, 1)], queue=queue_name)
        assert [await j.result(timeout=10) for j in many] == [2]


@pytest.mark.anyio
async def test_enqueue_call_takes_a_calls_job_id(client, queue_name):
    call = naq.Call(jobs.add, (1, 2), job_id=f"{queue_name}-a")
    job = await client.enqueue_call(call, queue=queue_name)
    assert job.id == f"{queue_name}-a"
    other = await client.enqueue_call(call, queue=queue_name, job_id=f"{queue_name}-b")
    assert other.id == f"{queue_name}-b"  # the option wins


@pytest.mark.anyio
async def test_enqueue_call_refuses_arguments_beside_a_call(client):
    with pytest.raises(naq.ConfigurationError, match="not beside it"):
        await client.enqueue_call(naq.call(jobs.add, 1, 2), (3,))


def test_call_builds_the_same_call():
    assert naq.call(jobs.add, 1, b=2) == naq.Call(jobs.add, (1,), {"b": 2})


# -- the job options, defined once ------------------------------------------------------------

OPTION_METHODS = [
    naq.Client.enqueue,
    naq.Client.enqueue_call,
    naq.Client.enqueue_many,
    naq.Client.enqueue_at,
    naq.Client.schedule,
]


@pytest.mark.parametrize("method", OPTION_METHODS, ids=lambda m: m.__name__)
def test_each_enqueue_method_spells_the_options_as_defined_once(method):
    """The public methods spell their options out (for editors and ``help()``); each one
    has the name, keyword-only kind, annotation and default of the one definition."""
    from naq._client import _Options

    defined = inspect.signature(_Options.build).parameters
    declared = inspect.signature(method).parameters
    taken = [name for name in declared if name in defined]
    assert {"queue", "job_timeout", "retry", "result_ttl", "failure_ttl", "meta"} <= set(taken)
    for name in taken:
        assert declared[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert declared[name].annotation == defined[name].annotation, name
        assert declared[name].default == defined[name].default, name


def test_the_options_defaults_are_unset():
    from naq._client import _Options

    assert _Options.build() == _Options(
        queue="default",
        job_timeout=None,
        retry=None,
        result_ttl=None,
        failure_ttl=None,
        ttl=None,
        depends_on=(),
        allow_dependency_failures=False,
        meta={},
        unique=None,
        unique_key=None,
        max_running=None,
        rate_limit=None,
        limit_key=None,
        priority=0,
    )


# -- names renamed, old names kept ------------------------------------------------------------


def test_job_context_canceled_and_its_old_spelling():
    from naq._context import JobContext
    from naq._record import JobRecord, JobStatus

    record = JobRecord("a", "q", "m:f", "json", {}, JobStatus.STARTED, datetime.now(UTC))
    context = JobContext(record, lambda r: None, {}, lambda f: None)
    assert (context.canceled, context.cancelled) == (False, False)
    context._cancel()
    assert (context.canceled, context.cancelled) == (True, True)

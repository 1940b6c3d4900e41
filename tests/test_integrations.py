"""The CLI side of the integrations (``naq._integrations``), called directly; Django and Flask
set up in subprocesses, so this process stays free of them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import naq
from naq._integrations import load_hooks, prepare_worker, setup_django
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples"


def _python(code: str, cwd: object, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NAQ_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_load_hooks_by_import_path():
    [hooks] = load_hooks(["tests.jobs:make_hooks"])
    assert isinstance(hooks, naq.WorkerHooks) and len(hooks.before_job) == 1
    with pytest.raises(naq.ConfigurationError, match=r"is set, not naq\.WorkerHooks"):
        load_hooks(["tests.jobs:set_result"])
    with pytest.raises(naq.ConfigurationError, match=r"tests\.jobs:add raised TypeError"):
        load_hooks(["tests.jobs:add"])
    with pytest.raises(naq.ConfigurationError, match="cannot import hooks"):
        load_hooks(["tests.jobs:no_such_hooks"])
    with pytest.raises(naq.ConfigurationError, match=r"pkg\.module:name"):
        load_hooks(["tests.jobs"])


def test_no_django_without_its_settings(monkeypatch):
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    assert setup_django(None) is False
    assert setup_django(False) is False
    with pytest.raises(naq.ConfigurationError, match="DJANGO_SETTINGS_MODULE"):
        setup_django(True)
    assert prepare_worker() is None
    assert "django" not in sys.modules or "naq.contrib.django" not in sys.modules


def test_django_setup_settings_and_hooks():
    code = (
        "import os; from naq._integrations import prepare_worker; "
        "hooks = prepare_worker(path='.'); "
        "print(os.environ['NAQ_NATS_URL'], os.environ['NAQ_QUEUE'], len(hooks.before_job))"
    )
    django = EXAMPLES / "django_app"
    settings = {"DJANGO_SETTINGS_MODULE": "naqdemo.settings"}
    # settings.NAQ fills what the environment lacks; a NAQ_* variable wins
    assert _python(code, django, **settings) == "nats://127.0.0.1:4222 default 2"
    assert _python(code, django, NAQ_QUEUE="q1", **settings) == "nats://127.0.0.1:4222 q1 2"
    bad = _python(
        "from naq._integrations import setup_django\n"
        "try: setup_django(True, 'no_such_settings')\nexcept Exception as e: print(e)",
        django,
    )
    assert bad.startswith("Django setup failed: ModuleNotFoundError")


def test_flask_hooks_push_the_app_context():
    code = (
        "import os; from naq._integrations import prepare_worker; "
        "hooks = prepare_worker(flask='app:app', path='.'); "
        "[push], [pop] = hooks.before_job, hooks.after_job; "
        "from flask import current_app, has_app_context; "
        "push(None); print(current_app.config['GREETING'], end=' '); pop(None); "
        "print(has_app_context(), os.environ['NAQ_QUEUE'])"
    )
    assert _python(code, EXAMPLES / "flask_app") == "Hello False default"
    bad = _python(
        "from naq._integrations import flask_hooks\n"
        "try: flask_hooks('app:nope')\nexcept Exception as e: print(type(e).__name__)",
        EXAMPLES / "flask_app",
    )
    assert bad == "ConfigurationError"


@pytest.mark.anyio
async def test_cli_worker_runs_hooks_given_by_import_path(client, nats_url, queue_name, tmp_path):
    """``naq worker --hooks pkg.mod:name``, end to end in a real worker process."""
    from tests import jobs

    marker = tmp_path / "hooked"
    job = await client.enqueue(jobs.add, 1, 2, queue=queue_name)
    done = subprocess.run(
        [sys.executable, "-m", "naq", "worker", queue_name, "--url", nats_url, "--burst",
         "--hooks", "tests.jobs:marker_hooks"],
        cwd=ROOT,
        env={**os.environ, "NAQ_TEST_HOOK_MARKER": str(marker)},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert await job.result(timeout=10) == 3
    assert marker.read_text().split() == [job.id]

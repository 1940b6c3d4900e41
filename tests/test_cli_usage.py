"""The CLI's help, version and usage errors, in-process and without a server.

Help must read well at 80 columns and in a pipe: option names whole, values shown by a
name or their choices (never a Python type), usage lines as conventions write them. Bad
usage (a value not among the choices, a missing argument) exits 2 and says what is valid.
"""

from __future__ import annotations

import re

import pytest
import typer

from naq import __version__
from naq.cli import app
from tests.clitools import invoke

NO_SERVER = ["--url", "nats://127.0.0.1:1"]  # nothing listens there: usage fails before


def _commands() -> list[list[str]]:
    """Every command path: ``[["worker"], ..., ["dead-letters", "list"], ...]``."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = [[]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    return paths


def _help(*path: str):
    result = invoke(*path, "--help", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "naq")
def test_help_fits_80_columns_and_names_values_plainly(path):
    text = _help(*path)
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text  # nothing cut to fit
    assert not re.search(r"<[a-z_\[\]| ]+>", text), text  # no <str>, <bool>, <list[str]>
    assert "x>=" not in text
    assert "{" not in text.splitlines()[0]  # usage: FUNC, not {func}
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("-"):
                assert re.search(rf"(^|[\s,]){re.escape(opt)}(\s|,|$)", text, re.M), opt


def test_help_shows_choices_and_usage_as_written():
    worker = _help("worker")
    assert "--serializer [pickle|json]" in worker
    assert "--backend [asyncio|trio]" in worker
    assert "--log-level [DEBUG|INFO|WARNING|ERROR]" in worker
    assert "--heartbeat-interval SECONDS" in worker
    assert "Usage: naq worker [OPTIONS] [QUEUE]..." in worker
    assert "Usage: naq enqueue [OPTIONS] FUNC [ARGS]..." in _help("enqueue")
    assert "--status [active|paused|completed|canceled]" in _help("list-scheduled")
    assert "Usage: naq job-control [OPTIONS] ID ACTION" in _help("job-control")


def test_dead_letters_is_listed_and_failed_its_hidden_old_name():
    commands = [line.split()[0] for line in _help().splitlines() if line.startswith("  ")]
    assert "dead-letters" in commands
    assert "failed" not in commands
    assert "Usage: naq failed [OPTIONS] COMMAND [ARGS]..." in _help("failed")  # still works


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"naq {__version__}\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["job-control", "some-id", "frobnicate"], "'frobnicate' is not one of 'cancel', 'pause'"),
        (["dead-letters", "requeue"], "name job ids, or pass --all"),
        (["dead-letters", "delete", "a", "--all"], "name job ids, or pass --all"),
        (["worker", "--serializer", "yaml"], "'yaml' is not one of 'pickle', 'json'"),
        (["enqueue", "tests.jobs:add", "--serializer", "yaml"], "'yaml' is not one of"),
        (["list-scheduled", "--status", "bogus"], "'bogus' is not one of 'active', 'paused'"),
        (["worker", "bad.queue"], "invalid queue name 'bad.queue'"),
        (["worker", "--concurrency", "0"], "--concurrency"),
        (["info", "--log-level", "chatty"], "'chatty' is not one of"),
        (["job-control", "x", "pause", "--cron", "* * * * *"], "go with 'reschedule' only"),
    ],
)
def test_bad_usage_exits_2_and_says_what_is_valid(args, says):
    result = invoke(*args, *NO_SERVER)
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "Traceback" not in result.output


def test_log_level_takes_any_case():
    result = invoke("list-workers", "--log-level", "warning", *NO_SERVER)
    assert result.exit_code == 1  # parsed; then no server, as expected
    assert "cannot connect to NATS" in result.stderr


def test_missing_trio_names_the_extra(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    result = invoke("worker", "--backend", "trio", *NO_SERVER)
    assert result.exit_code == 1
    assert result.stderr.strip() == "naq: the trio backend needs trio: pip install 'naq[trio]'"


@pytest.mark.parametrize("width", [60, 140])
def test_a_listing_in_a_terminal_fits_and_never_cuts_an_id(monkeypatch, capsys, width):
    """140 columns: a table whose reason wraps; 60: too narrow for one, so field/value blocks."""
    from rich.console import Console

    from naq.cli import _output

    monkeypatch.setattr(_output, "console", Console(force_terminal=True, width=width))
    listing = _output.Listing(title="2 dead letter(s)")
    listing.id_column("job id")
    for column in ("queue", "function", "attempts", "reason", "time"):
        listing.text_column(column)
    ids = ["f62743c6dee0123456789abcdef0", "0123456789abcdef0123456789ab"]
    reason = "failed after 1 attempt(s): ValueError: the input file was not what we expected"
    for job_id in ids:
        listing.add_row(job_id, "mail-high_1", "tasks:send", "1", reason, "2026-11-30T08:23:41")
    listing.print()
    out = capsys.readouterr().out
    assert "…" not in out
    assert all(len(line) <= width for line in out.splitlines()), out
    for job_id in ids:
        assert job_id in out  # whole, on one line: it can be copied
    assert "2026-11-30T08:23:41" in out
    if width == 60:
        assert "job id    f62743c6dee0123456789abcdef0" in out

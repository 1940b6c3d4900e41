"""Every ``.py`` file that docs/architecture.md and README.md name in backticks exists.

A name with a ``/`` is a path from the repository root or from ``naq/`` (``naq/_worker.py``,
``_transport/_native.py``), or the end of exactly one file's path in the folders below; a bare
name (``_jetstream.py``) is any file of that name there. Fenced code blocks are skipped (the
layout block is tests/test_layout.py's). A module that is renamed or removed must take its
mentions with it; past names are told in words, not as file names.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/architecture.md", "README.md")
FOLDERS = ("naq", "naq_sync", "tests", "benchmarks", "scripts", "examples")
_FENCED = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`]+)`")  # a code span may run over a line break
_FILE = re.compile(r"^[\w./*-]*\w\.py$")


def file_references(text: str) -> list[str]:
    """The ``.py`` file names in the text's code spans (``tests/x.py::test_y`` gives
    ``tests/x.py``; a command's words are read one by one)."""
    found = []
    for span in _SPAN.findall(_FENCED.sub("", text)):
        for word in span.split():
            name = word.split("::")[0]
            if _FILE.match(name):
                found.append(name)
    return found


def _files() -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for folder in FOLDERS
        for path in (ROOT / folder).rglob("*.py")
    )


def exists(name: str, files: list[str]) -> bool:
    """Whether ``name`` names a file of ``files`` (paths from the root), as the module says."""
    if "*" in name:  # tests/typing_*.py
        return any(ROOT.glob(name)) or any((ROOT / "naq").glob(name))
    if "/" not in name:
        return any(path.rsplit("/", 1)[-1] == name for path in files)
    if (ROOT / name).is_file() or (ROOT / "naq" / name).is_file():
        return True
    return sum(path.endswith(f"/{name}") for path in files) == 1


def test_file_references_reads_code_spans() -> None:
    text = "\n".join(
        [
            "See `naq/_worker.py`, `_jetstream.py` and `tests/test_x.py::test_y`; run",
            "`python scripts/gen.py --check`. Not files: `.py`, `.pyc`, `x.py()`, `a.pyi`.",
            "A span over a line break, `current_job()",
            ".is_async`, keeps the pairs: `naq/_job.py`. A fenced block:",
            "```text",
            "`_old.py`",
            "```",
        ]
    )
    assert file_references(text) == [
        "naq/_worker.py",
        "_jetstream.py",
        "tests/test_x.py",
        "scripts/gen.py",
        "naq/_job.py",
    ]


def test_exists_resolves_as_documented() -> None:
    files = _files()
    assert exists("naq/_worker.py", files)  # from the root
    assert exists("_transport/_native.py", files)  # from naq/
    assert exists("django/_hooks.py", files)  # the end of one path
    assert exists("_hooks.py", files)  # a bare name, in two folders
    assert exists("tests/typing_*.py", files)
    assert not exists("_no_such_module.py", files)
    assert not exists("_transport/_no_such_module.py", files)


@pytest.mark.parametrize("doc", DOCS)
def test_every_named_file_exists(doc: str) -> None:
    files = _files()
    names = file_references((ROOT / doc).read_text())
    assert names, f"{doc} names no .py file: is the parser broken?"
    missing = sorted({name for name in names if not exists(name, files)})
    assert missing == [], f"{doc} names files that do not exist: {missing}"

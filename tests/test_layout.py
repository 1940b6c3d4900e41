"""docs/architecture.md's layout section lists every module of naq/ and naq_sync/, and only those.

The section is a fenced block between ``<!-- layout -->`` and ``<!-- /layout -->``, one
``path: what it does`` line per module.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "architecture.md"
_SECTION = re.compile(r"<!-- layout -->\s*```[a-z]*\n(.*?)```\s*<!-- /layout -->", re.DOTALL)
_LINE = re.compile(r"^(naq(?:_sync)?/\S+\.py): \S")


def listed_modules(text: str) -> list[str]:
    """The module paths the layout section lists; ValueError when there is no section or a
    line is not ``path: description``."""
    found = _SECTION.search(text)
    if found is None:
        raise ValueError("no <!-- layout --> ... <!-- /layout --> section")
    paths = []
    for line in found.group(1).splitlines():
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"not 'naq/<module>.py: what it does': {line!r}")
        paths.append(match.group(1))
    return paths


def test_listed_modules_parses_the_section() -> None:
    lines = ["x", "<!-- layout -->", "```text", "naq/a.py: does a", "naq/b/c.py: does c", "```"]
    text = "\n".join([*lines, "<!-- /layout -->", ""])
    assert listed_modules(text) == ["naq/a.py", "naq/b/c.py"]
    with pytest.raises(ValueError, match="not 'naq"):
        listed_modules("<!-- layout -->\n```\nnaq/a.py\n```\n<!-- /layout -->")


def test_layout_section_lists_every_module() -> None:
    listed = listed_modules(ARCHITECTURE.read_text())
    present = {
        p.relative_to(ROOT).as_posix()
        for package in ("naq", "naq_sync")
        for p in (ROOT / package).rglob("*.py")
    }
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(present - set(listed)) == [], "modules missing from the layout section"
    assert sorted(set(listed) - present) == [], "listed modules that do not exist"

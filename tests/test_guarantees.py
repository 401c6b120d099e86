"""The Guarantees page (``docs/guarantees.md``) names, in every sentence, a test that exists and exercises it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "guarantees.md"
#: ``tests/x.py::test_y``, or ``::test_y`` for a test of the file named last before it on the page.
_REFERENCE = re.compile(r"(tests/[\w/]+\.py)?::(test_\w+)")
#: Sections whose bullets state limits, not guarantees (nothing to test).
_UNTESTED_SECTIONS = ("**Not guaranteed**",)


def _bullets(text: str) -> list[str]:
    """The bullet items of the guarantee sections, each joined into one line."""
    bullets: list[str] = []
    skipping = False
    for line in text.splitlines():
        if line.startswith("**"):
            skipping = line.startswith(_UNTESTED_SECTIONS)
        elif line.startswith("- ") and not skipping:
            bullets.append(line[2:].strip())
        elif line.startswith("  ") and bullets and not skipping:
            bullets[-1] += " " + line.strip()
    return bullets


def _sentences(bullet: str) -> list[str]:
    """Split at a full stop outside parentheses and code that ends the text or is followed by a space and a capital
    (or code, or bold): ``e.g. (x)`` does not end a sentence."""
    sentences, depth, code, start = [], 0, False, 0
    for index, char in enumerate(bullet):
        if char == "`":
            code = not code
        elif not code and char in "([":
            depth += 1
        elif not code and char in ")]":
            depth -= 1
        elif char == "." and not code and depth == 0 and re.match(r"(\s+[A-Z`*]|\s*$)", bullet[index + 1:]):
            sentences.append(bullet[start:index + 1].strip())
            start = index + 1
    if bullet[start:].strip():
        sentences.append(bullet[start:].strip())
    return sentences


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_guarantee_names_an_existing_test() -> None:
    """Issue 25: every sentence of the Guarantees names the test that exercises it, and that test exists."""
    text = PAGE.read_text(encoding="utf-8")
    sentences = [s for bullet in _bullets(text) for s in _sentences(bullet)]
    assert len(sentences) > 50
    untested = [s for s in sentences if not _REFERENCE.search(s)]
    assert not untested, "sentences naming no test:\n" + "\n".join(untested)
    known: dict[str, set[str]] = {}
    missing, file = [], ""
    for named, name in _REFERENCE.findall(text):
        file = named or file
        path = ROOT / file
        if file not in known:
            known[file] = _test_names(path) if path.is_file() else set()
        if name not in known[file]:
            missing.append(f"{file}::{name}")
    assert not missing, "named tests that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize(("bullet", "count"), [
    ("One (`a.b`). Two, e.g. (x. y) (`t`).", 2), ("Ends without a stop", 1), ("A `x. Y` b.", 1),
])
def test_sentences_split_only_at_top_level_stops(bullet: str, count: int) -> None:
    assert len(_sentences(bullet)) == count


def test_an_interrupted_command_exits_130(monkeypatch, capsys) -> None:
    """Guarantees, on failure: an interrupted command exits 130 with one line, no traceback."""
    from pe_iqa.cli import main
    from pe_iqa.cli import score as score_command

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(score_command, "run", interrupted)
    assert main(["score", "--sample", "psnr", "--no-progress"]) == 130
    assert "Traceback" not in capsys.readouterr().err

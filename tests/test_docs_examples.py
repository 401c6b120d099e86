"""Every ``python`` code block of the README and of the documentation pages runs as printed (issue 27).

The blocks of one page run in order in one namespace, as a reader pasting them into one session would run them,
in a temporary working folder. A block that cannot run here says so, with the reason, in an HTML comment on the
line before it (invisible on GitHub and on the site)::

    <!-- not-run: needs a CUDA device and the user's pairs.csv -->

Pages whose examples print something worth checking get a check of their own below (the training example).
"""

from __future__ import annotations

import re
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->\s*$")
WEIGHTS = ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth")  # what the examples' presets load


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block: where it starts, its code, and why it is not run (None: it is run)."""

    line: int
    code: str
    not_run: str | None


def documentation_pages() -> list[Path]:
    """The README and every Markdown page of the site (not the build output)."""
    pages = sorted(p for p in (REPO / "docs").rglob("*.md") if "_build" not in p.relative_to(REPO / "docs").parts)
    return [REPO / "README.md", *pages]


def python_blocks(text: str) -> list[Block]:
    """The fenced ``python`` blocks of a Markdown text (indented ones too, as in list items), in order."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```python\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, start = fence.group(1), i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(previous)
        code = textwrap.dedent("\n".join(line[len(indent):] if line.startswith(indent) else line
                                         for line in lines[start + 1:end]))
        blocks.append(Block(start + 1, code, marker.group("reason") if marker else None))
        i = end + 1
    return blocks


PAGES = [page for page in documentation_pages() if python_blocks(page.read_text(encoding="utf-8"))]


def run_page(page: Path) -> dict:
    """Run a page's runnable blocks in order in one namespace; the namespace afterwards."""
    namespace: dict = {"__name__": "__docs_example__"}
    for block in python_blocks(page.read_text(encoding="utf-8")):
        if block.not_run is None:
            # blank lines first, so that a traceback names the line of the page
            exec(compile("\n" * block.line + block.code, str(page), "exec"), namespace)
    return namespace


def check_training_example(namespace: dict, printed: str) -> None:
    """The losses guide's training loop printed two epochs, kept the loss frozen and trained the model."""
    lines = [line for line in printed.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2, printed
    values = [[float(v) for v in re.findall(r"\d+\.\d+", line)] for line in lines]
    assert all(len(v) == 2 and v[0] > 0 and 0 < v[1] < 1 for v in values), lines
    assert not any(p.requires_grad for p in namespace["perceptual"].parameters())
    assert all(p.grad is not None for p in namespace["model"].parameters())


CHECKS = {"docs/guide/losses.md": check_training_example}


def test_the_block_reader_finds_blocks_markers_and_indented_blocks() -> None:
    text = ("x\n```python\na = 1\n```\n<!-- not-run: needs a GPU -->\n```python\nb = 2\n```\n"
            "* item\n\n  ```python\n  c = 3\n  ```\n```bash\nls\n```\n")
    assert python_blocks(text) == [Block(2, "a = 1", None), Block(6, "b = 2", "needs a GPU"), Block(11, "c = 3", None)]


def test_every_block_that_is_not_run_says_why() -> None:
    assert {page.relative_to(REPO).as_posix() for page in PAGES} >= {"README.md", "docs/guide/losses.md"}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for line in text.splitlines():
            if "not-run" in line:  # a marker that does not parse would silently run, or silently not
                assert NOT_RUN.match(line), f"{page}: malformed marker {line!r}"
        for block in python_blocks(text):
            compile(block.code, f"{page}:{block.line}", "exec")  # even a block that is not run is Python


@pytest.mark.slow  # builds the presets' networks: 5-30 s a page on 2 shared cores
@pytest.mark.parametrize("page", PAGES, ids=[page.relative_to(REPO).as_posix() for page in PAGES])
def test_the_python_examples_run_as_printed(page: Path, torch_home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("torchmetrics")
    missing = [name for name in WEIGHTS if not (torch_home / "hub" / "checkpoints" / name).is_file()]
    if missing:
        pytest.skip(f"pretrained weights {missing} not in {torch_home}")
    monkeypatch.chdir(tmp_path)  # an example that writes a file writes it here
    torch.manual_seed(0)
    namespace = run_page(page)
    check = CHECKS.get(page.relative_to(REPO).as_posix())
    if check is not None:
        check(namespace, capsys.readouterr().out)


@pytest.mark.slow  # builds TorchMetrics' LPIPS: about 3 s
def test_the_lpips_note_holds_torchmetrics_lpips_takes_unit_range_input_silently_and_scores_it_differently(
        torch_home: Path) -> None:
    """The TorchMetrics guide says: without ``normalize=True`` LPIPS accepts [0, 1] input with no warning and
    returns another value than with it (0.151 vs 0.187 on the sample's jpeg_2)."""
    pytest.importorskip("torchmetrics")
    if not (torch_home / "hub" / "checkpoints" / WEIGHTS[0]).is_file():
        pytest.skip(f"pretrained AlexNet weights not in {torch_home}")
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    from pe_iqa.image_io import read_image

    sample = REPO / "src" / "pe_iqa" / "sample"
    dist, ref = (read_image(sample / part / "jpeg_2.png").reshape(1, 3, 256, 256)
                 for part in ("distorted", "reference"))
    assert 0 <= float(dist.min()) and float(dist.max()) <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # silently: no warning
        unnormalised = LearnedPerceptualImagePatchSimilarity(net_type="alex")(dist, ref).item()
    normalised = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)(dist, ref).item()
    assert (round(unnormalised, 3), round(normalised, 3)) == (0.151, 0.187)
    note = (REPO / "docs" / "guide" / "torchmetrics.md").read_text(encoding="utf-8")
    assert "0.151 instead of 0.187 for `jpeg_2`" in " ".join(note.split())


def test_every_relative_link_of_the_readme_and_the_pages_leads_to_a_file() -> None:
    """The README's pointers into docs/ (and the pages' links and images) name files that exist."""
    broken = []
    for page in documentation_pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://|^#|^mailto:", target):
                continue
            if not (page.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken, broken

"""One reader of the environment and one exit table (issue 25, items 14 and 15).

Every numeric environment variable is validated in one place (finite, in range) and a bad value is a usage error
(exit status 2) at every entry point; the same misuse gets the same status from every subcommand; no other code
reads a numeric environment variable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch
from tests.fixtures.sample_pairs import copy_sample_pair

from pe_iqa.cli import main
from pe_iqa.cli.errors import EXIT_TABLE, exit_status
from pe_iqa.env_options import NUMERIC_VARIABLES, EnvironmentValueError, check_environment, env_number

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return copy_sample_pair("blur_1.png", tmp_path_factory.mktemp("one"))


ENTRY_POINTS = {
    "score": ["score", "--sample", "--no-progress"],
    "maps": ["score", "--sample", "--maps", "{tmp}/maps", "--no-progress"],
    "explain": ["explain", "--sample", "blur_2"],
    "rank": ["rank", "alexnet", "--weights", "random", "--layers", "relu1", "--no-cache"],
    "plot": ["plot", "alexnet", "--weights", "random", "--layers", "relu1", "--out-dir", "{tmp}/figures"],
    "layers": ["layers", "alexnet"],
    "pyiqa": ["pyiqa", "pe_alex", "-t", "{tmp}/none.png"],
}
BAD_VALUES = [("PE_IQA_MEMORY_BUDGET_GB", "-3"), ("PE_IQA_MEMORY_BUDGET_GB", "1e300"),
              ("PE_IQA_MEMORY_BUDGET_GB", "inf"), ("PE_IQA_DIST_TIMEOUT_S", "1e300"),
              ("PE_IQA_MAX_IMAGE_PIXELS", "1e3"), ("RANK", "-1")]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_bad_environment_value_is_exit_2_at_every_entry_point(entry, variable, value, monkeypatch, tmp_path,
                                                                 capsys) -> None:
    """Item 14: ``PE_IQA_MEMORY_BUDGET_GB=-3`` exited 1 for explain and pyiqa; ``=1e300`` passed validation."""
    monkeypatch.setenv(variable, value)
    assert main([a.format(tmp=tmp_path) for a in ENTRY_POINTS[entry]]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and repr(value) in lines[0], lines
    assert not (tmp_path / "maps").exists() and not (tmp_path / "figures").exists()


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_the_benchmarks_refuse_a_bad_environment_value(variable, value, monkeypatch, capsys) -> None:
    from benchmarks.command_line import run_or_exit_status

    monkeypatch.setenv(variable, value)
    ran = []
    assert run_or_exit_status(lambda: ran.append(1)) == 2
    assert not ran and variable in capsys.readouterr().err


@pytest.mark.parametrize("value", ["1e300", "-3", "0", "nan", "lots"])
def test_the_memory_budget_is_finite_and_positive(value, monkeypatch) -> None:
    """Item 14: ``1e300`` GiB passed and every PE call raised ``OverflowError``."""
    from pe_iqa.memory import memory_budget

    monkeypatch.setenv("PE_IQA_MEMORY_BUDGET_GB", value)
    with pytest.raises(EnvironmentValueError, match="PE_IQA_MEMORY_BUDGET_GB"):
        memory_budget("cpu")
    with pytest.raises(EnvironmentValueError):
        check_environment()


def test_accepted_values_are_read_as_numbers(monkeypatch) -> None:
    monkeypatch.setenv("PE_IQA_MEMORY_BUDGET_GB", " 2.5 ")
    monkeypatch.setenv("PE_IQA_MAX_IMAGE_PIXELS", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert env_number("PE_IQA_MEMORY_BUDGET_GB") == 2.5
    assert env_number("PE_IQA_MAX_IMAGE_PIXELS") == 0 and env_number("WORLD_SIZE") == 4
    monkeypatch.delenv("WORLD_SIZE")
    assert env_number("WORLD_SIZE") is None
    check_environment()


def test_the_contextual_loss_honours_the_memory_budget(monkeypatch) -> None:
    """Item 14: ``PEContextualLoss`` ignored the budget although every PE call checks it."""
    from pe_iqa import PEContextualLoss
    from pe_iqa.memory import MemoryBudgetError

    loss = PEContextualLoss("alexnet", ["relu1"], weights="random")
    x = torch.rand(1, 3, 64, 64)
    assert float(loss(x, x)) == 0.0
    monkeypatch.setenv("PE_IQA_MEMORY_BUDGET_GB", "0.0001")
    with pytest.raises(MemoryBudgetError, match="contextual loss on 1 64×64"):
        loss(x, x)
    monkeypatch.setenv("PE_IQA_MEMORY_BUDGET_GB", "1e300")
    with pytest.raises(EnvironmentValueError):
        loss(x, x)


#: Environment variables read directly that hold no number (paths, switches).
NOT_NUMERIC = {"PE_IQA_DEBUG", "PE_IQA_CACHE", "XDG_CACHE_HOME", "PE_IQA_LIVE_ROOT", "OPT_OUT_ENV", "PYTHONPATH"}


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``os.environ.get(X)``, ``os.environ[X]`` and ``os.getenv(X)`` in ``tree``: (line, the name read)."""
    reads = []
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            target = ast.unparse(node.func)
            if target in ("os.environ.get", "os.getenv", "environ.get"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("os.environ", "environ") \
                and isinstance(node.ctx, ast.Load):
            key = node.slice
        if key is not None:
            reads.append((node.lineno, key.value if isinstance(key, ast.Constant) else ast.unparse(key)))
    return reads


def test_no_code_reads_a_numeric_environment_variable_but_env_options() -> None:
    """Item 14: every numeric variable goes through ``pe_iqa.env_options`` (a subcommand read the budget its way)."""
    offenders = []
    for folder in ("src", "plugins", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "env_options.py":
                continue
            for line, name in _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
                if name not in NOT_NUMERIC or name in NUMERIC_VARIABLES:
                    offenders.append(f"{path.relative_to(ROOT)}:{line} reads {name}")
    assert not offenders, "read numeric variables with pe_iqa.env_options.env_number: " + "; ".join(offenders)


def test_the_guard_sees_a_numeric_read() -> None:
    tree = ast.parse('import os\nn = int(os.environ.get("WORLD_SIZE", "1"))\nm = os.environ["RANK"]')
    assert sorted(_environment_reads(tree)) == [(2, "WORLD_SIZE"), (3, "RANK")]


# item 15: the same misuse, the same status, from every subcommand; stderr is one line
MISUSE = [
    # a wrong output name
    (["explain", "--sample", "blur_2", "--figure", "{tmp}/f.txt"], "under a .txt name"),
    (["explain", "--sample", "blur_2", "--csv", "{tmp}/c.png"], "under a .png name"),
    (["score", "--sample", "--csv", "{tmp}/x.png", "--no-progress"], "under a .png name"),
    (["rank", "alexnet", "--out", "{tmp}/r.txt"], ".json or .csv"),
    (["plot", "alexnet", "--out-dir", "{d}"], "is a file"),
    # a file the command line names that is not there
    (["score", "-t", "{tmp}/nope.png", "-r", "{r}", "--no-progress"], "no such file"),
    (["score", "--pairs", "{tmp}/nope.csv", "--no-progress"], "no such pairs manifest"),
    (["explain", "-t", "{tmp}/nope.png", "-r", "{r}"], "nope.png"),
    (["rank", "alexnet", "--weights", "{tmp}/nope.pth"], "nope.pth"),
    (["plot", "alexnet", "--weights", "{tmp}/nope.pth", "--out-dir", "{tmp}/f"], "nope.pth"),
    (["pyiqa", "pe_alex", "-t", "{tmp}/nope.png"], "no such file or folder"),
    # an unknown option or value
    (["pyiqa", "pe_alex", "-t", "{d}", "-r", "{r}", "--devcie", "cpu"], "unrecognized arguments: --devcie"),
    (["pyiqa", "pe_alex", "-t", "{d}", "-r", "{r}", "--device=cpu", "--fid-mode", "x"], "unrecognized"),
    (["layers", "nonet"], "backbone must be one of"),
    (["explain", "nosuch"], "invalid choice"),
    (["score", "--sample", "--alpha", "grey"], "invalid choice"),
]


@pytest.mark.parametrize(("args", "message"), MISUSE, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in
                                                           enumerate(MISUSE)])
def test_every_misuse_is_exit_2_and_one_line(args, message, pair, tmp_path, capsys) -> None:
    """Item 15: a wrong output name, a missing input and an unknown option got 0, 1 or 2 depending on the command."""
    if args[0] == "pyiqa":
        pytest.importorskip("pyiqa")
    assert main([a.format(tmp=tmp_path, d=pair[0], r=pair[1]) for a in args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith(f"pe-iqa {args[0]}: error:"), lines


@pytest.mark.slow  # scores the pair once
def test_resuming_over_another_configuration_is_exit_2(pair, tmp_path, capsys) -> None:
    """Item 15: resume over another configuration exited 1, over another metric set 2."""
    out = str(tmp_path / "s.csv")
    base = ["score", "-t", str(pair[0]), "-r", str(pair[1]), "--csv", out, "--no-progress", "--device", "cpu"]
    assert main([*base, "--alpha", "white"]) == 0
    capsys.readouterr()
    assert main([*base, "--alpha", "black", "--resume"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "another configuration" in lines[0]


def test_the_exit_table_names_existing_types() -> None:
    """Every row of the table names a class that exists (a renamed exception would silently fall to status 1)."""
    import importlib

    for name, status in EXIT_TABLE:
        module, _, attribute = name.partition(":")
        if module.startswith("pe_iqa_pyiqa"):
            pytest.importorskip("pyiqa")
        assert isinstance(getattr(importlib.import_module(module), attribute), type), name
        assert status in (1, 2, 130)


def test_the_exit_table_statuses() -> None:
    from pe_iqa.image_io import ImageReadError
    from pe_iqa.memory import MemoryBudgetError
    from pe_iqa.provenance import ProvenanceError
    from pe_iqa.safe_files import DestinationError

    assert exit_status(DestinationError("x")) == 2 and exit_status(ProvenanceError("x")) == 2
    assert exit_status(FileNotFoundError("x")) == 2 and exit_status(EnvironmentValueError("x")) == 2
    assert exit_status(ImageReadError("x")) == 1 and exit_status(MemoryBudgetError("x")) == 1
    assert exit_status(RuntimeError("x")) == 1 and exit_status(OSError("disk full")) == 1

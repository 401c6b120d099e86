"""Failures on the command line: one line on stderr, exit status 2 (command line) or 1 (run), no traceback
unless ``--debug`` (issue 10.7 and the one-line rule)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from tests.fixtures.sample_pairs import copy_sample_pair

from pe_iqa.cli import main


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    return copy_sample_pair("blur_1.png", tmp_path_factory.mktemp("one"))


def _bomb(path: Path) -> Path:
    """A PNG that claims 20000×20000 pixels (the reader must refuse it from the header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20_000, 20_000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


CASES = [
    # the command line is wrong: exit status 2
    (["score", "-t", "{d}", "-r", "{r}", "no_such_metric_xyz"], "unknown metric 'no_such_metric_xyz'", 2),
    (["score", "--sample", "-t", "{d}"], "give one input", 2),
    (["score", "--pairs", "{tmp}/m.csv", "-t", "{d}", "-r", "{r}"], "give one input", 2),
    (["score"], "-t DIST", 2),
    (["score", "--root", "{tmp}", "-t", "{d}", "-r", "{r}"], "--root goes with --pairs", 2),
    (["score", "--sample", "--workers", "-1"], "--workers must be >= 0", 2),
    (["score", "--sample", "--batch-size", "many"], "integer or 'auto'", 2),
    (["score", "--sample", "--device", "meta"], "--device meta holds no data", 2),
    (["score", "--sample", "--device", "gpu7"], "--device must be a torch device", 2),
    (["score", "--sample", "--alpha", "ignore"], "invalid choice: 'ignore'", 2),
    (["score", "--sample", "--bogus"], "unrecognized arguments: --bogus", 2),
    (["rank", "alexnet", "--out", "ranks.txt"], ".json or .csv", 2),
    (["rank", "alexnet", "--top", "0"], "--top must be >= 1", 2),
    (["plot", "alexnet", "--dpi", "100000"], "--dpi must be within 10..1200", 2),
    (["plot", "alexnet", "--weights", "random", "--layers", "relu1", "--n", "0"], "--n must be >= 1", 2),
    (["bogus"], "invalid choice", 2),
    # issue 20.7: names that do not exist are a wrong command line too (were exit status 1)
    (["rank", "nonet"], "backbone must be one of", 2),
    (["rank", "alexnet", "--weights", "random", "--layers", "relu9"], "unknown layer(s) ['relu9']", 2),
    (["rank", "alexnet", "--layers", "relu9"], "unknown layer(s) ['relu9']", 2),
    (["rank", "alexnet", "--score", "nosuch"], "--score must be one of", 2),
    (["rank", "alexnet", "--weights", "IMAGENET1K_V9"], "weights must be 'DEFAULT'", 2),
    (["rank", "alexnet", "--weights", "random:abc"], "needs an integer seed", 2),
    (["rank", "alexnet", "--device", "cuda:99"], "--device cuda:99", 2),
    (["layers", "nosuchnet"], "backbone must be one of", 2),
    (["layers", "timm:vit_tiny_patch16_224"], "is a transformer", 2),
    (["plot", "alexnet", "--layers", "relu9", "--out-dir", "{tmp}/figures"], "unknown layer(s) ['relu9']", 2),
    (["plot", "nonet", "--out-dir", "{tmp}/figures"], "backbone must be one of", 2),
    (["plot", "alexnet", "--weights", "nosuch", "--out-dir", "{tmp}/figures"], "weights must be 'DEFAULT'", 2),
    (["explain", "--sample", "blur_2", "--device", "cuda:99"], "--device cuda:99", 2),
    (["layers", "alexnet", "--bogus"], "unrecognized arguments: --bogus (see `pe-iqa layers --help`)", 2),
    (["rank", "alexnet", "--bogus"], "unrecognized arguments: --bogus (see `pe-iqa rank --help`)", 2),
    (["plot", "alexnet", "--bogus"], "unrecognized arguments: --bogus (see `pe-iqa plot --help`)", 2),
    (["explain", "--bogus"], "unrecognized arguments: --bogus (see `pe-iqa explain --help`)", 2),
    (["score", "--bogus"], "unrecognized arguments: --bogus (see `pe-iqa score --help`)", 2),
    (["rank"], "required: backbone", 2),
    (["layers"], "required: backbone", 2),
    (["explain"], "-t DIST", 2),
    (["score", "--sample", "--reference-cache-mb", "-5"], "--reference-cache-mb must be a number", 2),
    (["score", "--sample", "--reference-cache-mb", "nan"], "--reference-cache-mb must be a number", 2),
    # issue 25.15: a file the command line names that is not there is a wrong command line (were exit status 1)
    (["score", "-t", "{tmp}/missing.png", "-r", "{tmp}/missing.png"], "no such file or folder", 2),
    (["score", "--pairs", "{tmp}/none.csv"], "no such pairs manifest", 2),
]


@pytest.mark.parametrize(("args", "message", "code"), CASES, ids=[" ".join(c[0][:3]) + f"-{i}"
                                                                   for i, c in enumerate(CASES)])
@pytest.mark.slow  # 0.8 s measured (full run, 2 shared cores)
def test_errors_are_one_line_with_the_right_exit_status(capsys, tmp_path, pair, args, message, code) -> None:
    filled = [a.format(tmp=tmp_path, d=pair[0], r=pair[1]) for a in args]
    assert main(filled) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("pe-iqa")


@pytest.mark.parametrize("command", [["score", "--sample"], ["explain", "--sample", "blur_2"],
                                     ["rank", "alexnet", "--weights", "random"], ["layers", "alexnet"]])
@pytest.mark.parametrize(("variable", "value"), [("PE_IQA_MAX_IMAGE_PIXELS", "many"),
                                                 ("PE_IQA_MAX_IMAGE_PIXELS", "-5"),
                                                 ("PE_IQA_DIST_TIMEOUT_S", "soon"),
                                                 ("PE_IQA_DIST_TIMEOUT_S", "0"),
                                                 ("LOCAL_WORLD_SIZE", "two")])
def test_a_malformed_environment_variable_is_a_usage_error(capsys, monkeypatch, command, variable, value) -> None:
    """Issue 20.7: ``PE_IQA_MAX_IMAGE_PIXELS=many pe-iqa score`` failed every pair (exit status 1), one by one."""
    monkeypatch.setenv(variable, value)
    assert main([*command, "--no-progress"] if command[0] == "score" else command) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0] and repr(value) in lines[0]


def test_every_command_exits_2_on_an_unknown_option(capsys) -> None:
    """Issue 20.7: every subcommand, including the plugin ones, answers a wrong command line with status 2."""
    from pe_iqa.cli.program import _plugin_commands, build_parser

    subcommands = build_parser()._subparsers._group_actions[0].choices
    assert {"score", "rank", "plot", "layers", "explain"} <= set(subcommands)
    for name in subcommands:
        assert main([name, "--no-such-option"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"pe-iqa {name}: error:"), (name, err)
    assert set(_plugin_commands()) <= set(subcommands)


@pytest.mark.slow  # 0.7 s measured (full run, 2 shared cores)
def test_a_pair_that_exceeds_the_pixel_limit_fails_alone(capsys, tmp_path, pair) -> None:
    """Issue 10.7: a 20000×20000 PNG ended in a traceback; now it is one failed pair and the rest score."""
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(f"distorted,reference\n{pair[0]},{pair[1]}\n{_bomb(tmp_path / 'bomb.png')},{pair[1]}\n",
                        encoding="utf-8")
    assert main(["score", "--pairs", str(manifest), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "mean (1 of 2 pairs)" in captured.out
    assert "bomb.png" in captured.err and "PE_IQA_MAX_IMAGE_PIXELS" in captured.err
    assert "Traceback" not in captured.err


def test_debug_shows_the_traceback(capsys, tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        main(["score", "-t", str(tmp_path / "x.png"), "-r", str(tmp_path / "y.png"), "--debug"])
    with pytest.raises(FileNotFoundError):
        main(["--debug", "score", "-t", str(tmp_path / "x.png"), "-r", str(tmp_path / "y.png")])


def test_an_unexpected_error_is_one_line_naming_its_type(capsys, monkeypatch, pair) -> None:
    def broken(*args, **kwargs):
        raise IndexError("index 500 is out of bounds for dimension 0 with size 384")

    monkeypatch.setattr("pe_iqa.scoring.score_pairs", broken)
    assert main(["score", "-t", str(pair[0]), "-r", str(pair[1])]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "pe-iqa score: error: IndexError: index 500 is out of bounds for dimension 0 with size 384 "
        "(run with --debug for the traceback)"
    ]


@pytest.mark.slow  # 1.6 s measured (full run, 2 shared cores)
def test_a_journal_of_an_interrupted_run_needs_resume(capsys, tmp_path, pair) -> None:
    out = tmp_path / "s.csv"
    (tmp_path / "s.csv.partial").write_text("index,distorted,reference,pe_alex,error\n")
    assert main(["score", "-t", str(pair[0]), "-r", str(pair[1]), "--csv", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["score", "-t", str(pair[0]), "-r", str(pair[1]), "--csv", str(out), "--resume"]) == 0
    assert out.is_file() and not (tmp_path / "s.csv.partial").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "lots"])
def test_reference_cache_mb_out_of_range_is_a_usage_error(pair, value, capsys) -> None:
    """Issue 19.14: ``--reference-cache-mb inf`` ended in an OverflowError."""
    distorted, reference = pair
    assert main(["score", "-t", str(distorted), "-r", str(reference), "--reference-cache-mb", value]) == 2
    assert "--reference-cache-mb" in capsys.readouterr().err


def test_a_junk_pixel_limit_is_one_usage_error(pair, monkeypatch, capsys) -> None:
    """Issue 19.14: ``PE_IQA_MAX_IMAGE_PIXELS=junk`` failed every pair instead of one usage error."""
    distorted, reference = pair
    monkeypatch.setenv("PE_IQA_MAX_IMAGE_PIXELS", "junk")
    assert main(["score", "-t", str(distorted), "-r", str(reference), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "PE_IQA_MAX_IMAGE_PIXELS" in err and err.count("\n") == 1 and "Traceback" not in err

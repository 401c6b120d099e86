"""torchrun: 2 gloo processes on CPU write the same CSV, row by row, and print the same means as 1 process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pe_iqa.scoring import build_metric, read_pairs_manifest, score_pairs
from pe_iqa.scoring.distributed import shard_range
from pe_iqa.scoring.output import journal_path

pytestmark = pytest.mark.slow


def test_shards_are_contiguous_and_cover_every_pair() -> None:
    for n in range(12):
        for world in range(1, 5):
            shards = [list(shard_range(n, r, world)) for r in range(world)]
            assert [i for shard in shards for i in shard] == list(range(n))
            assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """7 pairs over 3 references (an odd count: the shards differ in size), one pair unreadable."""
    root = tmp_path_factory.mktemp("torchrun")
    rng = np.random.default_rng(3)
    lines = ["distorted,reference,mos"]
    for r in range(3):
        ref = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
        Image.fromarray(ref).save(root / f"r{r}.png")
        for d in range(2 if r < 2 else 3):
            noisy = np.clip(ref + rng.normal(0, 10 * (d + 1), ref.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / f"d{r}{d}.png")
            lines.append(f"d{r}{d}.png,r{r}.png,{r}.{d}")
    lines.insert(3, "missing.png,r0.png,9.9")  # fails in process 0's shard
    (root / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "pairs.csv"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(arguments: list[str], processes: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if processes == 1:
        command = [sys.executable, "-m", "pe_iqa", *arguments]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node",
                   str(processes), "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
                   "-m", "pe_iqa", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def _means(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("mean")]


@pytest.mark.slow  # 49.4 s measured (full run, 2 shared cores)
def test_two_gloo_processes_write_the_single_process_csv_row_by_row(manifest: Path, tmp_path: Path) -> None:
    common = ["score", "--pairs", str(manifest), "--device", "cpu", "--no-progress"]
    single = _run([*common, "--csv", str(tmp_path / "single.csv")], 1)
    double = _run([*common, "--csv", str(tmp_path / "double.csv")], 2)
    assert single.returncode == 1 and double.returncode == 0, double.stderr[-3000:]  # one pair failed in both
    assert "ChildFailedError" not in double.stderr and "exit status 0 under torchrun" in double.stderr
    rows_single = (tmp_path / "single.csv").read_text(encoding="utf-8").splitlines()
    rows_double = (tmp_path / "double.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows_single) == 9
    for one, two in zip(rows_single, rows_double, strict=True):
        assert one == two
    assert "missing.png" in rows_double[3]
    assert _means(single.stdout) == _means(double.stdout) and _means(single.stdout)
    assert "mean (7 of 8 pairs)" in single.stdout
    assert double.stdout.count("lower = better") == 1  # only process 0 prints the results
    assert "by 2 processes" in double.stderr
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.slow  # 83.8 s measured (full run, 2 shared cores)
def test_resume_under_torchrun_continues_a_single_process_run(manifest: Path, tmp_path: Path) -> None:
    pairs = read_pairs_manifest(manifest)
    full = _run(["score", "--pairs", str(manifest), "--device", "cpu", "--csv", str(tmp_path / "full.csv")], 1)
    assert full.returncode == 1
    metric = build_metric("pe_alex")
    original, calls = metric.score_with_features, []

    def interrupt_at_third(dist, ref, features):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(dist, ref, features)

    metric.score_with_features = interrupt_at_third
    out = tmp_path / "resumed.csv"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1): the same arithmetic, bit for bit
    try:
        with pytest.raises(KeyboardInterrupt):
            score_pairs(pairs, [metric], csv_path=out, progress=False)
    finally:
        torch.set_num_threads(threads)
    metric.score_with_features = original
    assert journal_path(out).is_file() and not out.exists()
    assert len(journal_path(out).read_text(encoding="utf-8").splitlines()) == 1 + 3  # header, 2 scored, 1 failed
    resumed = _run(["score", "--pairs", str(manifest), "--device", "cpu", "--csv", str(out), "--resume",
                    "--no-progress"], 2)
    assert resumed.returncode == 0 and "ChildFailedError" not in resumed.stderr, resumed.stderr[-3000:]
    assert out.read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert "scored 7 of 8 pairs (2 taken from the earlier run)" in resumed.stderr  # the failed pair tried again
    assert not list(tmp_path.glob("*.partial"))

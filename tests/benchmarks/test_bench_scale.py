"""The scale benchmark's quick mode (CI): every cell runs, 2 processes write the 1-process bytes, a killed run
resumes to the same bytes, and nothing is written into benchmarks/results."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import pytest

from benchmarks import scale


@pytest.mark.slow  # about 60 s (fresh processes and a torchrun group per cell, 2 shared cores)
def test_quick_mode_writes_to_a_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    (work / "benchmarks" / "results").mkdir(parents=True)
    monkeypatch.chdir(work)
    (tmp_path / "temp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    assert scale.main(["--quick"]) == 0
    assert list((work / "benchmarks" / "results").iterdir()) == []
    (written,) = (tmp_path / "temp").glob("pe_iqa_scale_quick_*/scale_cpu.csv")
    with written.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cells = [row for row in rows if row["cell"] == "grid"]
    assert [row["same_bytes_as_uninterrupted"] for row in rows if row["cell"] == "kill"] == ["True"]
    assert [(c["rows"], c["processes"]) for c in cells] == [("200", "1"), ("200", "2"), ("400", "1"), ("400", "2")]
    assert all(c["same_bytes_as_1_process"] == "True" for c in cells)
    assert [c["ok"] for c in cells] == ["200", "200", "100", "100"]  # the bounded manifest: 100 rows name images
    assert all(float(c["engine_ms_per_row"]) > 0 and float(c["peak_rss_mib_max"]) > 0 for c in cells)
    report = written.with_suffix(".md").read_text(encoding="utf-8")
    assert "Kill at about half" in report and report.rstrip().endswith("| on |")  # on: the same bytes


def test_manifests_list_the_images_and_the_bounded_rows(tmp_path: Path) -> None:
    full = scale.write_manifest(tmp_path, 30, 3, 8)
    bounded = scale.write_manifest(tmp_path, 30, 3, 8, scored=5)
    lines = full.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "distorted,reference,row" and lines[1:4] == ["d0.png,r0.png,0", "d1.png,r0.png,1",
                                                                    "d2.png,r0.png,2"]
    assert lines[-1] == "d2.png,r2.png,29" and all((tmp_path / f"{k}{i}.png").is_file() for k in "dr" for i in range(3))
    assert bounded.read_text(encoding="utf-8").splitlines()[6:8] == ["d2.png,r0.png,5".replace("d", "missing/d", 1),
                                                                       "missing/d0.png,r0.png,6"]

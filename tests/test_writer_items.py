"""The one writer's destination policy at work (issue 25, items 8, 9, 10, 11, 13 and the ``--csv`` names of 16).

Each test failed on the tree before the one writer: a map drawn over an input, a FIFO that hung the run, a device
replaced, outputs escaping ``--out`` or replacing one another, and names that turned into other files.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa import PEDistance, safe_files
from pe_iqa.cli import SAMPLE_DIR, main
from pe_iqa.safe_files import DestinationError, check_destination, write_text_atomic
from pe_iqa.scoring.maps import map_file_names, write_distance_maps
from pe_iqa.scoring.pairs import ScorePair


def _sample(name: str = "blur_1") -> list[str]:
    return ["-t", str(SAMPLE_DIR / "distorted" / f"{name}.png"), "-r", str(SAMPLE_DIR / "reference" / f"{name}.png")]


def _returns_within(call, seconds: float = 30.0) -> object:
    """``call()``'s outcome (its value or exception); the test fails if it blocks (a FIFO opened for reading)."""
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(call)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, "blocked: the destination was opened"
    return outcome[0]


def _outcome(call) -> object:
    try:
        return call()
    except Exception as error:  # returned for the test to inspect
        return error


def test_a_fifo_a_device_or_a_link_is_refused_without_opening_it(tmp_path: Path) -> None:
    """Item 9: ``--csv`` onto a FIFO hung forever (the image check opened it); a device was replaced by a file."""
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    found = _returns_within(lambda: check_destination(fifo, what="--csv", kind="csv"))
    assert isinstance(found, DestinationError) and "FIFO" in str(found)
    found = _returns_within(lambda: write_text_atomic(fifo, "x"))
    assert isinstance(found, DestinationError) and fifo.is_fifo()
    with pytest.raises(DestinationError, match="a device"):
        check_destination(Path(os.devnull), what="--csv")
    link = tmp_path / "out.csv"
    link.symlink_to("/proc/self/fd/1")
    found = _returns_within(lambda: check_destination(link, what="--csv", kind="csv"))
    assert isinstance(found, DestinationError) and "symbolic link" in str(found)
    assert link.is_symlink()


def test_the_csv_names_that_name_no_file_are_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    """Item 16: ``--csv ""`` printed ``PosixPath('.')``; ``--csv newdir/`` wrote a file called ``newdir``."""
    monkeypatch.chdir(tmp_path)
    assert main(["score", *_sample(), "psnr", "--csv", "", "--no-progress"]) != 0
    assert main(["score", *_sample(), "psnr", "--csv", "newdir/", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "PosixPath" not in err and "--csv is empty; give a file name" in err
    assert "--csv newdir/ ends in a separator, so it names a folder" in err
    assert not list(tmp_path.iterdir())


def test_outputs_of_one_command_never_share_a_path(tmp_path: Path, capsys) -> None:
    """Item 11: ``explain --csv X --json X`` kept only the JSON; ``--maps X --csv X`` left an empty folder X."""
    target = tmp_path / "X"
    assert main(["explain", *_sample(), "--csv", str(target), "--json", str(target)]) != 0
    assert main(["explain", *_sample(), "--csv", str(target), "--figure", str(target)]) != 0
    assert main(["score", *_sample(), "pe_alex", "--maps", str(target), "--csv", str(target), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert err.count("is also --csv; give each output its own name") == 2 and "X is also --maps" in err
    assert not list(tmp_path.iterdir())
    plan = safe_files.OutputPlan()
    plan.add(tmp_path / "a" / "s.csv", "--csv", "csv")
    with pytest.raises(DestinationError, match="is also --csv"):
        plan.add(tmp_path / "a" / ".." / "a" / "s.csv", "--json")
    assert not (tmp_path / "a").exists()  # nothing created while checking
    plan.ready()
    assert (tmp_path / "a").is_dir()
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real", target_is_directory=True)
    assert plan.add_folder(tmp_path / "linked", "--maps") == tmp_path / "linked"  # a folder the user linked: fine
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DestinationError, match="is a file, not a folder"):
        plan.add_folder(tmp_path / "afile", "--figures")


@pytest.mark.slow  # draws two maps with pe_alex
def test_an_earlier_map_that_is_an_input_is_never_drawn_over(tmp_path: Path) -> None:
    """Item 8: an earlier pe-iqa map in the maps folder, scored again as an input, was redrawn over."""
    reference = tmp_path / "r.png"
    shutil.copy(SAMPLE_DIR / "reference" / "blur_1.png", reference)
    distorted = tmp_path / "d.png"
    shutil.copy(SAMPLE_DIR / "distorted" / "blur_1.png", distorted)
    metric, folder = PEDistance("pe_alex"), tmp_path / "maps"
    first = [ScorePair(distorted, reference)]
    assert write_distance_maps(first, metric, folder, alpha="drop").written == 1
    earlier = folder / map_file_names(first)[0]
    before = earlier.read_bytes()
    again = [*first, ScorePair(earlier, reference)]  # the map itself is now an input; another alpha: stale
    report = write_distance_maps(again, metric, folder, alpha="white", skip={1})
    assert earlier.read_bytes() == before
    assert len(report.failures) == 1 and "one of the inputs" in report.failures[0][1]


@pytest.fixture()
def live_table_offline(monkeypatch):
    """``benchmarks.live_table.main`` with the LIVE index, the score files and the statistics replaced by stubs."""
    from benchmarks import live_table

    class _Index:
        records: tuple = ()

        def summary(self) -> str:
            return "stub"

    monkeypatch.setattr(live_table, "load_live_index", lambda root: _Index())
    monkeypatch.setattr(live_table, "load_engine_scores", lambda path, records: {})
    monkeypatch.setattr(live_table, "table_rows", lambda *args, **kwargs: [
        {"metric": "pe_alex", "resolution": "native", "srocc": 0.9, "srocc image low": 0.8,
         "srocc image high": 0.95, "srocc reference low": 0.7, "srocc reference high": 0.97}])
    monkeypatch.setattr(live_table, "_resolutions", lambda records, scales: {})
    return live_table.main


def test_live_table_writes_only_inside_out_and_never_onto_an_image(live_table_offline, tmp_path, capsys) -> None:
    """Item 10: ``--name ../escaped`` wrote outside ``--out``; its ``.md`` overwrote a TGA; ``--out`` a file gave a
    traceback."""
    out, scores = tmp_path / "out", tmp_path / "x_scores_live.csv"
    scores.write_text("")
    common = ["--scores", str(scores), "--boot", "10", "--no-progress"]
    assert live_table_offline([*common, "--out", str(out), "--name", "../escaped"]) == 2
    assert not (tmp_path / "escaped.md").exists() and not (tmp_path / "escaped.csv").exists()
    out.mkdir()
    tga = out / "t.md"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tga, format="TGA")
    before = tga.read_bytes()
    assert live_table_offline([*common, "--out", str(out), "--name", "t"]) == 2
    assert tga.read_bytes() == before and not (out / "t.csv").exists()  # checked before anything was written
    a_file = tmp_path / "file"
    a_file.write_text("keep")
    assert live_table_offline([*common, "--out", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error: ") == 3
    assert "plain file stem" in err and "holds an image" in err and "is not a writable folder" in err
    with pytest.raises(DestinationError, match="outside the folder"):
        check_destination(out / ".." / "escaped.md", within=out)
    assert live_table_offline([*common, "--out", str(out), "--name", "ok"]) == 0
    assert (out / "ok.md").is_file() and (out / "ok.csv").is_file()


def test_a_run_fr_name_never_names_another_runs_files(tmp_path: Path) -> None:
    """Item 13: ``run_fr --name fr_scores_live`` replaced run ``fr``'s per-image file in the same ``--out``."""
    from benchmarks.run_fr import main, run_fr

    calls = []
    for name in ("fr_scores_live", "fr_pyiqa_table", "a_scores_b"):
        with pytest.raises(DestinationError, match="names another run's files"):
            run_fr(["live"], tmp_path, ["psnr"], out_dir=tmp_path, name=name,
                   scorer=lambda *args: calls.append(args))
        with pytest.raises(SystemExit) as stopped:  # argparse's usage error
            main(["--dataset", "live", "--root", str(tmp_path), "--out", str(tmp_path), "--name", name])
        assert stopped.value.code == 2
    assert not calls and not list(tmp_path.iterdir())
    from benchmarks.run_fr import check_run_name

    assert check_run_name("fr") == "fr" and check_run_name("live_fr_classic") == "live_fr_classic"


def test_run_fr_selection_checks_its_outputs_before_any_work(tmp_path: Path, monkeypatch, capsys) -> None:
    """Item 10's class: ``run_fr_selection --name ../escaped`` wrote outside ``--out`` after the whole study."""
    from benchmarks import run_fr_selection

    monkeypatch.setattr(run_fr_selection, "run_fr_selection", lambda *args, **kwargs: pytest.fail("ran first"))
    out = tmp_path / "out"
    assert run_fr_selection.main(["--dataset", "live", "--root", str(tmp_path), "--out", str(out),
                                  "--name", "../escaped"]) == 2
    assert "plain file stem" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_the_percentile_cache_round_trips_through_the_writer(tmp_path: Path) -> None:
    """The selection study's distance cache is written by :func:`pe_iqa.safe_files.save_npz` and reads back equal."""
    from benchmarks.selection.distances import BackboneDistances
    from benchmarks.selection.percentile_cache import load_distances, save_distances

    norm = {"F": np.arange(6.0).reshape(3, 2), "H-10": np.ones((3, 2)) / 3}
    dist = BackboneDistances(backbone="alexnet", layers=("relu1", "relu2"), scale=0.5, selectors=("pe",),
                             percents=(10.0,), seeds=0, n_channels={"relu1": 64, "relu2": 192},
                             sizes={"F": {"relu1": 64, "relu2": 192}, "H-10": {"relu1": 6, "relu2": 19}},
                             norm=norm, raw={}, seconds=1.5)
    path = tmp_path / "cache" / "d.npz"
    save_distances(dist, path)
    back = load_distances(path, "alexnet", 0.5, (10.0,), 0)
    assert back.sizes == dist.sizes and back.n_channels == dist.n_channels and back.seconds == 1.5
    assert all(np.array_equal(back.norm[name], norm[name]) for name in norm)
    assert sorted(p.name for p in path.parent.iterdir()) == ["d.npz"]  # no temporary file left


def test_an_empty_maps_folder_is_refused_not_ignored(tmp_path: Path, monkeypatch, capsys) -> None:
    """``--maps ""`` was taken as no ``--maps``: the run went on without the maps the user asked for, exit 0."""
    monkeypatch.chdir(tmp_path)
    assert main(["score", *_sample(), "psnr", "--maps", "", "--no-progress"]) == 2
    assert "--maps is empty; give the folder to write the maps into" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

"""The one output policy (issue 19, items 8 and 11): never onto a file the reader decodes, a name that says what is
written, names checked before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa.cli import SAMPLE_DIR, main
from pe_iqa.safe_files import DestinationError, check_destination, check_file_stem


@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    """An existing TGA and PBM (formats pe-iqa score reads), not inputs of the run."""
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)
    found = {}
    for name, fmt, data in (("old.tga", "TGA", pixels), ("old.pbm", "PPM", pixels > 20)):
        path = tmp_path / name
        Image.fromarray(data).save(path, format=fmt)
        found[name] = path
    return found


def _sample(name: str = "blur_1") -> list[str]:
    return ["-t", str(SAMPLE_DIR / "distorted" / f"{name}.png"), "-r", str(SAMPLE_DIR / "reference" / f"{name}.png")]


@pytest.mark.parametrize("name", ["old.tga", "old.pbm"])
def test_no_writer_overwrites_an_image_the_reader_decodes(images, name, capsys) -> None:
    """Item 8: ``--csv``, ``explain --figure`` and ``explain --csv`` overwrote TGA and PBM images."""
    target = images[name]
    before = target.read_bytes()
    assert main(["score", *_sample(), "--csv", str(target), "--no-progress"]) == 2
    assert main(["explain", *_sample(), "--csv", str(target)]) == 2
    assert main(["explain", *_sample(), "--figure", str(target)]) == 2
    assert capsys.readouterr().err.count("holds an image") == 3
    assert target.read_bytes() == before


def test_the_name_must_say_what_is_written(tmp_path: Path, capsys) -> None:
    """Item 8: ``explain --figure f.txt`` wrote a PNG under that name."""
    assert main(["explain", *_sample(), "--figure", str(tmp_path / "f.txt")]) == 2
    assert main(["explain", *_sample(), "--csv", str(tmp_path / "c.png")]) == 2
    assert main(["score", *_sample(), "--csv", str(tmp_path / "s.json"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "would hold PNG data under a .txt name" in err and "CSV data under a .png name" in err
    assert not list(tmp_path.iterdir())
    with pytest.raises(DestinationError, match=r"ending in \.json"):
        check_destination(tmp_path / "x.csv", kind="json")
    assert check_destination(tmp_path / "scores", kind="csv") == tmp_path / "scores"  # no ending: fine


def test_names_too_long_or_outside_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DestinationError, match="longer than 200 bytes"):
        check_destination(tmp_path / ("x" * 201 + ".csv"), kind="csv")
    for stem in ("../up", "..", "", "a/b", "nul\0"):
        with pytest.raises(DestinationError, match="plain file stem"):
            check_file_stem(stem)
    (tmp_path / "file").write_text("x")
    with pytest.raises(DestinationError, match="cannot create the folder"):
        check_destination(tmp_path / "file" / "sub" / "a.csv")

"""Pairs named on the command line are checked from their headers before the metrics load (issue 27): a pair that
cannot be scored is reported at once, with the engine's own message, and never one that could be scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa.cli import main
from pe_iqa.cli.precheck import header_failures
from pe_iqa.scoring import ScorePair


def _png(path: Path, size: tuple[int, int], mode: str = "RGB", alpha: int | None = None) -> Path:
    width, height = size
    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    if alpha is not None:
        pixels[..., 3] = 255
        pixels[0, 0, 3] = alpha
    Image.fromarray(pixels, mode).save(path)
    return path


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    made = {
        "ref": _png(tmp_path / "ref.png", (48, 40)),
        "same": _png(tmp_path / "same.png", (48, 40)),
        "small": _png(tmp_path / "small.png", (40, 30)),
        "turned": _png(tmp_path / "turned.png", (40, 48)),
        "opaque": _png(tmp_path / "opaque.png", (48, 40), "RGBA", alpha=255),
        "transparent": _png(tmp_path / "transparent.png", (48, 40), "RGBA", alpha=0),
        "text": tmp_path / "text.png",
        "missing": tmp_path / "missing.png",
    }
    made["text"].write_text("not an image")
    frames = [Image.new("RGB", (48, 40), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    made["anim"] = tmp_path / "anim.gif"
    return made


def test_the_header_check_finds_what_cannot_be_scored_and_nothing_else(images) -> None:
    names = ["same", "small", "turned", "opaque", "transparent", "text", "missing", "anim"]
    pairs = [ScorePair(images[name], images["ref"]) for name in names]
    found = {names[i]: message for i, message in header_failures(pairs).items()}
    assert set(found) == {"small", "transparent", "text", "missing", "anim"}
    assert "is 40×30 but reference" in found["small"] and "transparent pixels" in found["transparent"]
    assert "no such image file" in found["missing"] and "cannot read" in found["text"]
    assert "frames" in found["anim"]
    assert header_failures([ScorePair(images["transparent"], images["ref"])], alpha="white") == {}


@pytest.mark.slow  # loads pe_alex once
def test_the_header_check_gives_the_engines_messages(images) -> None:
    from pe_iqa.scoring import score_pairs

    names = ["same", "small", "transparent", "text", "missing", "anim"]
    pairs = [ScorePair(images[name], images["ref"]) for name in names]
    result = score_pairs(pairs, ["pe_alex"], device="cpu", progress=False)
    engine = {index: message for index, _, message in result.failures}
    assert header_failures(pairs) == engine


def test_a_pair_that_cannot_be_scored_is_reported_before_any_metric_loads(images, monkeypatch, capsys) -> None:
    """Issue 27: a size mismatch was reported only after the model had loaded (about 8 s)."""
    def no_loading(*args, **kwargs):
        raise AssertionError("a metric was built")

    monkeypatch.setattr("pe_iqa.scoring.engine.build_metric", no_loading)
    assert main(["score", "-t", str(images["small"]), "-r", str(images["ref"]), "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "mean (0 of 1 pair)" in captured.out
    assert "no pair scored: the only pair failed" in captured.err and "is 40×30 but reference" in captured.err
    assert "Traceback" not in captured.err and "loaded" not in captured.err


def test_some_failing_pairs_are_named_before_the_metrics_load(images, tmp_path, monkeypatch, capsys) -> None:
    dist, ref = tmp_path / "dist", tmp_path / "refs"
    dist.mkdir()
    ref.mkdir()
    for name, source in (("a.png", "small"), ("b.png", "same")):
        (dist / name).write_bytes(images[source].read_bytes())
        (ref / name).write_bytes(images["ref"].read_bytes())

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pe_iqa.scoring.engine.build_metric", stop)
    assert main(["score", "-t", str(dist), "-r", str(ref), "--device", "cpu", "--no-progress"]) == 130
    err = capsys.readouterr().err
    assert "1 pair of 2 cannot be scored (first: pair 0" in err and "is 40×30 but reference" in err

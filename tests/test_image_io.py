"""Reading images to (1, 3, H, W) tensors in [0, 1], pairing folders, and the bundled sample."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from pe_iqa.cli import SAMPLE_DIR
from pe_iqa.image_io import list_images, pair_images, read_image, read_pair

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def rgb_array() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


def test_read_image_matches_torchvision_to_tensor(tmp_path: Path, rgb_array: np.ndarray) -> None:
    path = _write(tmp_path / "x.png", rgb_array)
    image = read_image(path)
    assert image.shape == (1, 3, 12, 17) and image.dtype == torch.float32
    assert torch.equal(image[0], to_tensor(Image.open(path)))  # what pyiqa's imread2tensor computes
    assert torch.equal(image[0].mul(255).round().to(torch.uint8), torch.from_numpy(rgb_array).permute(2, 0, 1))


def test_read_image_converts_gray_rgba_and_16_bit(tmp_path: Path, rgb_array: np.ndarray) -> None:
    gray = rgb_array[..., 0]
    gray_image = read_image(_write(tmp_path / "g.png", gray))
    assert gray_image.shape == (1, 3, 12, 17)
    assert torch.equal(gray_image[0, 0], gray_image[0, 2])
    assert torch.allclose(gray_image[0, 1], torch.from_numpy(gray).float() / 255)

    rgba = np.concatenate([rgb_array, np.full((12, 17, 1), 7, np.uint8)], axis=2)
    assert torch.equal(read_image(_write(tmp_path / "a.png", rgba)), read_image(_write(tmp_path / "b.png", rgb_array)))

    deep = (np.arange(12 * 17, dtype=np.uint16).reshape(12, 17) * 300).astype(np.uint16)
    path16 = tmp_path / "d.png"
    Image.fromarray(deep).save(path16)
    image16 = read_image(path16)
    assert image16.shape == (1, 3, 12, 17)
    assert torch.allclose(image16[0, 0], torch.from_numpy(deep.astype(np.float64) / 65535).float(), atol=1e-7)


def test_read_image_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such image"):
        read_image(tmp_path / "missing.png")
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        read_image(fake)


def test_list_images_sorts_and_filters(tmp_path: Path, rgb_array: np.ndarray) -> None:
    for name in ("b.png", "a.JPG", "c.bmp"):
        Image.fromarray(rgb_array).save(tmp_path / name, format="PNG" if name.endswith("png") else None)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.bmp"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    with pytest.raises(FileNotFoundError, match="reference: no such file or folder"):
        list_images(tmp_path / "nope", "reference")
    with pytest.raises(ValueError, match="holds no images"):
        list_images(tmp_path / "sub")


def test_pair_images_by_sorted_name_and_count_mismatch(tmp_path: Path, rgb_array: np.ndarray) -> None:
    for name in ("2.png", "1.png"):
        _write(tmp_path / "dist" / name, rgb_array)
    for name in ("y.png", "x.png"):
        _write(tmp_path / "ref" / name, rgb_array)
    pairs = pair_images(tmp_path / "dist", tmp_path / "ref")
    assert [(d.name, r.name) for d, r in pairs] == [("1.png", "x.png"), ("2.png", "y.png")]
    assert pair_images(tmp_path / "dist" / "1.png", tmp_path / "ref" / "y.png") == [
        (tmp_path / "dist" / "1.png", tmp_path / "ref" / "y.png")
    ]
    with pytest.raises(ValueError, match=r"same number of images.*got 2 .* and 1"):
        pair_images(tmp_path / "dist", tmp_path / "ref" / "x.png")
    with pytest.raises(FileNotFoundError, match="distorted"):
        pair_images(tmp_path / "none", tmp_path / "ref")


def test_read_pair_checks_sizes(tmp_path: Path, rgb_array: np.ndarray) -> None:
    a = _write(tmp_path / "a.png", rgb_array)
    b = _write(tmp_path / "b.png", rgb_array[:10])
    dist, ref = read_pair(a, a)
    assert torch.equal(dist, ref)
    with pytest.raises(ValueError, match=r"17×12 .* 17×10"):
        read_pair(a, b)


def test_bundled_sample_pairs_and_size() -> None:
    pairs = pair_images(SAMPLE_DIR / "distorted", SAMPLE_DIR / "reference")
    assert len(pairs) == 6
    assert all(d.name == r.name for d, r in pairs)
    reference = read_image(pairs[0][1])
    for dist_path, ref_path in pairs:
        dist, ref = read_pair(dist_path, ref_path)
        assert dist.shape == (1, 3, 256, 256)
        assert torch.equal(ref, reference)  # one reference under every name
        assert not torch.equal(dist, ref)
    total = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*.png"))
    assert total <= 1.5 * 1024 * 1024
    assert "public domain" in (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")


def test_make_sample_reproduces_the_blur_and_noise_images() -> None:
    pytest.importorskip("skimage", reason="scripts/make_sample.py draws the picture from scikit-image")
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    images = module.build()
    assert sorted(images) == sorted(str(p.relative_to(SAMPLE_DIR)) for p in SAMPLE_DIR.rglob("*.png"))
    for relative, array in images.items():
        on_disk = np.asarray(Image.open(SAMPLE_DIR / relative).convert("RGB"))
        if "jpeg" in relative:  # depends on the libjpeg bundled with Pillow
            assert np.abs(on_disk.astype(int) - array).mean() < 2
        else:
            assert np.array_equal(on_disk, array), relative

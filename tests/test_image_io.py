"""The one image reader: documented dtype semantics, refusals with one clear error, folder listing and pairing."""

from __future__ import annotations

import importlib.util
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from pe_iqa.cli import SAMPLE_DIR
from pe_iqa.image_io import (
    ImageReadError,
    PairingWarning,
    decode_image,
    list_images,
    pair_images,
    read_image,
    read_pair,
)

REPO = Path(__file__).resolve().parents[1]


def _write(path: Path, array: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width × height`` (no real pixel data: the size check must come first)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture
def rgb_array() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(12, 17, 3), dtype=np.uint8)


def test_8_bit_rgb_is_exactly_torchvision_to_tensor(tmp_path: Path, rgb_array: np.ndarray) -> None:
    path = _write(tmp_path / "x.png", rgb_array)
    image = read_image(path)
    assert image.shape == (1, 3, 12, 17) and image.dtype == torch.float32 and image.is_contiguous()
    assert torch.equal(image[0], to_tensor(Image.open(path)))  # what pyiqa's imread2tensor computes
    assert torch.equal(image[0].mul(255).round().to(torch.uint8), torch.from_numpy(rgb_array).permute(2, 0, 1))
    decoded = decode_image(path)
    assert decoded.pixels.dtype == torch.uint8 and decoded.size == (12, 17) and decoded.orientation == 1


def test_gray_and_palette_become_rgb(tmp_path: Path, rgb_array: np.ndarray) -> None:
    gray = rgb_array[..., 0]
    image = read_image(_write(tmp_path / "g.png", gray))
    assert image.shape == (1, 3, 12, 17)
    assert torch.equal(image[0, 0], image[0, 2])
    assert torch.equal(image[0, 1], torch.from_numpy(gray).float() / 255)
    palette = Image.fromarray(rgb_array).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "p.png")
    assert torch.equal(read_image(tmp_path / "p.png")[0], to_tensor(palette.convert("RGB")))


def test_16_bit_gray_png_is_scaled_by_65535_not_clipped(tmp_path: Path) -> None:
    deep = (np.arange(12 * 17, dtype=np.uint32).reshape(12, 17) * 300).astype(np.uint16)
    path = _write(tmp_path / "d.png", deep)
    image = read_image(path)
    expected = torch.from_numpy(deep.astype(np.float32)) / 65535.0
    assert torch.equal(image[0, 0], expected) and torch.equal(image[0, 2], expected)
    # pyiqa's reader (Image.convert("RGB")) clips 16-bit values at 255: almost everything becomes white
    clipped = to_tensor(Image.open(path).convert("RGB"))[0]
    assert float((clipped == 1.0).float().mean()) > 0.9 and float((image[0, 0] == 1.0).float().mean()) < 0.01


def test_16_bit_tiff_and_pgm_are_scaled_by_65535(tmp_path: Path) -> None:
    tifffile = pytest.importorskip("tifffile")
    deep = (np.arange(6 * 5, dtype=np.uint32).reshape(6, 5) * 2000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "d.tif", deep)
    expected = torch.from_numpy(deep.astype(np.float32)) / 65535.0
    assert torch.equal(read_image(tmp_path / "d.tif")[0, 1], expected)
    _write(tmp_path / "d.pgm", deep)
    assert torch.equal(read_image(tmp_path / "d.pgm")[0, 1], expected)


def test_16_bit_rgb_is_read_at_8_bits_with_a_warning(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    deep = np.random.default_rng(1).integers(0, 65536, size=(4, 5, 3)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c.png"), deep[..., ::-1])  # cv2 writes BGR
    with pytest.warns(UserWarning, match="top 8 bits"):
        image = read_image(tmp_path / "c.png")
    expected = torch.from_numpy((deep >> 8).astype(np.uint8)).permute(2, 0, 1).float() / 255
    assert torch.equal(image[0], expected)


def test_float_tiff_in_unit_range_is_taken_as_is_and_otherwise_refused(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 20, dtype=np.float32).reshape(4, 5)
    _write(tmp_path / "ok.tif", values)
    assert torch.equal(read_image(tmp_path / "ok.tif")[0, 0], torch.from_numpy(values))
    for name, data in (("255.tif", values * 255), ("signed.tif", values * 2 - 1)):
        _write(tmp_path / name, data)
        with pytest.raises(ImageReadError, match=r"float pixels in \[.*does not guess"):
            read_image(tmp_path / name)
    nan = values.copy()
    nan[0, 0] = np.nan
    _write(tmp_path / "nan.tif", nan)
    with pytest.raises(ImageReadError, match="NaN"):
        read_image(tmp_path / "nan.tif")


def test_32_bit_integer_tiff_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "i32.tif", (np.arange(20, dtype=np.int32).reshape(4, 5) * 100_000))
    with pytest.raises(ImageReadError, match="32-bit integer"):
        read_image(tmp_path / "i32.tif")


def test_opaque_alpha_is_dropped(tmp_path: Path, rgb_array: np.ndarray) -> None:
    rgba = np.concatenate([rgb_array, np.full((12, 17, 1), 255, np.uint8)], axis=2)
    assert torch.equal(read_image(_write(tmp_path / "a.png", rgba)), read_image(_write(tmp_path / "b.png", rgb_array)))


def test_transparency_is_refused_unless_a_policy_is_chosen(tmp_path: Path, rgb_array: np.ndarray) -> None:
    alpha = np.full((12, 17, 1), 255, np.uint8)
    alpha[:6] = 0  # top half fully transparent
    path = _write(tmp_path / "t.png", np.concatenate([rgb_array, alpha], axis=2))
    with pytest.raises(ImageReadError, match=r"transparent pixels.*--alpha"):
        read_image(path)
    dropped = read_image(path, alpha="drop")
    assert torch.equal(dropped, read_image(_write(tmp_path / "rgb.png", rgb_array)))  # what pyiqa does
    white, black = read_image(path, alpha="white"), read_image(path, alpha="black")
    assert torch.equal(white[..., :6, :], torch.ones_like(white[..., :6, :]))
    assert torch.equal(black[..., :6, :], torch.zeros_like(black[..., :6, :]))
    assert torch.equal(white[..., 6:, :], dropped[..., 6:, :]) and torch.equal(black[..., 6:, :], dropped[..., 6:, :])
    with pytest.raises(ValueError, match="alpha must be one of"):
        read_image(path, alpha="ignore")


def test_a_fully_transparent_image_does_not_silently_equal_its_hidden_colours(tmp_path, rgb_array) -> None:
    """Issue 10.10: a fully transparent copy of the reference scored 0 against it (alpha silently dropped)."""
    hidden = np.concatenate([rgb_array, np.zeros((12, 17, 1), np.uint8)], axis=2)
    path = _write(tmp_path / "invisible.png", hidden)
    with pytest.raises(ImageReadError, match="100%"):
        read_image(path)
    assert not torch.equal(read_image(path, alpha="white"), read_image(_write(tmp_path / "r.png", rgb_array)))


def test_palette_transparency_follows_the_alpha_policy(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4))
    image.putpalette([0, 0, 0, 255, 255, 255] * 128)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png")
    with pytest.raises(ImageReadError, match="transparent"):
        read_image(tmp_path / "p.png")
    assert torch.equal(read_image(tmp_path / "p.png", alpha="white"), torch.ones(1, 3, 4, 4))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    array = np.zeros((4, 6, 3), np.uint8)
    array[0, 0] = 255  # a marked corner
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    image.save(tmp_path / "r.png", exif=exif)
    decoded = decode_image(tmp_path / "r.png")
    assert decoded.orientation == 6 and decoded.size == (6, 4)  # displayed: 4 wide, 6 high
    assert int(decoded.pixels[0, 0, -1]) == 255  # top-left moved to top-right
    plain = _write(tmp_path / "plain.png", np.zeros((6, 4, 3), np.uint8))
    with pytest.raises(ImageReadError, match=r"EXIF orientation 6.*cannot tell"):
        read_pair(tmp_path / "r.png", plain)
    dist, _ = read_pair(tmp_path / "r.png", tmp_path / "r.png")
    assert dist.shape == (1, 3, 6, 4)


def test_animated_images_are_refused_and_single_frames_read(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    for name in ("a.gif", "a.png"):
        with pytest.raises(ImageReadError, match="3 frames"):
            read_image(tmp_path / name)
    frames[0].save(tmp_path / "one.gif")
    assert read_image(tmp_path / "one.gif").shape == (1, 3, 8, 8)


def test_decompression_bomb_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    """Issue 10.7: a 20000×20000 PNG ended in a traceback."""
    with pytest.raises(ImageReadError, match=r"bomb\.png.*PE_IQA_MAX_IMAGE_PIXELS"):
        read_image(_png_claiming(tmp_path / "bomb.png", 20_000, 20_000))
    small = _write(tmp_path / "s.png", np.zeros((20, 30, 3), np.uint8))
    monkeypatch.setenv("PE_IQA_MAX_IMAGE_PIXELS", "500")
    with pytest.raises(ImageReadError, match=r"30×20 = 0 megapixels, above the limit"):
        read_image(small)
    monkeypatch.setenv("PE_IQA_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="PE_IQA_MAX_IMAGE_PIXELS must be a whole number of pixels >= 0"):
        read_image(small)


def test_unreadable_files_are_one_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such image"):
        read_image(tmp_path / "missing.png")
    fake = tmp_path / "fake.png"
    fake.write_text("not an image")
    with pytest.raises(ImageReadError, match=r"cannot read .*fake\.png"):
        read_image(fake)
    truncated = _write(tmp_path / "t.png", np.zeros((64, 64, 3), np.uint8) + 7)
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ImageReadError, match=r"t\.png"):
        read_image(truncated)


def test_list_images_sorts_filters_and_skips_hidden_files(tmp_path: Path, rgb_array: np.ndarray) -> None:
    for name in ("b.png", "a.JPG", "c.bmp"):
        Image.fromarray(rgb_array).save(tmp_path / name, format="PNG" if name.endswith("png") else None)
    (tmp_path / "._b.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata, not an image
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    with pytest.warns(PairingWarning, match=r"skipped 1 hidden file.*\._b\.png"):
        assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.bmp"]
    assert list_images(tmp_path / "b.png") == [tmp_path / "b.png"]
    with pytest.raises(FileNotFoundError, match="reference: no such file or folder"):
        list_images(tmp_path / "nope", "reference")
    with pytest.raises(ValueError, match="holds no images"):
        list_images(tmp_path / "sub")


def test_pair_images_by_sorted_name_warns_when_names_differ(tmp_path: Path, rgb_array: np.ndarray) -> None:
    for name in ("2.png", "1.png"):
        _write(tmp_path / "dist" / name, rgb_array)
    for name in ("y.png", "x.png"):
        _write(tmp_path / "ref" / name, rgb_array)
    with pytest.warns(PairingWarning, match=r"2 of 2 pairs have different names \(first: 1\.png ↔ x\.png\)"):
        pairs = pair_images(tmp_path / "dist", tmp_path / "ref")
    assert [(d.name, r.name) for d, r in pairs] == [("1.png", "x.png"), ("2.png", "y.png")]
    for name in ("1.png", "2.png"):
        _write(tmp_path / "same" / name, rgb_array)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(pair_images(tmp_path / "dist", tmp_path / "same")) == 2  # same names: no warning
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
    with pytest.raises(ImageReadError, match=r"17×12 .* 17×10"):
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

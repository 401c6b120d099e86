"""Property test of the reader on arbitrary bytes: a clear ``ImageReadError`` or a correct tensor, never a crash."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pe_iqa.image_io import ImageReadError, read_image

_SIGNATURES = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"GIF89a", b"II*\x00", b"MM\x00*",
               b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P6\n", b"P5\n4 4\n65535\n"]


def _valid_image(kind: str) -> bytes:
    buffer = io.BytesIO()
    array = np.random.default_rng(len(kind)).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    Image.fromarray(array).save(buffer, format=kind)
    return buffer.getvalue()


_VALID = [_valid_image(kind) for kind in ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP", "PPM")]


def _check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.img"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except ImageReadError as error:
            assert str(path) in str(error)  # the message names the file
            return
        assert image.dtype == torch.float32 and image.ndim == 4 and image.shape[:2] == (1, 3)
        assert image.shape[2] > 0 and image.shape[3] > 0
        assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SIGNATURES), st.binary(max_size=512))
@pytest.mark.slow  # 3.3 s measured (full run, 2 shared cores)
def test_arbitrary_bytes_give_an_image_read_error_or_a_valid_tensor(signature: bytes, tail: bytes) -> None:
    _check(signature + tail)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(_VALID))), st.data())
@pytest.mark.slow  # 2.7 s measured (full run, 2 shared cores)
def test_damaged_real_images_give_an_image_read_error_or_a_valid_tensor(which: int, data) -> None:
    original = bytearray(_VALID[which])
    cut = data.draw(st.integers(0, len(original)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=8))
    for position, value in flips:
        original[position] = value
    _check(bytes(original[:cut] if data.draw(st.booleans()) else original))


@pytest.mark.parametrize("which", range(len(_VALID)))
def test_undamaged_images_read(which: int) -> None:
    _check(_VALID[which])

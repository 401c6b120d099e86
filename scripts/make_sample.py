"""Generate the bundled sample of ``pe-iqa score --sample`` (``src/pe_iqa/sample``).

One reference image, scikit-image's ``astronaut`` (NASA photograph of Eileen Collins, public domain), resized
to 256×256, and six distortions of increasing strength: Gaussian blur, additive white Gaussian noise and JPEG
compression, each at a mild (``_1``) and a strong (``_2``) level. ``reference/`` holds one copy of the
reference per distorted image, under the same file name, so the two folders pair by sorted name (also with
pyiqa's own command line).

Run from the repository root::

    python scripts/make_sample.py            # writes src/pe_iqa/sample/{reference,distorted}/*.png
    python scripts/make_sample.py --check    # regenerates in memory and compares with the files on disk

The blur and noise images are pixel-identical on every platform (fixed seed, scipy's Gaussian filter).
The JPEG images depend on the libjpeg bundled with Pillow and may differ by a few code values elsewhere.
Needs scikit-image (for the picture), scipy and Pillow.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "src" / "pe_iqa" / "sample"
SIZE = 256
SEED = 20240501

#: file stem → (kind, parameter): blur σ in pixels, noise σ in 8-bit code values, JPEG quality.
DISTORTIONS: dict[str, tuple[str, float]] = {
    "blur_1": ("blur", 1.0),
    "blur_2": ("blur", 2.5),
    "jpeg_1": ("jpeg", 30),
    "jpeg_2": ("jpeg", 8),
    "noise_1": ("noise", 8.0),
    "noise_2": ("noise", 24.0),
}


def reference_image() -> np.ndarray:
    """The reference: ``skimage.data.astronaut()`` resized (Lanczos) to ``SIZE``×``SIZE``, ``(H, W, 3)`` uint8."""
    from skimage import data

    image = Image.fromarray(data.astronaut())
    return np.asarray(image.resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.uint8)


def distort(reference: np.ndarray, kind: str, parameter: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one distortion to an ``(H, W, 3)`` uint8 image, returning uint8 of the same shape."""
    pixels = reference.astype(np.float64)
    if kind == "blur":
        out = gaussian_filter(pixels, sigma=(parameter, parameter, 0.0), mode="reflect")
    elif kind == "noise":
        out = pixels + rng.normal(0.0, parameter, size=pixels.shape)
    elif kind == "jpeg":
        buffer = io.BytesIO()
        Image.fromarray(reference).save(buffer, format="JPEG", quality=int(parameter))
        buffer.seek(0)
        return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.uint8)
    else:
        raise ValueError(f"kind must be 'blur', 'noise' or 'jpeg', got {kind!r}")
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def build() -> dict[str, np.ndarray]:
    """All sample images: ``{"reference/<stem>.png": array, "distorted/<stem>.png": array}``."""
    reference = reference_image()
    rng = np.random.default_rng(SEED)
    images = {}
    for stem, (kind, parameter) in DISTORTIONS.items():
        images[f"distorted/{stem}.png"] = distort(reference, kind, parameter, rng)
        images[f"reference/{stem}.png"] = reference
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="sample folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = parser.parse_args(argv)
    images = build()
    if args.check:
        differing = []
        for relative, array in images.items():
            path = args.out / relative
            on_disk = np.asarray(Image.open(path).convert("RGB")) if path.is_file() else None
            if on_disk is None or on_disk.shape != array.shape or np.abs(on_disk.astype(int) - array).max() > 0:
                differing.append(relative)
        print("sample up to date" if not differing else f"differs: {', '.join(differing)}")
        return 1 if differing else 0
    total = 0
    for relative, array in images.items():
        path = args.out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path, format="PNG", optimize=True)
        total += path.stat().st_size
        print(f"{path}  {path.stat().st_size // 1024} KiB")
    print(f"{len(images)} files, {total / 1024 / 1024:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

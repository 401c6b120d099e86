"""Reading image files and folders into ``(1, 3, H, W)`` float tensors in ``[0, 1]``, and pairing them.

A distorted path and a reference path are each a single image file or a folder of images. Folders are
paired by sorted file name (the i-th distorted image with the i-th reference image, as pyiqa's command line
does), so both folders must hold the same number of images. Pixels are read with Pillow and converted to RGB
(grayscale is repeated, alpha dropped, palettes expanded), then scaled to ``[0, 1]`` by the bit depth: the
same tensor ``torchvision.transforms.functional.to_tensor`` (and so pyiqa) produces for 8-bit images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["IMAGE_EXTENSIONS", "list_images", "pair_images", "read_image", "read_pair"]

#: File name endings (lower case) treated as images when a folder is listed.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def list_images(path: str | Path, name: str = "path") -> list[Path]:
    """The image files a path stands for: the file itself, or a folder's images sorted by file name.

    Args:
        path: an image file or a folder (not searched recursively).
        name: what the argument is called, for error messages (e.g. ``"distorted"``).

    Returns:
        Image paths; one for a file, every file in the folder with an :data:`IMAGE_EXTENSIONS` ending,
        sorted by name, for a folder.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if ``path`` is a folder without images.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file or folder: {path}")
    if not path.is_dir():
        raise ValueError(f"{name}: expected an image file or a folder, got {path}")
    images = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
                    key=lambda p: p.name)
    if not images:
        raise ValueError(f"{name}: folder {path} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return images


def pair_images(distorted: str | Path, reference: str | Path) -> list[tuple[Path, Path]]:
    """Pair distorted images with their references by sorted file name.

    Args:
        distorted: a distorted image file or a folder of them.
        reference: the reference image file or a folder with as many images as ``distorted``.

    Returns:
        ``[(distorted_path, reference_path), ...]``.

    Raises:
        FileNotFoundError: if either path does not exist.
        ValueError: if a folder holds no images or the two sides hold different numbers of images.
    """
    dist_files = list_images(distorted, "distorted")
    ref_files = list_images(reference, "reference")
    if len(dist_files) != len(ref_files):
        raise ValueError(
            f"distorted and reference must hold the same number of images to be paired by sorted name, got "
            f"{len(dist_files)} in {distorted} and {len(ref_files)} in {reference}"
        )
    return list(zip(dist_files, ref_files, strict=True))


def read_image(path: str | Path) -> torch.Tensor:
    """Read one image as an RGB float tensor.

    Args:
        path: an image file Pillow can read.

    Returns:
        ``(1, 3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if Pillow cannot read it as an image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode.startswith("I;16") or image.mode in ("I", "F"):  # 16-bit / float grayscale
                scale = 1.0 if image.mode == "F" else 65535.0
                gray = torch.from_numpy(np.asarray(image, dtype=np.float64) / scale).clamp(0.0, 1.0).float()
                return gray.expand(1, 3, *gray.shape).contiguous()
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"cannot read {path} as an image: {error}") from error
    # float32 division by 255, exactly as torchvision's to_tensor (and so pyiqa) computes it
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).unsqueeze(0).float().div(255.0).contiguous()


def read_pair(distorted: str | Path, reference: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a distorted image and its reference, checking they have the same size.

    Args:
        distorted: the distorted image file.
        reference: the reference image file.

    Returns:
        ``(distorted, reference)``, each ``(1, 3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        FileNotFoundError: if a file does not exist.
        ValueError: if a file is not an image or the two sizes differ.
    """
    dist, ref = read_image(distorted), read_image(reference)
    if dist.shape != ref.shape:
        raise ValueError(
            f"distorted {distorted} is {dist.shape[-1]}×{dist.shape[-2]} but reference {reference} is "
            f"{ref.shape[-1]}×{ref.shape[-2]} pixels; a full-reference metric needs equal sizes"
        )
    return dist, ref

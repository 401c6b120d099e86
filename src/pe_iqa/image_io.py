"""The one image reader of pe-iqa: files to ``(1, 3, H, W)`` float32 tensors in ``[0, 1]``, and folder pairing.

Every path of this package that reads an image file (``pe-iqa score``, :func:`pe_iqa.scoring.score_pairs`, the
benchmarks) goes through :func:`decode_image`, so one file gives one tensor — and one score — everywhere.

What a file becomes (Pillow decodes it; the rules are ours):

============================  ==================================================================================
stored as                     read as
============================  ==================================================================================
8-bit RGB / gray / palette    ``value / 255`` in float32 — bit for bit what ``torchvision``'s ``to_tensor`` (and
                              so pyiqa) computes; gray is repeated to three channels, palettes expanded
16-bit gray (PNG, TIFF, PGM)  ``value / 65535`` (pyiqa's reader clips these at 255/65535 instead: see below)
16-bit RGB (PNG, TIFF)        Pillow keeps the top 8 bits of each channel (a warning says so), then ``/ 255``
32-bit float (TIFF ``F``)     taken as is when every value is finite and within ``[0, 1]``; **refused** otherwise
                              (a float image holding 0..255 or [-1, 1] has no scale we could guess safely)
32-bit integer (TIFF ``I``)   **refused**: no standard white level (0..255? 0..65535? 0..2³²−1?)
alpha channel                 fully opaque: dropped. Any transparency: **refused** unless the caller chooses a
                              policy (``alpha="drop"`` as pyiqa does, or ``"white"``/``"black"`` to composite)
EXIF orientation              applied, as every image viewer does: images are scored as displayed. A pair whose
                              two orientations differ is refused (which one is meant cannot be known)
animated GIF/PNG/WebP,        **refused** (scoring the first frame silently is a surprise); camera MPO files
multi-page TIFF               (a JPEG with embedded previews) are read as their primary image
more than max pixels          **refused** before decoding (:func:`max_image_pixels`; Pillow's decompression-bomb
                              limit, 178,956,970 px, unless ``PE_IQA_MAX_IMAGE_PIXELS`` says otherwise)
anything else Pillow cannot   **refused** with one :class:`ImageReadError` line naming the file
decode
============================  ==================================================================================

No colour management: ICC profiles are ignored (as by pyiqa and torchvision). Pixels are the stored values.

Folders are paired by sorted file name (the i-th distorted image with the i-th reference, pyiqa's convention);
hidden files (names starting with ``.``, e.g. macOS ``._x.png`` metadata) are skipped with a warning, and a
:class:`PairingWarning` says when paired names differ.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from .env_options import env_number

__all__ = [
    "ALPHA_POLICIES",
    "IMAGE_EXTENSIONS",
    "DecodedImage",
    "ImageReadError",
    "PairingWarning",
    "decode_image",
    "decode_pair",
    "list_images",
    "max_image_pixels",
    "pair_images",
    "read_image",
    "read_pair",
    "size_mismatch_error",
    "to_float_image",
]

#: File name endings (lower case) treated as images when a folder is listed.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")
#: What to do with transparent pixels: refuse the image, drop alpha (pyiqa), composite over white or black.
ALPHA_POLICIES = ("error", "drop", "white", "black")
#: Environment variable overriding :func:`max_image_pixels` (an integer; ``0`` for no limit).
MAX_PIXELS_ENV = "PE_IQA_MAX_IMAGE_PIXELS"
_PILLOW_BOMB_ERROR_PIXELS = 178_956_970  # 2 × PIL.Image.MAX_IMAGE_PIXELS, where Pillow raises DecompressionBombError
_EXIF_ORIENTATION = 0x0112
_ORIENTATIONS = MappingProxyType({1: "upright", 2: "mirrored", 3: "rotated 180°", 4: "flipped", 5: "transposed",
                                  6: "rotated 90° clockwise", 7: "transversed", 8: "rotated 90° counter-clockwise"})


class ImageReadError(ValueError):
    """An image file that cannot be read as the documented ``[0, 1]`` RGB tensor (the message names the file)."""


class PairingWarning(UserWarning):
    """Folders paired by sorted name hold different names, or files were skipped while listing a folder."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image before scaling: ``pixels`` is ``(3, H, W)`` uint8 (8-bit files) or float32 in ``[0, 1]``."""

    pixels: torch.Tensor
    orientation: int = 1  #: the EXIF orientation that was applied (1 = none)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` as displayed."""
        return int(self.pixels.shape[-2]), int(self.pixels.shape[-1])


def max_image_pixels() -> int | None:
    """Largest ``width × height`` read (``None``: no limit): ``$PE_IQA_MAX_IMAGE_PIXELS`` or Pillow's bomb limit.

    Raises:
        ValueError: the environment variable is not a non-negative integer.
    """
    value = env_number(MAX_PIXELS_ENV)
    if value is None:
        return _PILLOW_BOMB_ERROR_PIXELS
    return int(value) or None


def to_float_image(pixels: torch.Tensor) -> torch.Tensor:
    """Scale decoded pixels to float32 ``[0, 1]`` (uint8: ``/ 255`` exactly as ``to_tensor``; float32: unchanged).

    Works on any device and batch shape, so the scoring pipeline can move compact uint8 batches to a GPU first.

    Example:
        >>> to_float_image(torch.tensor([0, 51, 255], dtype=torch.uint8)).tolist()
        [0.0, 0.20000000298023224, 1.0]
    """
    if pixels.dtype == torch.uint8:
        return pixels.float().div_(255.0)  # the same values as ``.div(255.0)``, one buffer fewer
    if pixels.dtype == torch.float32:
        return pixels
    raise TypeError(f"decoded pixels are uint8 or float32, got {pixels.dtype}")


def _open_header_only(path: Path):
    """Open ``path`` like :func:`PIL.Image.open` (the header is read, pixels later) but without Pillow's own
    decompression-bomb check, which reads a process-wide setting: the caller checks the size against its limit."""
    from PIL import Image

    Image.init()  # every format plugin, as Image.open ends up loading for an unknown prefix
    with open(path, "rb") as probe:
        prefix = probe.read(16)
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        accepted = accept is None or accept(prefix)
        if not accepted or isinstance(accepted, (str, bytes)):  # a str: a format that refuses with a reason
            continue
        handle = open(path, "rb")
        try:
            image = factory(handle, str(path))
        except (SyntaxError, IndexError, TypeError, struct.error, OSError):
            handle.close()
            continue
        image._exclusive_fp = True
        return image
    raise Image.UnidentifiedImageError(f"cannot identify image file {str(path)!r}")


def _open_checked(path: Path):
    from PIL import Image

    limit = max_image_pixels()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
        try:
            if limit is not None and limit <= _PILLOW_BOMB_ERROR_PIXELS:  # Pillow's check is the weaker one
                image = Image.open(path)
            else:  # the user allows more than Pillow's default: never by changing Pillow's process-wide setting
                image = _open_header_only(path)
        except Image.DecompressionBombError as error:
            raise ImageReadError(f"{path}: {error}; set {MAX_PIXELS_ENV} to read larger images") from None
    width, height = image.size
    if limit is not None and width * height > limit:
        image.close()
        raise ImageReadError(
            f"{path} is {width}×{height} = {width * height / 1e6:.0f} megapixels, above the limit of "
            f"{limit / 1e6:.0f} (a decompression-bomb guard); set {MAX_PIXELS_ENV} to read larger images"
        )
    if width == 0 or height == 0:
        image.close()
        raise ImageReadError(f"{path} is {width}×{height} pixels: empty")
    return image


def _check_frames(path: Path, image) -> None:
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
        raise ImageReadError(
            f"{path} holds {frames} frames ({image.format}); pe-iqa scores still images and will not pick one "
            f"for you: extract the frame to score (e.g. PIL: Image.open(p).seek(i); .save('frame.png'))"
        )


def _integer_gray(path: Path, image) -> np.ndarray:
    """16-bit gray pixels as float32 in [0, 1] (``I;16*`` modes, or ``I`` from a 16-bit PNG/PGM/TIFF)."""
    if image.mode == "I":
        bits = None
        if image.format in ("PNG", "PPM"):  # at most 16 bits per sample (Pillow scales PGM maxval to 16 bits)
            bits = 16
        elif image.format == "TIFF":
            tags = getattr(image, "tag_v2", {})
            bits = tags.get(258, (None,))[0] if tags.get(339, (1,))[0] == 1 else None
        if bits != 16:
            raise ImageReadError(
                f"{path} holds 32-bit integer pixels ({image.format}); they have no standard white level "
                f"(0..255? 0..65535? 0..2^32-1?), so pe-iqa does not guess one: save it as 8- or 16-bit, or as a "
                f"float TIFF in [0, 1]"
            )
    elif image.mode.endswith("S"):
        raise ImageReadError(f"{path} holds signed 16-bit pixels ({image.mode}); save it as unsigned 8 or 16 bit")
    values = np.asarray(image).astype(np.float32)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ImageReadError(f"{path}: 16-bit pixels outside 0..65535 (found {values.min():g}..{values.max():g})")
    return values / np.float32(65535.0)


def _float_gray(path: Path, image) -> np.ndarray:
    values = np.array(image, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ImageReadError(f"{path} holds NaN or infinite float pixels")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > 1.0:
        raise ImageReadError(
            f"{path} holds float pixels in [{low:g}, {high:g}]; pe-iqa reads float images as [0, 1] and does not "
            f"guess another scale (0..255? [-1, 1]?): rescale it to [0, 1] first"
        )
    return values


def _composite(path: Path, rgba: np.ndarray, alpha: str) -> np.ndarray:
    opacity = rgba[..., 3]
    if opacity.min() == 255 or alpha == "drop":
        return rgba[..., :3]
    if alpha == "error":
        share = float((opacity < 255).mean())
        raise ImageReadError(
            f"{path} has transparent pixels ({share:.0%} of the image; a fully transparent image would score as "
            f"its hidden colours); choose how to read it: alpha='drop' (ignore alpha, as pyiqa does), 'white' or "
            f"'black' (composite over that background) — on the command line --alpha"
        )
    background = 255.0 if alpha == "white" else 0.0
    weight = opacity[..., None].astype(np.float32) / np.float32(255.0)
    mixed = rgba[..., :3].astype(np.float32) * weight + np.float32(background) * (np.float32(1.0) - weight)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def _warn_16_bit_rgb(path: Path, image) -> None:
    for tile in getattr(image, "tile", None) or []:
        args = getattr(tile, "args", None)
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and rawmode.startswith("RGB") and ";16" in rawmode:
            warnings.warn(f"{path} has 16 bits per colour channel; Pillow decodes it to the top 8 bits (as pyiqa "
                          f"does), so differences below 1/255 are not seen", stacklevel=4)
            return


def decode_image(path: str | Path, *, alpha: str = "error") -> DecodedImage:
    """Decode one image file into compact RGB pixels, applying the rules of this module's table.

    Args:
        path: an image file.
        alpha: one of :data:`ALPHA_POLICIES` for images with transparent pixels.

    Returns:
        A :class:`DecodedImage` (``(3, H, W)`` uint8, or float32 in ``[0, 1]`` for 16-bit and float files).

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: the file cannot be read as documented (the message says why and names the file).
    """
    if alpha not in ALPHA_POLICIES:
        raise ValueError(f"alpha must be one of {ALPHA_POLICIES}, got {alpha!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    from PIL import ImageOps

    try:
        with _open_checked(path) as image:
            _check_frames(path, image)
            _warn_16_bit_rgb(path, image)  # before anything loads the image (PNG's getexif() does)
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1) if image.format != "BMP" else 1
            orientation = orientation if orientation in _ORIENTATIONS else 1
            image.load()
            if orientation != 1:
                image = ImageOps.exif_transpose(image)
            if image.mode in ("F",):
                gray: np.ndarray | None = _float_gray(path, image)
            elif image.mode == "I" or image.mode.startswith("I;16"):
                gray = _integer_gray(path, image)
            else:
                gray = None
            if gray is not None:
                pixels = torch.from_numpy(np.ascontiguousarray(gray)).expand(3, *gray.shape).contiguous()
                return DecodedImage(pixels, orientation)
            has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
            if has_alpha:
                array = _composite(path, np.asarray(image.convert("RGBA")), alpha)
            else:
                array = np.asarray(image.convert("RGB"))
    except (ImageReadError, MemoryError):
        raise
    except Exception as error:  # Pillow raises many types on damaged files (OSError, SyntaxError, struct.error …)
        raise ImageReadError(f"cannot read {path} as an image: {type(error).__name__}: {error}") from error
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ImageReadError(f"cannot read {path} as an RGB image (decoded to {array.dtype} {array.shape})")
    return DecodedImage(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))), orientation)


def read_image(path: str | Path, *, alpha: str = "error") -> torch.Tensor:
    """Read one image as an RGB float tensor (see the module docstring for every file type's rule).

    Args:
        path: an image file.
        alpha: one of :data:`ALPHA_POLICIES` for images with transparent pixels.

    Returns:
        ``(1, 3, H, W)`` float32 in ``[0, 1]``, contiguous.

    Raises:
        FileNotFoundError: if the file does not exist.
        ImageReadError: (a ``ValueError``) if it cannot be read as documented.
    """
    return to_float_image(decode_image(path, alpha=alpha).pixels).unsqueeze(0).contiguous()


def decode_pair(distorted: str | Path, reference: str | Path, *,
                alpha: str = "error") -> tuple[DecodedImage, DecodedImage]:
    """Decode a distorted image and its reference, checking that they are comparable.

    Raises:
        FileNotFoundError: a file does not exist.
        ImageReadError: a file cannot be read, the EXIF orientations differ, or the sizes differ.
    """
    dist, ref = decode_image(distorted, alpha=alpha), decode_image(reference, alpha=alpha)
    if dist.orientation != ref.orientation:
        raise ImageReadError(
            f"distorted {distorted} is stored {_ORIENTATIONS[dist.orientation]} (EXIF orientation "
            f"{dist.orientation}) but reference {reference} {_ORIENTATIONS[ref.orientation]} ({ref.orientation}); "
            f"pe-iqa scores images as displayed and cannot tell which is meant: make the orientations agree"
        )
    if dist.size != ref.size:
        raise size_mismatch_error(distorted, reference, dist.size, ref.size)
    return dist, ref


def size_mismatch_error(distorted: str | Path, reference: str | Path, distorted_size: tuple[int, int],
                        reference_size: tuple[int, int]) -> ImageReadError:
    """The error of a pair whose images differ in size (``(height, width)`` each, as displayed)."""
    (dh, dw), (rh, rw) = distorted_size, reference_size
    return ImageReadError(f"distorted {distorted} is {dw}×{dh} but reference {reference} is {rw}×{rh} pixels; a "
                          f"full-reference metric needs equal sizes")


def read_pair(distorted: str | Path, reference: str | Path, *,
              alpha: str = "error") -> tuple[torch.Tensor, torch.Tensor]:
    """Read a distorted image and its reference (see :func:`decode_pair` for the checks).

    Returns:
        ``(distorted, reference)``, each ``(1, 3, H, W)`` float32 in ``[0, 1]``.

    Raises:
        FileNotFoundError: if a file does not exist.
        ImageReadError: if a file is not readable as documented or the two differ in size or orientation.
    """
    dist, ref = decode_pair(distorted, reference, alpha=alpha)
    return (to_float_image(dist.pixels).unsqueeze(0).contiguous(),
            to_float_image(ref.pixels).unsqueeze(0).contiguous())


def list_images(path: str | Path, name: str = "path") -> list[Path]:
    """The image files a path stands for: the file itself, or a folder's images sorted by file name.

    Hidden files (names starting with ``.``, such as macOS ``._x.png`` resource forks) are skipped with a
    :class:`PairingWarning`; sub-folders are not searched.

    Args:
        path: an image file or a folder.
        name: what the argument is called, for error messages (e.g. ``"distorted"``).

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
    found = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    hidden = sorted(p.name for p in found if p.name.startswith("."))
    if hidden:
        warnings.warn(f"{name}: skipped {len(hidden)} hidden file(s) in {path} (e.g. {hidden[0]}; names starting "
                      f"with '.', such as macOS '._' metadata files)", PairingWarning, stacklevel=2)
    images = sorted((p for p in found if not p.name.startswith(".")), key=lambda p: p.name)
    if not images:
        raise ValueError(f"{name}: folder {path} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return images


def pair_images(distorted: str | Path, reference: str | Path) -> list[tuple[Path, Path]]:
    """Pair distorted images with their references by sorted file name (pyiqa's convention).

    When both are folders and some paired names differ, a :class:`PairingWarning` names how many and the
    first such pair (the pairing is kept: ``a.png`` ↔ ``a_ref.png`` is a common layout).

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
    if Path(distorted).is_dir() and Path(reference).is_dir():
        differ = [(d.name, r.name) for d, r in zip(dist_files, ref_files, strict=True) if d.name != r.name]
        if differ:
            warnings.warn(
                f"paired by sorted file name, but {len(differ)} of {len(dist_files)} pairs have different names "
                f"(first: {differ[0][0]} ↔ {differ[0][1]}); use a pairs manifest (--pairs) to pair explicitly",
                PairingWarning, stacklevel=2,
            )
    return list(zip(dist_files, ref_files, strict=True))


def is_image_file(path: str | Path) -> bool:
    """Whether this reader recognises ``path`` as an image file (Pillow identifies its format from the header; no
    pixel is decoded). The writers ask this before replacing a file: TGA, PBM, anything the reader takes counts.

    Example:
        >>> import tempfile, os
        >>> text = os.path.join(tempfile.mkdtemp(), "scores.csv")
        >>> with open(text, "w") as f:
        ...     _ = f.write("distorted,reference,pe_alex,error\\n")
        >>> is_image_file(text)
        False
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                return bool(image.format)
    except Image.DecompressionBombError:
        return True  # an image too large to read is still an image
    except Exception:  # not a file, unreadable, or no format recognised it
        return False

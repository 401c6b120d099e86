"""Checks of the pairs named on the command line that need no network, run before the metrics load.

``pe-iqa score -t a.png -r b.png`` with images of different sizes used to report the failure only after the model
had loaded (about 8 s). :func:`header_failures` reads each image's header (Pillow opens lazily: no pixel is decoded,
except the pixels of an image with an alpha channel when ``--alpha error`` must know whether any is transparent) and
finds the failures that the scoring engine would report for that pair, with the same message
(:func:`pe_iqa.scoring.pipeline.describe_error` of the same error): a missing or unreadable file, one the reader
refuses (too many pixels, empty, several frames), transparent pixels under ``--alpha error``, different sizes.
It reports only failures it is sure of: a pair it passes may still fail while scoring (a file damaged after its
header), never the other way round. (One message may differ: PNGs whose sizes differ however they are displayed
are reported as stored, where a rare EXIF chunk after the pixels would make the engine name the orientation.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["header_failures"]

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_EXIF_ORIENTATION = 0x0112
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def _header(path: Path, alpha: str) -> tuple[tuple[int, int], int | None]:
    """``((height, width) as stored, EXIF orientation or None if unknown without decoding)`` of ``path``.

    Raises:
        FileNotFoundError, ImageReadError: as :func:`pe_iqa.image_io.decode_image` would for this file.
    """
    from ..image_io import ImageReadError, _check_frames, _open_checked, decode_image

    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        with _open_checked(path) as image:
            _check_frames(path, image)
            width, height = image.size
            if image.format == "BMP":
                orientation: int | None = 1
            elif image.format == "PNG" and "exif" not in image.info:
                orientation = None  # Pillow would decode the image to look for a late eXIf chunk
            else:
                orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    except (ImageReadError, MemoryError):
        raise
    except Exception as error:  # the reader's own wrapping of Pillow's many error types
        raise ImageReadError(f"cannot read {path} as an image: {type(error).__name__}: {error}") from error
    if has_alpha and alpha == "error":
        decode_image(path, alpha=alpha)  # raises the reader's message if a pixel is transparent
    if orientation not in range(1, 9):
        orientation = 1 if orientation is not None else None
    return (height, width), orientation


def _check_pair(distorted: Path, reference: Path, alpha: str) -> None:
    from ..image_io import size_mismatch_error

    dist_size, dist_orientation = _header(Path(distorted), alpha)
    ref_size, ref_orientation = _header(Path(reference), alpha)
    if None in (dist_orientation, ref_orientation):  # a PNG: an eXIf chunk after the pixels is legal but rare
        if sorted(dist_size) == sorted(ref_size):
            return  # equal up to a rotation: the engine decides
        dist_orientation = dist_orientation or 1  # differ however displayed: a failure, reported as stored
        ref_orientation = ref_orientation or 1
    if dist_orientation != ref_orientation:
        return  # the engine reports it (a differing orientation has its own message)
    if dist_orientation in _TRANSPOSED:
        dist_size, ref_size = dist_size[::-1], ref_size[::-1]
    if dist_size != ref_size:
        raise size_mismatch_error(distorted, reference, dist_size, ref_size)


def header_failures(pairs: Sequence, alpha: str = "error") -> dict[int, str]:
    """``{index: message}`` of the pairs that cannot be scored, found from the images' headers.

    Args:
        pairs: :class:`~pe_iqa.scoring.ScorePair` objects (``distorted``, ``reference``).
        alpha: the reader's alpha policy (:data:`pe_iqa.image_io.ALPHA_POLICIES`).

    Returns:
        The message the scoring engine gives each such pair.
    """
    from ..image_io import ImageReadError
    from ..scoring.pipeline import describe_error

    failures = {}
    for index, pair in enumerate(pairs):
        try:
            _check_pair(pair.distorted, pair.reference, alpha)
        except (FileNotFoundError, ImageReadError, PermissionError) as error:
            failures[index] = describe_error(error)
    return failures

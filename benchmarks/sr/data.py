"""Images of the super-resolution experiment: openly licensed, available offline, split train / held-out.

Sources (never copied into the repository; read where they are installed):

* the LIVE Release 2 reference images (``<LIVE root>/databaserelease2/refimgs/*.bmp``; LIVE's copyright notice
  permits research use with acknowledgement);
* images bundled with scikit-image (``skimage.data``): NASA public-domain (``astronaut``, ``rocket``), CC0
  photographs (``camera``, ``chelsea``, ``coffee``), CC0 textures (``brick``, ``grass``, ``gravel``) and images
  without known copyright restrictions (``coins``, ``moon``, ``immunohistochemistry``). Grayscale images are
  repeated to RGB;
* any image file the user names (``file:<path>``), e.g. a folder of openly licensed validation images.

A held-out set of 20 or more openly licensed images cannot be assembled offline here: scikit-image 0.26 bundles 26
loadable ``skimage.data`` images (the others need a download), 8 are training images, ``cat`` is the same photograph
as ``chelsea``, and most of the rest are synthetic or not photographs (``binary_blobs``, ``checkerboard``, ``horse``,
``logo``, ``colorwheel``, ``shepp_logan_phantom``, the 25×25-px ``lfw_subset``); the shared LIVE copy holds 5
references, 3 of them training images. :data:`EXTENDED_HELD_OUT` lists the 12 usable ones; ``file:`` entries extend
it.

Degradation (the usual bicubic ×s protocol): the high-resolution image ``HR`` is cropped to a multiple of ``s``,
downscaled with antialiased bicubic interpolation, quantised to 8 bits (``LR``), and upscaled back with bicubic
interpolation (``ILR``, the VDSR input). Training patches are aligned crops of ``(ILR, HR)`` with a random
flip/rotation; held-out images are never sampled for training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets.live import DEFAULT_ROOT

__all__ = ["EXTENDED_HELD_OUT", "HELD_OUT", "TRAIN", "PatchSampler", "SRImage", "check_held_out", "degrade",
           "load_images"]


#: Training images: ``live:<name>`` is a LIVE reference, ``skimage:<name>`` a scikit-image bundled image.
TRAIN: tuple[str, ...] = (
    "live:buildings", "live:lighthouse", "live:sailing1",
    "skimage:astronaut", "skimage:rocket", "skimage:camera", "skimage:grass", "skimage:gravel", "skimage:coins",
    "skimage:moon", "skimage:immunohistochemistry",
)
#: Held-out evaluation images (never trained on): two LIVE photographs, two CC0 photographs, one CC0 texture.
HELD_OUT: tuple[str, ...] = ("live:monarch", "live:parrots", "skimage:coffee", "skimage:chelsea", "skimage:brick")
#: Every openly licensed image available offline here that is not a training image (a photograph or a natural
#: texture, at least 100 px): HELD_OUT plus scikit-image's ``clock``, ``hubble_deep_field`` (NASA), ``retina``,
#: ``cell``, ``page``, ``text`` and ``microaneurysms`` (CC0 or public domain as stated in the docstrings of
#: ``skimage.data``).
EXTENDED_HELD_OUT: tuple[str, ...] = (*HELD_OUT, "skimage:clock", "skimage:hubble_deep_field", "skimage:retina",
                                      "skimage:cell", "skimage:page", "skimage:text", "skimage:microaneurysms")
#: scikit-image names of one photograph (``cat`` is ``chelsea``).
_SAME_IMAGE = {"skimage:cat": "skimage:chelsea"}


def check_held_out(train: Sequence[str], held_out: Sequence[str]) -> None:
    """Raise ``ValueError`` if a held-out image is also a training image (aliases of one photograph included)."""
    canonical = {_SAME_IMAGE.get(s, s) for s in train}
    shared = sorted(s for s in held_out if _SAME_IMAGE.get(s, s) in canonical)
    if shared:
        raise ValueError(f"held-out images also used for training: {shared}")
    if len({_SAME_IMAGE.get(s, s) for s in held_out}) != len(held_out):
        raise ValueError(f"held-out images listed twice: {list(held_out)}")


@dataclass
class SRImage:
    """One image at both resolutions: ``hr`` and ``ilr`` are ``(1, 3, H, W)`` float32 in ``[0, 1]``."""

    name: str
    hr: torch.Tensor
    ilr: torch.Tensor


def _read(source: str, root: Path) -> torch.Tensor:
    kind, _, name = source.partition(":")
    if kind == "live":
        from pe_iqa.image_io import read_image

        return read_image(root / "databaserelease2" / "refimgs" / f"{name}.bmp")
    if kind == "skimage":
        import skimage.data

        array = np.asarray(getattr(skimage.data, name)())
        if array.ndim == 2:
            array = np.repeat(array[..., None], 3, axis=2)
        array = array[..., :3].astype(np.float32) / 255.0
        return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).unsqueeze(0)
    if kind == "file":
        from pe_iqa.image_io import read_image

        return read_image(Path(name))
    raise ValueError(f"unknown image source {source!r} (expected live:<name>, skimage:<name> or file:<path>)")


def degrade(hr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hr cropped to a multiple of scale, ILR)``: bicubic ↓scale (antialiased), 8-bit LR, bicubic ↑scale."""
    h, w = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
    hr = hr[..., :h, :w].contiguous()
    lr = F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    lr = (lr.clamp(0, 1) * 255).round() / 255
    ilr = F.interpolate(lr, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return hr, ilr


def load_images(sources: Sequence[str], scale: int, crop: int | None = None,
                root: Path | None = None) -> tuple[list[SRImage], dict[str, str]]:
    """Load and degrade images; those that cannot be read are skipped and reported.

    Args:
        sources: ``live:<name>`` / ``skimage:<name>`` / ``file:<path>`` entries.
        scale: the super-resolution factor.
        crop: if given, a centred ``crop × crop`` HR region (before degradation; for quick runs).
        root: LIVE root (default :data:`benchmarks.datasets.live.DEFAULT_ROOT`: ``$PE_IQA_LIVE_ROOT`` or
            ``../shared/data/LIVE`` beside the checkout).

    Returns:
        ``(images, missing)`` with ``missing = {source: reason}``.
    """
    root = root or DEFAULT_ROOT
    images, missing = [], {}
    for source in sources:
        try:
            hr = _read(source, root)
        except (OSError, ValueError, AttributeError, ModuleNotFoundError) as error:
            missing[source] = f"{type(error).__name__}: {error}"
            continue
        if crop is not None:
            top, left = max(0, (hr.shape[-2] - crop) // 2), max(0, (hr.shape[-1] - crop) // 2)
            hr = hr[..., top:top + crop, left:left + crop]
        hr, ilr = degrade(hr, scale)
        images.append(SRImage(source, hr, ilr))
    return images, missing


class PatchSampler:
    """Random aligned ``(ILR, HR)`` patches of the training images, drawn reproducibly from a seed.

    An image is drawn with probability proportional to its area, then a uniform position and one of the
    8 flips/rotations.
    """

    def __init__(self, images: Sequence[SRImage], patch: int, seed: int) -> None:
        usable = [im for im in images if min(im.hr.shape[-2:]) >= patch]
        if not usable:
            raise ValueError(f"no training image is at least {patch} px on each side")
        self.images, self.patch = usable, patch
        areas = np.array([im.hr.shape[-2] * im.hr.shape[-1] for im in usable], dtype=np.float64)
        self.probabilities = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ilr, hr)`` patches, each ``(size, 3, patch, patch)``."""
        inputs, targets = [], []
        for index in self.rng.choice(len(self.images), size=size, p=self.probabilities):
            image = self.images[index]
            top = int(self.rng.integers(0, image.hr.shape[-2] - self.patch + 1))
            left = int(self.rng.integers(0, image.hr.shape[-1] - self.patch + 1))
            k, flip = int(self.rng.integers(0, 4)), bool(self.rng.integers(0, 2))
            pair = []
            for tensor in (image.ilr, image.hr):
                crop = tensor[0, :, top:top + self.patch, left:left + self.patch]
                crop = torch.rot90(crop, k, dims=(1, 2))
                pair.append(crop.flip(2) if flip else crop)
            inputs.append(pair[0])
            targets.append(pair[1])
        return torch.stack(inputs).contiguous(), torch.stack(targets).contiguous()

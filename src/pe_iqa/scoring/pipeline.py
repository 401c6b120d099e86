"""The input side of a scoring run: decoding in ``DataLoader`` workers, same-size batches, reference features.

* :class:`PairDataset` decodes one pair per item with :func:`pe_iqa.image_io.decode_pair` (the one reader); a
  pair that cannot be read becomes an item carrying its error, so one bad file never stops the loader. Paths
  are kept in one bytes buffer, not millions of Python objects, so forked workers do not copy them.
* :func:`pair_batches` yields lists of decoded items (``batch_size`` per list), decoded by ``workers``
  processes, pinned in page-locked memory when the device is a GPU; :func:`same_size_groups` splits a list
  into same-size groups that can be stacked into one batch.
* :class:`ReferenceFeatureCache` keeps reference features by path, least recently used first out, within a byte
  budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..image_io import decode_pair, to_float_image
from .pairs import ScorePair

__all__ = ["DecodedPair", "PairDataset", "ReferenceFeatureCache", "pair_batches", "same_size_groups", "stack_group"]


class _PathTable:
    """Strings in one UTF-8 buffer plus offsets: cheap to share with forked workers (no per-item refcounts)."""

    def __init__(self, texts: Sequence[str]) -> None:
        encoded = [t.encode("utf-8", "surrogateescape") for t in texts]
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=self._offsets[1:])
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)

    def __getitem__(self, index: int) -> str:
        start, end = self._offsets[index], self._offsets[index + 1]
        return self._buffer[start:end].tobytes().decode("utf-8", "surrogateescape")


@dataclass
class DecodedPair:
    """One item of :class:`PairDataset`: ``distorted``/``reference`` pixels, or ``error`` if it could not be read."""

    index: int
    distorted: torch.Tensor | None
    reference: torch.Tensor | None
    error: str = ""

    def pin_memory(self) -> DecodedPair:
        """The same item in page-locked memory (called by the ``DataLoader``'s pinning thread)."""
        if self.distorted is None:
            return self
        return DecodedPair(self.index, self.distorted.pin_memory(), self.reference.pin_memory(), self.error)


class PairDataset(Dataset):
    """Decodes the pairs ``indices`` of ``pairs`` (item ``k`` is pair ``indices[k]``).

    Items keep the compact decoded pixels (uint8 for 8-bit files: 4× fewer bytes through the workers' shared
    memory and the host-to-device copy); :func:`stack_group` scales them on the device, with the same operation as
    :func:`~pe_iqa.image_io.read_image`.

    Args:
        pairs: all pairs of the run.
        indices: which of them to decode, in order.
        alpha: the reader's alpha policy (see :data:`pe_iqa.image_io.ALPHA_POLICIES`).
    """

    def __init__(self, pairs: Sequence[ScorePair], indices: Sequence[int], alpha: str = "error") -> None:
        self._indices = np.asarray(indices, dtype=np.int64)
        self._distorted = _PathTable([str(pairs[i].distorted) for i in self._indices])
        self._reference = _PathTable([str(pairs[i].reference) for i in self._indices])
        self.alpha = alpha

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, item: int) -> DecodedPair:
        index = int(self._indices[item])
        try:
            dist, ref = decode_pair(self._distorted[item], self._reference[item], alpha=self.alpha)
        except Exception as error:  # report the pair, keep the run (the message names the file)
            return DecodedPair(index, None, None, describe_error(error))
        return DecodedPair(index, dist.pixels, ref.pixels)


def describe_error(error: BaseException, first_line: bool = False) -> str:
    """A pair's error as one table cell: the message (prefixed with the type unless it is a ``ValueError`` or
    ``FileNotFoundError``, whose messages name the problem), optionally only its first line."""
    text = str(error)
    if first_line:
        text = text.strip().splitlines()[0] if text.strip() else ""
    text = text or type(error).__name__
    if isinstance(error, (FileNotFoundError, ValueError)):
        return text
    return f"{type(error).__name__}: {text}"


def _keep_list(items: list[DecodedPair]) -> list[DecodedPair]:
    return items


def pair_batches(dataset: PairDataset, batch_size: int, workers: int, pin_memory: bool) -> Iterator[list[DecodedPair]]:
    """Lists of ``batch_size`` decoded pairs, in dataset order, decoded by ``workers`` processes (0: here)."""
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_keep_list,
        prefetch_factor=max(2, 8 // batch_size) if workers > 0 else None, persistent_workers=False,
        pin_memory=pin_memory,
    )
    yield from loader


def same_size_groups(items: Sequence[DecodedPair]) -> list[list[DecodedPair]]:
    """Readable items grouped by image size and the pixel types of both images, in first-appearance order.

    Both pixel types are part of the key: stacking an 8-bit image with a float one would promote the 8-bit values
    to floats without dividing by 255 (a silently wrong score).
    """
    groups: dict[tuple, list[DecodedPair]] = {}
    for item in items:
        if item.distorted is not None:
            key = (*item.distorted.shape, item.distorted.dtype, item.reference.dtype)
            groups.setdefault(key, []).append(item)
    return list(groups.values())


def stack_group(items: Sequence[DecodedPair], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A same-size group as two ``(N, 3, H, W)`` float32 batches in ``[0, 1]`` on ``device``."""
    non_blocking = device.type == "cuda"
    dist = torch.stack([item.distorted for item in items]) if len(items) > 1 else items[0].distorted.unsqueeze(0)
    ref = torch.stack([item.reference for item in items]) if len(items) > 1 else items[0].reference.unsqueeze(0)
    dist = to_float_image(dist.to(device, non_blocking=non_blocking))
    ref = to_float_image(ref.to(device, non_blocking=non_blocking))
    return dist, ref


class ReferenceFeatureCache:
    """Reference features by key, evicting the least recently used beyond ``max_bytes``.

    Example:
        >>> cache = ReferenceFeatureCache(max_bytes=64)
        >>> cache.put("a", [torch.zeros(8)])  # 32 bytes
        >>> cache.put("b", [torch.zeros(8)])
        >>> cache.put("c", [torch.zeros(8)])  # evicts "a"
        >>> cache.get("a") is None, cache.get("c") is not None, cache.bytes
        (True, True, 64)
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[object, tuple[list[torch.Tensor], int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: object) -> list[torch.Tensor] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[0]

    def put(self, key: object, features: list[torch.Tensor]) -> None:
        """Keep ``features`` (skipped when larger than the whole budget)."""
        size = sum(t.numel() * t.element_size() for t in features)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        while self._entries and self.bytes + size > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self.bytes -= evicted
        self._entries[key] = (features, size)
        self.bytes += size

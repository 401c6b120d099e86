"""The input side of a scoring run: decoding in ``DataLoader`` workers, same-size batches, reference features.

* :class:`ShardDataset` reads one shard of the pairs as a stream and decodes them with
  :func:`pe_iqa.image_io.decode_pair` (the one reader); a pair that cannot be read becomes an item carrying its
  error, so one bad file never stops the loader. No list of paths is held: each worker reads the manifest itself.
* :func:`pair_batches` yields lists of decoded items (``batch_size`` per list), decoded by ``workers``
  processes through a bounded queue, pinned in page-locked memory when the device is a GPU;
  :func:`same_size_groups` splits a list into same-size groups that can be stacked into one batch.
* :class:`ReferenceFeatureCache` keeps reference features by path, least recently used first out, within a byte
  budget.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..image_io import decode_pair, to_float_image
from .pairs import PairSource

__all__ = ["DecodedPair", "ReferenceFeatureCache", "ShardDataset", "decode_item", "image_stamp", "pair_batches",
           "same_size_groups", "stack_group"]


def image_stamp(path: str) -> str:
    """``"<size>:<mtime_ns>"`` of an image file (what ties a score to the file's content), ``""`` if it cannot be
    read."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return ""
    return f"{info.st_size}:{info.st_mtime_ns}"


@dataclass
class DecodedPair:
    """One decoded pair: ``distorted``/``reference`` pixels, or ``error`` if it could not be read.

    ``dist_path``/``ref_path`` are the files and ``stamps`` their :func:`image_stamp` taken just before decoding.
    """

    index: int
    distorted: torch.Tensor | None
    reference: torch.Tensor | None
    error: str = ""
    dist_path: str = ""
    ref_path: str = ""
    stamps: tuple[str, str] = ("", "")

    def pin_memory(self) -> DecodedPair:
        """The same item in page-locked memory (called by the ``DataLoader``'s pinning thread)."""
        if self.distorted is None:
            return self
        return DecodedPair(self.index, self.distorted.pin_memory(), self.reference.pin_memory(), self.error,
                           self.dist_path, self.ref_path, self.stamps)


def decode_item(index: int, dist_path: str, ref_path: str, alpha: str) -> DecodedPair:
    """Stamp and decode one pair with :func:`pe_iqa.image_io.decode_pair` (the one reader); a pair that cannot
    be read becomes an item carrying its error (the message names the file), so one bad file never stops a run."""
    stamps = (image_stamp(dist_path), image_stamp(ref_path))
    try:
        dist, ref = decode_pair(dist_path, ref_path, alpha=alpha)
    except Exception as error:  # report the pair, keep the run
        return DecodedPair(index, None, None, describe_error(error), dist_path, ref_path, stamps)
    return DecodedPair(index, dist.pixels, ref.pixels, "", dist_path, ref_path, stamps)


class ShardDataset(IterableDataset):
    """Batches of decoded pairs of one shard ``[start, stop)`` of a :class:`~pe_iqa.scoring.pairs.PairSource`,
    read as a stream, skipping the pairs ``done`` marks (non-zero; ``done[k]`` is pair ``start + k``).

    Each ``DataLoader`` worker reads the shard itself and decodes every ``num_workers``-th batch, so batches come
    back in shard order and no list of paths is ever built or copied. Items keep the compact decoded pixels (uint8
    for 8-bit files: 4× fewer bytes through the workers' shared memory and the host-to-device copy);
    :func:`stack_group` scales them on the device, with the same operation as :func:`~pe_iqa.image_io.read_image`.
    """

    def __init__(self, source: PairSource, start: int, stop: int, done: np.ndarray | None, batch_size: int,
                 alpha: str = "error") -> None:
        self.source, self.start, self.stop, self.done = source, start, stop, done
        self.batch_size, self.alpha = batch_size, alpha

    def __iter__(self) -> Iterator[list[DecodedPair]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        batch: list[tuple[int, str, str]] = []
        number = 0
        for index, distorted, reference, _ in self.source.cells(self.start, self.stop):
            if self.done is not None and self.done[index - self.start]:
                continue
            batch.append((index, distorted, reference))
            if len(batch) == self.batch_size:
                if number % workers == worker:
                    yield [decode_item(*item, self.alpha) for item in batch]
                batch, number = [], number + 1
        if batch and number % workers == worker:
            yield [decode_item(*item, self.alpha) for item in batch]


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


def pair_batches(dataset: ShardDataset, workers: int, pin_memory: bool) -> Iterator[list[DecodedPair]]:
    """The dataset's batches in order, decoded by ``workers`` processes (0: here); at most ``prefetch`` batches per
    worker wait decoded (a bounded queue: memory does not grow when decoding outpaces the network)."""
    loader = DataLoader(
        dataset, batch_size=None, num_workers=workers, collate_fn=_keep_list,
        prefetch_factor=max(2, 8 // dataset.batch_size) if workers > 0 else None, persistent_workers=False,
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

"""On-disk cache entries of measurements (tuning curves): versioned, checksummed, size-capped JSON, written atomically.

One file per (backbone, weights fingerprint, layer, analysis config), named by :meth:`TuningKey.filename`. The
payload holds named float64 arrays (base64 of little-endian bytes: an exact round trip) plus the key and the
configuration they were measured under; a SHA-256 checksum covers the payload. :func:`read_entry` checks, in order,
the file size (at most :data:`MAX_ENTRY_BYTES`), the JSON structure, the format version, the checksum, the key and
the arrays' encoding, and raises :class:`CacheEntryError` on any failure, so a corrupt, truncated, oversized,
foreign or stale file is rebuilt instead of trusted. (Whether the arrays fit the network they are for is checked by
:meth:`pe_iqa.tuning.TuningCurves.check` in :mod:`pe_iqa.ranking_lookup`.)

:func:`write_entry` writes atomically (:func:`~pe_iqa.safe_files.atomic_write`: a temporary file in the same folder,
fsynced, renamed over the target): concurrent writers each leave a complete file, the last one wins, and a reader never
sees a torn file.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..safe_files import atomic_write, path_safe_name

__all__ = ["FORMAT_VERSION", "MAX_ENTRY_BYTES", "CacheEntryError", "TuningKey", "default_cache_dir", "read_entry",
           "write_entry"]

FORMAT_VERSION = 1
#: Largest entry read (bytes). A VGG-16 relu5_3 entry (512 channels × 84 stimuli) is about 0.5 MB.
MAX_ENTRY_BYTES = 32 * 1024 * 1024


class CacheEntryError(ValueError):
    """A cache file exists but cannot be trusted (corrupt, truncated, oversized, foreign or another format)."""


@dataclass(frozen=True)
class TuningKey:
    """Identity of one layer's measurement.

    Attributes:
        backbone: canonical backbone name.
        weights_id: weights fingerprint (:attr:`pe_iqa.backbones.Backbone.weights_id`).
        layer: layer name.
        config_key: identity of the stimulus set (:meth:`pe_iqa.tuning.AnalysisConfig.key`, possibly prefixed by
            the kind of measurement).
    """

    backbone: str
    weights_id: str
    layer: str
    config_key: str

    def filename(self) -> str:
        """File name of the entry: ``<backbone>__<weights_id>__<layer>__<config_key>.json`` (path-safe)."""
        safe = path_safe_name(self.backbone)
        layer = self.layer.replace("/", "-")
        return f"{safe}__{self.weights_id}__{layer}__{self.config_key}.json"


def default_cache_dir() -> Path:
    """User cache folder: ``$PE_IQA_CACHE``, else ``$XDG_CACHE_HOME/pe_iqa``, else ``~/.cache/pe_iqa``.

    ``~`` and environment variables in ``$PE_IQA_CACHE`` are expanded (a shell does not expand a quoted ``~``).
    """
    configured = os.environ.get("PE_IQA_CACHE")
    if configured:
        return Path(os.path.expanduser(os.path.expandvars(configured)))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(os.path.expanduser(base)) / "pe_iqa"


def _encode(tensor: torch.Tensor) -> dict:
    array = tensor.detach().to("cpu", torch.float64).contiguous().numpy().astype("<f8")
    return {"shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def _decode(blob: object) -> torch.Tensor:
    if not (isinstance(blob, Mapping) and isinstance(blob.get("data"), str) and isinstance(blob.get("shape"), list)):
        raise ValueError("not an encoded array")
    shape = blob["shape"]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError(f"bad shape {shape!r}")
    array = np.frombuffer(base64.b64decode(blob["data"], validate=True), dtype="<f8")
    return torch.from_numpy(array.reshape(shape).copy())


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_entry(directory: str | os.PathLike[str], key: TuningKey, config: object,
                arrays: Mapping[str, torch.Tensor]) -> Path:
    """Atomically write one entry into ``directory`` (created if missing).

    Args:
        directory: the cache folder.
        key: the entry's identity.
        config: the measurement's configuration dataclass (stored for inspection).
        arrays: the named arrays (e.g. :meth:`pe_iqa.tuning.TuningCurves.arrays`).

    Returns:
        Path of the written file.

    Raises:
        OSError: if the folder cannot be created or written (read-only, full disk …); no partial file is left.
    """
    payload = {
        "format_version": FORMAT_VERSION,
        "key": dataclasses.asdict(key),
        "config": dataclasses.asdict(config),
        "tuning": {name: _encode(tensor) for name, tensor in arrays.items()},
        "torch_version": torch.__version__,
    }
    document = {"checksum": _checksum(payload), "payload": payload}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / key.filename()
    with atomic_write(target) as handle:
        json.dump(document, handle, separators=(",", ":"))
    return target


def read_entry(path: str | os.PathLike[str], key: TuningKey, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Read and verify one entry.

    Args:
        path: the file.
        key: the identity the caller expects.
        names: the arrays the entry must hold (others are an error).

    Returns:
        ``{name: float64 tensor}`` for ``names``.

    Raises:
        FileNotFoundError: if the file does not exist.
        CacheEntryError: if the file is larger than :data:`MAX_ENTRY_BYTES`, unreadable JSON, of another format
            version, has a checksum that does not match its payload, another key, or malformed arrays.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_ENTRY_BYTES:
        raise CacheEntryError(f"{path}: {size} bytes, more than the {MAX_ENTRY_BYTES} an entry may have")
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
        payload = document["payload"]
        checksum = document["checksum"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, RecursionError) as error:
        raise CacheEntryError(f"{path}: not a pe-iqa cache entry ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        version = payload.get("format_version") if isinstance(payload, dict) else None
        raise CacheEntryError(f"{path}: format version {version!r}, expected {FORMAT_VERSION}")
    if _checksum(payload) != checksum:
        raise CacheEntryError(f"{path}: checksum mismatch (corrupt or edited file)")
    if payload.get("key") != dataclasses.asdict(key):
        raise CacheEntryError(f"{path}: holds {payload.get('key')}, expected {dataclasses.asdict(key)}")
    blobs = payload.get("tuning")
    if not isinstance(blobs, dict) or sorted(blobs) != sorted(names):
        found = sorted(blobs) if isinstance(blobs, dict) else type(blobs).__name__
        raise CacheEntryError(f"{path}: holds arrays {found}, expected {sorted(names)}")
    try:
        return {name: _decode(blobs[name]) for name in names}
    except (ValueError, TypeError, binascii.Error) as error:
        raise CacheEntryError(f"{path}: malformed arrays ({error})") from None

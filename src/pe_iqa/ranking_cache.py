"""On-disk format of cached tuning curves: versioned, checksummed JSON written atomically.

One file per (backbone, weights fingerprint, layer, analysis config). The payload holds the tuning curves
as base64-encoded little-endian float64 arrays (exact round trip) plus the key and configuration they were
measured under; a SHA-256 checksum covers the payload. Reading verifies the format version, the key and the
checksum and raises :class:`CacheEntryError` on any mismatch, so a corrupt, truncated, foreign or stale file
is rebuilt instead of trusted. Writing goes to a temporary file in the same folder, is flushed and fsynced,
then renamed over the target (``os.replace``): concurrent writers each leave a complete file, the last one
wins, and a reader never sees a torn file.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .tuning import AnalysisConfig, TuningCurves

__all__ = ["FORMAT_VERSION", "CacheEntryError", "RankingKey", "default_cache_dir", "read_entry", "write_entry"]

FORMAT_VERSION = 1


class CacheEntryError(ValueError):
    """A cache file exists but cannot be trusted (corrupt, truncated, foreign, or another format version)."""


@dataclass(frozen=True)
class RankingKey:
    """Identity of one layer's tuning measurement.

    Attributes:
        backbone: canonical backbone name.
        weights_id: weights fingerprint (:attr:`pe_iqa.backbones.Backbone.weights_id`).
        layer: layer name.
        config_key: :meth:`pe_iqa.tuning.AnalysisConfig.key`.
    """

    backbone: str
    weights_id: str
    layer: str
    config_key: str

    def filename(self) -> str:
        """File name of the entry: ``<backbone>__<weights_id>__<layer>__<config_key>.json``."""
        safe = self.backbone.replace(":", "-").replace("/", "-")
        return f"{safe}__{self.weights_id}__{self.layer}__{self.config_key}.json"


def default_cache_dir() -> Path:
    """User cache folder: ``$PE_IQA_CACHE``, else ``$XDG_CACHE_HOME/pe_iqa``, else ``~/.cache/pe_iqa``."""
    if os.environ.get("PE_IQA_CACHE"):
        return Path(os.environ["PE_IQA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pe_iqa"


def _encode(tensor: torch.Tensor) -> dict:
    array = tensor.detach().to("cpu", torch.float64).contiguous().numpy().astype("<f8")
    return {"shape": list(array.shape), "data": base64.b64encode(array.tobytes()).decode("ascii")}


def _decode(blob: dict) -> torch.Tensor:
    array = np.frombuffer(base64.b64decode(blob["data"], validate=True), dtype="<f8")
    return torch.from_numpy(array.reshape(blob["shape"]).copy())


def _checksum(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_entry(directory: Path, key: RankingKey, config: AnalysisConfig, tuning: TuningCurves) -> Path:
    """Atomically write one entry into ``directory`` (created if missing).

    Args:
        directory: the cache folder.
        key: the entry's identity.
        config: the analysis configuration (stored for inspection).
        tuning: the measured tuning curves.

    Returns:
        Path of the written file.

    Raises:
        OSError: if the folder cannot be created or written (read-only, full disk …).
    """
    payload = {
        "format_version": FORMAT_VERSION,
        "key": dataclasses.asdict(key),
        "config": dataclasses.asdict(config),
        "tuning": {
            "frequencies": _encode(tuning.frequencies),
            "response_f": _encode(tuning.response_f),
            "orientations": _encode(tuning.orientations),
            "response_theta": _encode(tuning.response_theta),
        },
        "torch_version": torch.__version__,
    }
    document = {"checksum": _checksum(payload), "payload": payload}
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / key.filename()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; cache and shipped files are meant to be shared
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return target


def read_entry(path: Path, key: RankingKey) -> TuningCurves:
    """Read and verify one entry.

    Args:
        path: the file.
        key: the identity the caller expects.

    Returns:
        The stored tuning curves.

    Raises:
        FileNotFoundError: if the file does not exist.
        CacheEntryError: if the file is unreadable JSON, has another format version, another key, or a
            checksum that does not match its payload.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        payload = document["payload"]
        checksum = document["checksum"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise CacheEntryError(f"{path}: not a pe-iqa cache entry ({error})") from error
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        version = payload.get("format_version") if isinstance(payload, dict) else None
        raise CacheEntryError(f"{path}: format version {version!r}, expected {FORMAT_VERSION}")
    if _checksum(payload) != checksum:
        raise CacheEntryError(f"{path}: checksum mismatch (corrupt or edited file)")
    if payload.get("key") != dataclasses.asdict(key):
        raise CacheEntryError(f"{path}: holds {payload.get('key')}, expected {dataclasses.asdict(key)}")
    try:
        blobs = payload["tuning"]
        tuning = TuningCurves(
            _decode(blobs["frequencies"]), _decode(blobs["response_f"]),
            _decode(blobs["orientations"]), _decode(blobs["response_theta"]),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise CacheEntryError(f"{path}: malformed tuning arrays ({error})") from error
    if tuning.response_f.shape[0] != tuning.response_theta.shape[0]:
        raise CacheEntryError(f"{path}: inconsistent channel counts")
    return tuning

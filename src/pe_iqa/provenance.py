"""Where a number came from: one :class:`Provenance` record per metric, compared wherever results are combined.

A record holds everything that changes a metric's values besides the images themselves:

* ``metric``: the name asked for (``pe_alex``, ``lpips`` …) and ``kind``: ``"pe"`` or the provider (``"pyiqa"``);
* ``spec``: :meth:`~pe_iqa.spec.DistanceSpec.digest` of a PE distance (backbone, layers, weights tag, subset,
  x, normalisation, weighting, score, analysis configuration, data range, layer weights);
* ``weights_id``: the fingerprint of the backbone weights (:attr:`~pe_iqa.backbones.Backbone.weights_id`);
* ``selection``: a digest of the selected channels and their weights per layer (a changed ranking cache shows);
* ``dtype``: the precision the network computes in;
* ``version``: the version of what computed the value (``pe-iqa 0.2.0``; ``pyiqa 0.1.16`` for pyiqa's metrics);
* ``options``: run options that change values, e.g. the image reader's alpha policy and pixel limit, a pyiqa
  metric's options.

Records are plain data (:meth:`Provenance.to_dict` / :meth:`Provenance.from_dict`, JSON-ready) and are written
next to results: the CSV's sidecar ``<csv>.provenance.json`` (:func:`write_sidecar`), the journal's sidecar, the
TorchMetrics states, the ``--maps`` PNG text chunk, the benchmarks' result files. :meth:`Provenance.diff` names the
fields that differ, so a refusal is one line (:func:`describe_difference`).

Where results meet — ``--resume`` over a CSV or journals, the benchmark tables, TorchMetrics' ``load_state_dict``,
``merge_state`` and ``sync`` — they go through one function, :func:`combine_records`: same configuration → combine;
different → one-line refusal; missing, partial or unreadable record → unknown, never trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "PROVENANCE_FORMAT",
    "SIDECAR_SUFFIX",
    "Provenance",
    "ProvenanceError",
    "combine_records",
    "describe_difference",
    "pe_provenance",
    "read_sidecar",
    "selection_digest",
    "sidecar_path",
    "write_sidecar",
]

#: Version of the sidecar file layout (bumped when fields change meaning).
PROVENANCE_FORMAT = 1
#: Appended to a result file's name for its provenance sidecar.
SIDECAR_SUFFIX = ".provenance.json"


class ProvenanceError(ValueError):
    """Results made under different configurations were about to be combined (the message names the difference)."""


def _package_version() -> str:
    from . import __version__

    return f"pe-iqa {__version__}"


@dataclass(frozen=True)
class Provenance:
    """What produced a metric's values (see the module documentation for each field).

    Example:
        >>> a = Provenance("pe_alex", spec="1f…", options=(("alpha", "white"),))
        >>> b = dataclasses.replace(a, options=(("alpha", "black"),))
        >>> a.diff(b)
        ['options.alpha: white ≠ black']
        >>> Provenance.from_dict(a.to_dict()) == a
        True
    """

    metric: str
    kind: str = "pe"
    spec: str = ""
    weights_id: str = ""
    selection: str = ""
    dtype: str = ""
    version: str = ""
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        options = self.options.items() if isinstance(self.options, Mapping) else self.options
        object.__setattr__(self, "options", tuple(sorted((str(k), str(v)) for k, v in options)))

    def with_options(self, **options: object) -> Provenance:
        """A copy with run ``options`` added (or replaced); values are stored as text."""
        merged = dict(self.options)
        merged.update({name: str(value) for name, value in options.items()})
        return dataclasses.replace(self, options=tuple(merged.items()))

    def to_dict(self) -> dict[str, object]:
        """The record as JSON-ready data (``options`` as a dict)."""
        data = dataclasses.asdict(self)
        data["options"] = dict(self.options)
        return data

    @classmethod
    def from_dict(cls, data: object) -> Provenance:
        """A record from :meth:`to_dict`'s output.

        Raises:
            ProvenanceError: ``data`` is not such a record (missing or unknown fields, wrong types).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, Mapping) or "metric" not in data or set(data) - names:
            raise ProvenanceError(f"not a provenance record: {str(data)[:200]}")
        options = data.get("options", {})
        if not isinstance(options, Mapping) or not all(isinstance(data.get(n, ""), str) for n in names - {"options"}):
            raise ProvenanceError(f"not a provenance record: {str(data)[:200]}")
        return cls(**{**data, "options": tuple(options.items())})

    def diff(self, other: Provenance) -> list[str]:
        """The differing fields, ``"field: ours ≠ theirs"`` (options compared one by one), in field order."""
        found = []
        for f in dataclasses.fields(self):
            if f.name == "options":
                ours, theirs = dict(self.options), dict(other.options)
                for key in sorted(set(ours) | set(theirs)):
                    if ours.get(key) != theirs.get(key):
                        found.append(f"options.{key}: {ours.get(key, '(unset)')} ≠ {theirs.get(key, '(unset)')}")
            elif getattr(self, f.name) != getattr(other, f.name):
                found.append(f"{f.name}: {getattr(self, f.name) or '(unset)'} ≠ {getattr(other, f.name) or '(unset)'}")
        return found


def describe_difference(saved: Provenance, current: Provenance, limit: int = 3) -> str:
    """The first ``limit`` differences between a saved record and the current one, as one phrase."""
    found = saved.diff(current)
    more = f" (and {len(found) - limit} more)" if len(found) > limit else ""
    return "; ".join(found[:limit]) + more


def _as_record(saved: object) -> Provenance | None:
    """``saved`` as a record (a :class:`Provenance` or its :meth:`~Provenance.to_dict`), ``None`` if it is not one."""
    if isinstance(saved, Provenance):
        return saved
    try:
        return Provenance.from_dict(saved)
    except ProvenanceError:
        return None


def combine_records(saved: object, current: Provenance | Mapping[str, Provenance], where: str, remedy: str,
                    *, refuse_unknown: bool = False) -> str:
    """The one place where two results' records meet: may results made under ``saved`` be combined with ``current``?

    Every combination of results calls it (``--resume`` and journal sidecars, the benchmark tables, the TorchMetrics
    metric's ``load_state_dict``, ``merge_state`` and ``sync``); no other code compares records
    (``tests/test_combiner.py::test_only_the_combiner_compares_records``).

    * Same configuration: returns ``""`` (combine).
    * Different configuration: raises one line naming the first differences and the ``remedy``.
    * Unknown — ``saved`` missing (``None``), unreadable (not a record), or, when ``current`` is a mapping (output
      column → record), ``saved`` lacks a record for one of ``current``'s columns (``{"metrics": {}}``, only another
      metric's record): returns why, one phrase naming ``where``. Unknown is never the same: the caller scores
      again, or refuses (``refuse_unknown=True`` raises that phrase and the ``remedy``).

    Args:
        saved: the record stored with the earlier results (a :class:`Provenance`, its dict, or a mapping of them by
            column when ``current`` is a mapping).
        current: this run's record, or this run's records by output column.
        where: what holds the saved results (a file, "the incoming states", "rank 1"), for the message.
        remedy: what to do, for the message (``"resume with the same options, or delete it to start over"``).
        refuse_unknown: raise instead of returning when the saved record is unknown.

    Returns:
        ``""`` when the records agree, else why the saved record is unknown.

    Raises:
        ProvenanceError: the records differ (or are unknown with ``refuse_unknown``).

    Example:
        >>> a = Provenance("pe_alex", spec="1f", options={"alpha": "white"})
        >>> combine_records(a.to_dict(), a, "s.csv", "delete it")
        ''
        >>> combine_records({}, {"pe_alex": a}, "s.csv", "delete it")
        's.csv has no record for pe_alex'
        >>> try:
        ...     combine_records(a.with_options(alpha="black"), a, "s.csv", "delete it")
        ... except ProvenanceError as error:
        ...     print(error)  # doctest: +ELLIPSIS
        s.csv holds pe_alex scores made under another configuration (options.alpha: black ≠ white; ...): delete it
    """
    if isinstance(current, Provenance):
        pairs = {current.metric: (saved, current)}
    else:
        given = saved if isinstance(saved, Mapping) else {}
        pairs = {name: (given.get(name), record) for name, record in current.items()}
    unknown, differences = [], []
    for name, (theirs, ours) in pairs.items():
        record = _as_record(theirs)
        if record is None:
            unknown.append(f"{where} has no record for {name}" if theirs is None
                           else f"{where} holds no valid record for {name} ({str(theirs)[:120]})")
        elif record != ours:
            differences.append((record.metric if isinstance(current, Provenance) else name,
                                describe_difference(record, ours)))
    if differences:
        name, difference = differences[0]
        others = f" (and {', '.join(n for n, _ in differences[1:])})" if len(differences) > 1 else ""
        raise ProvenanceError(f"{where} holds {name} scores made under another configuration{others} "
                              f"({difference}; saved ≠ now): {remedy}")
    if unknown and refuse_unknown:
        raise ProvenanceError(f"{'; '.join(unknown)}, so it may come from another configuration: {remedy}")
    return "; ".join(unknown)


def selection_digest(channels: Mapping[str, torch.Tensor], weights: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (first 16 hex digits) of the selected channels and their weights, layer by layer.

    Example:
        >>> a = selection_digest({"relu1": torch.tensor([3, 1])}, {"relu1": torch.tensor([0.5, 0.5])})
        >>> a == selection_digest({"relu1": torch.tensor([1, 3])}, {"relu1": torch.tensor([0.5, 0.5])})
        False
    """
    digest = hashlib.sha256()
    for layer in channels:
        digest.update(layer.encode("utf-8"))
        digest.update(channels[layer].detach().cpu().to(torch.int64).numpy().tobytes())
        digest.update(weights[layer].detach().cpu().to(torch.float64).numpy().tobytes())
    return digest.hexdigest()[:16]


def pe_provenance(distance: object, name: str | None = None, **options: object) -> Provenance:
    """The record of a :class:`~pe_iqa.PEDistance` (duck-typed: ``spec``, ``weights_id``, ``selected_channels()``,
    ``channel_weights()``, ``backbone``), named ``name`` (default: the spec's description), with run ``options``.

    Built from what the distance holds (its weights fingerprint and selected channels), so recording a preset never
    loads the channel analysis."""
    spec = distance.spec
    dtype = str(distance.backbone.mean.dtype).removeprefix("torch.")
    return Provenance(
        metric=name or spec.describe(), kind="pe", spec=spec.digest(), weights_id=distance.weights_id,
        selection=selection_digest(distance.selected_channels(), distance.channel_weights()), dtype=dtype,
        version=_package_version(), options=tuple((k, str(v)) for k, v in options.items()),
    )


def sidecar_path(result_path: str | Path) -> Path:
    """The provenance sidecar of a result file: ``scores.csv`` → ``scores.csv.provenance.json``."""
    result_path = Path(result_path)
    return result_path.with_name(result_path.name + SIDECAR_SUFFIX)


def sidecar_text(records: Mapping[str, Provenance], **run: object) -> str:
    """The JSON text of a sidecar holding ``records`` (by output column) and run-level facts ``run``."""
    data = {"format": PROVENANCE_FORMAT, "run": {k: str(v) for k, v in run.items()},
            "metrics": {name: record.to_dict() for name, record in records.items()}}
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_sidecar(result_path: str | Path, records: Mapping[str, Provenance], **run: object) -> Path:
    """Write ``<result_path>.provenance.json`` atomically; returns its path."""
    from .safe_files import write_text_atomic

    path = sidecar_path(result_path)
    write_text_atomic(path, sidecar_text(records, **run))
    return path


def read_sidecar(path: str | Path) -> tuple[dict[str, Provenance], dict[str, str]] | None:
    """The records of a sidecar file by output column, and its run-level facts (``None`` if it does not exist).

    Raises:
        ProvenanceError: the file exists but is not a sidecar of this format (names the file).
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != PROVENANCE_FORMAT:
            raise ProvenanceError(f"format {data.get('format') if isinstance(data, dict) else '?'}")
        records = {str(name): Provenance.from_dict(record) for name, record in data["metrics"].items()}
        return records, {str(k): str(v) for k, v in data.get("run", {}).items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, AttributeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise ProvenanceError(f"{path} is not a readable pe-iqa provenance file ({reason}); delete it (and the results "
                              f"it describes) to start over") from None

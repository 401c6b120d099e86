"""What a scoring run returns: :class:`ScoringResult` (counts, failures and exact means; rows when collected)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .output import ScoreTable
from .pairs import ListSource, ScorePair
from .resume import RunSummary

__all__ = ["ScoringResult"]


@dataclass
class ScoringResult:
    """What a run scored: counts, failures and means always; every pair's row when collected (``collect=True``).

    Attributes:
        pairs: the pairs, as given (``None`` when not collected).
        metric_names: one output column per metric.
        metric_directions: ``{name: lower_better}``.
        summary: counts, the first failures and exact means (:class:`~pe_iqa.scoring.resume.RunSummary`).
        table: the per-pair values (see :class:`~pe_iqa.scoring.output.ScoreTable`; ``None`` when not collected).
        scored: pairs scored by this call (all processes); ``resumed``: pairs taken from an earlier run.
        load_s, score_s: seconds spent building the metrics and scoring (this process; ``score_s`` includes
            reading earlier results and writing the final CSV).
        world_size: processes that shared the work (torchrun); device: this process's device.
        features_computed, features_reused: reference encodings computed vs. served from the cache (this process).
        timings: this process's seconds by stage: ``check`` (the output checks), ``resume`` (reading earlier
            results), ``loop`` (the scoring loop), within it ``network`` (the metrics) and ``decode_wait`` (waiting
            for decoded pairs), ``merge`` (writing the final CSV, process 0); the engine's own time in the loop per
            pair is ``(loop - network - decode_wait) / scored``.
    """

    pairs: list[ScorePair] | None
    metric_names: list[str]
    metric_directions: dict[str, bool]
    summary: RunSummary
    table: ScoreTable | None = None
    scored: int = 0
    resumed: int = 0
    load_s: float = 0.0
    score_s: float = 0.0
    world_size: int = 1
    device: str = "cpu"
    csv_path: Path | None = None
    features_computed: int = 0
    features_reused: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    _rows: list[dict] | None = field(default=None, repr=False)

    def _collected(self) -> tuple[list[ScorePair], ScoreTable]:
        if self.pairs is None or self.table is None:
            raise ValueError("the rows of this run were not collected (score_pairs(..., collect=True)); read them "
                             "from its CSV")
        return self.pairs, self.table

    @property
    def rows(self) -> list[dict]:
        """One dict per pair: ``distorted``, ``reference``, the extra columns, one float per metric (``None``
        where it did not score) and ``error`` (``""`` when the pair scored)."""
        if self._rows is None:
            pairs, table = self._collected()
            extras = ListSource(pairs).extras
            self._rows = []
            for index, pair in enumerate(pairs):
                row: dict = {"distorted": pair.distorted, "reference": pair.reference}
                row.update({name: pair.extra.get(name, "") for name in extras})
                row.update(zip(self.metric_names, table.row_values(index), strict=True))
                row["error"] = table.error_text(index)
                self._rows.append(row)
        return self._rows

    @property
    def n_pairs(self) -> int:
        """Pairs of the run."""
        return self.summary.n_pairs

    @property
    def failures(self) -> list[tuple[int, ScorePair, str]]:
        """``(index, pair, message)`` of every pair that did not score with all metrics (when not collected: the
        first ten; :attr:`n_failed` counts them all)."""
        if self.table is None or self.pairs is None:
            return [(i, ScorePair(d, r), m) for i, d, r, m in self.summary.failures]
        mask = self.table.ok_mask()
        return [(int(i), self.pairs[int(i)], self.table.errors.get(int(i), "not scored"))
                for i in np.flatnonzero(~mask)]

    @property
    def n_failed(self) -> int:
        """Pairs that did not score with every metric."""
        return self.summary.n_failed

    @property
    def n_ok(self) -> int:
        """Pairs scored by every metric without error."""
        return self.summary.n_ok

    def scores(self, name: str) -> np.ndarray:
        """``(n,)`` float64 values of metric ``name`` (NaN where it did not score; needs collected rows)."""
        _, table = self._collected()
        column = self.metric_names.index(name)
        return np.where(table.present[:, column], table.values[:, column], np.nan)

    def means(self) -> dict[str, float]:
        """Mean of each metric over the pairs every metric scored (exactly rounded: any process count agrees)."""
        return self.summary.means()

    @property
    def pairs_per_s(self) -> float:
        """Pairs scored per second of scoring (this call, all processes together)."""
        return self.scored / self.score_s if self.score_s > 0 else math.nan

"""Channel rankings and the H-x / L-x / F subsets (ranking stage → selected channels).

A :class:`ChannelRanking` holds one layer's tuning curves and the efficacy score of every channel, and
orders the channels. The paper's Eq. 7–8 select by percentile:

    H-x = {m : PE_m ≥ P_(100−x)(PE)}      L-x = {m : PE_m ≤ P_x(PE)}      F = all channels

Implemented as: ``k = max(1, round(M·x/100))`` channels from the top (H) or bottom (L) of the order. The
order is by the score, then by the tie-break key ``μ1/Σμ1 + μ2/Σμ2``
(:attr:`~pe_iqa.efficacy.EfficacyTerms.tie_break`), then by mean absolute grating response. Never by channel
index: channels still tied with the k-th on all three keys (e.g. channels dead for every grating) are all
included, as the percentile definition would, so a subset can exceed x% only when no measurement can
separate its members.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import torch

from ..analysis_config import AnalysisConfig
from ..selections import SUBSETS, check_selection
from .efficacy import compute_score, efficacy_terms
from .tuning import TuningCurves

__all__ = ["SUBSETS", "ChannelRanking", "check_selection"]


@dataclass
class ChannelRanking:
    """Efficacy ranking of the channels of one layer.

    Attributes:
        backbone: canonical backbone name.
        weights_id: fingerprint of the backbone weights the tuning was measured with.
        layer: layer name.
        config: the :class:`~pe_iqa.tuning.AnalysisConfig` of the measurement.
        tuning: the measured :class:`~pe_iqa.tuning.TuningCurves`.
        score_name: the efficacy score ranking the channels (``"pe"`` by default; a built-in score, see
            :data:`~pe_iqa.analysis.efficacy.EFFICACY_SCORES`, unless ``scores`` is given).
        scores: explicit ``(M,)`` scores to rank by, higher = better (research scores, or scores that need more
            than the tuning curves), labelled ``score_name``; ``None`` computes the built-in score ``score_name``.
            Ties are broken by the same keys as every ranking. Another score of the same measurement:
            ``dataclasses.replace(ranking, score_name=...)``.

    After construction: ``score`` (the ranking score), ``pe``, ``mu1``, ``mu2``, ``tie_break`` and ``magnitude``,
    each ``(M,)`` float64.
    """

    backbone: str
    weights_id: str
    layer: str
    config: AnalysisConfig
    tuning: TuningCurves
    score_name: str = "pe"
    scores: torch.Tensor | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        terms = efficacy_terms(self.tuning, self.config.csf)
        self.mu1, self.mu2, self.pe, self.tie_break = terms.mu1, terms.mu2, terms.pe, terms.tie_break
        if self.scores is None:
            self.score = compute_score(self.score_name, self.tuning, self.config)
        else:
            score = torch.as_tensor(self.scores, dtype=torch.float64).reshape(-1)
            if score.numel() != self.n_channels:
                raise ValueError(f"scores must have {self.n_channels} values (one per channel), got {score.numel()}")
            self.score = torch.where(torch.isfinite(score), score, torch.zeros_like(score))
        self.magnitude = self.tuning.magnitude()
        self._order = self._sort()

    @property
    def n_channels(self) -> int:
        return self.tuning.n_channels

    def with_score(self, score_name: str) -> ChannelRanking:
        """Deprecated: ``dataclasses.replace(ranking, score_name=...)`` (removed in 0.3)."""
        warnings.warn("ChannelRanking.with_score is deprecated; use dataclasses.replace(ranking, score_name=...)",
                      FutureWarning, stacklevel=2)
        return dataclasses.replace(self, score_name=score_name, scores=None)

    def ranked_by(self, score_name: str, scores: torch.Tensor) -> ChannelRanking:
        """Deprecated: ``dataclasses.replace(ranking, score_name=..., scores=...)`` (removed in 0.3)."""
        warnings.warn("ChannelRanking.ranked_by is deprecated; use dataclasses.replace(ranking, score_name=..., "
                      "scores=...)", FutureWarning, stacklevel=2)
        return dataclasses.replace(self, score_name=score_name, scores=scores)

    def _keys(self) -> torch.Tensor:
        return torch.stack([self.score, self.tie_break, self.magnitude], dim=1)  # (M, 3)

    def _sort(self) -> torch.Tensor:
        keys = self._keys()
        order = torch.arange(self.n_channels)
        for column in reversed(range(keys.shape[1])):  # stable lexicographic sort, most significant last
            order = order[torch.sort(keys[order, column], descending=True, stable=True).indices]
        return order

    def order(self) -> torch.Tensor:
        """Channel indices from most to least efficacious, ``(M,)`` int64."""
        return self._order.clone()

    def select(self, subset: str = "high", percent: float = 10.0) -> torch.Tensor:
        """Channels of the H-x (``"high"``), L-x (``"low"``) or F (``"all"``) subset.

        Args:
            subset: ``"high"``, ``"low"`` or ``"all"``.
            percent: x, in ``(0, 100]`` (checked, but not used, for ``"all"``).

        Returns:
            Sorted channel indices, ``(K,)`` int64.

        Raises:
            ValueError: on an unknown subset or a percent that is not a number in ``(0, 100]``.
        """
        subset, percent = check_selection(subset, percent)
        if subset == "all":
            return torch.arange(self.n_channels)
        k = max(1, round(self.n_channels * percent / 100.0))
        order = self._order if subset == "high" else self._order.flip(0)
        keys = self._keys()
        boundary = keys[order[k - 1]]
        tied = (keys[order[k:]] == boundary).all(dim=1)
        extra = order[k:][tied]
        return torch.sort(torch.cat([order[:k], extra])).values

    def table(self, n: int = 5) -> list[dict[str, float | int | str]]:
        """Top-``n`` and bottom-``n`` channels with PE, μ1, μ2 and the ranking score (for display)."""
        order = self._order.tolist()
        rows = []
        for where, idx in [("top", order[:n]), ("bottom", order[-n:])]:
            for rank_in, channel in enumerate(idx):
                rows.append({
                    "layer": self.layer, "where": where,
                    "rank": rank_in + 1 if where == "top" else self.n_channels - n + rank_in + 1,
                    "channel": channel, "score": float(self.score[channel]), "pe": float(self.pe[channel]),
                    "mu1": float(self.mu1[channel]), "mu2": float(self.mu2[channel]),
                })
        return rows


"""Channel rankings and the H-x / L-x / F subsets (ranking stage → selected channels).

A :class:`ChannelRanking` holds one layer's tuning curves and the efficacy score of every channel, and
orders the channels. The paper's Eq. 7–8 select by percentile:

    H-x = {m : PE_m ≥ P_(100−x)(PE)}      L-x = {m : PE_m ≤ P_x(PE)}      F = all channels

Implemented as: ``k = max(1, round(M·x/100))`` channels from the top (H) or bottom (L) of the order. The
order is by the score, then by the tie-break key ``μ1/Σμ1 + μ2/Σμ2``
(:func:`~pe_iqa.efficacy.tie_break_score`), then by mean absolute grating response. Never by channel
index: channels still tied with the k-th on all three keys (e.g. channels dead for every grating) are all
included, as the percentile definition would, so a subset can exceed x% only when no measurement can
separate its members.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .efficacy import _normalised_product, _safe_share, compute_score, frequency_sensitivity, orientation_selectivity
from .tuning import AnalysisConfig, TuningCurves

__all__ = ["SUBSETS", "ChannelRanking"]

SUBSETS = ("high", "low", "all")


@dataclass
class ChannelRanking:
    """Efficacy ranking of the channels of one layer.

    Attributes:
        backbone: canonical backbone name.
        weights_id: fingerprint of the backbone weights the tuning was measured with.
        layer: layer name.
        config: the :class:`~pe_iqa.tuning.AnalysisConfig` of the measurement.
        tuning: the measured :class:`~pe_iqa.tuning.TuningCurves`.
        score_name: the efficacy score ranking the channels (``"pe"`` by default).
    """

    backbone: str
    weights_id: str
    layer: str
    config: AnalysisConfig
    tuning: TuningCurves
    score_name: str = "pe"

    def __post_init__(self) -> None:
        self.score = compute_score(self.score_name, self.tuning, self.config)
        self.mu1 = frequency_sensitivity(self.tuning, self.config.csf)
        self.mu2 = orientation_selectivity(self.tuning)
        # PE and the tie-break key (efficacy.perceptual_efficacy / tie_break_score) from the μ1, μ2 above
        self.pe = _normalised_product(self.mu1, self.mu2)
        self.tie_break = _safe_share(self.mu1) + _safe_share(self.mu2)
        self.magnitude = self.tuning.magnitude()
        self._order = self._sort()

    @property
    def n_channels(self) -> int:
        return self.tuning.n_channels

    def with_score(self, score_name: str) -> ChannelRanking:
        """The same measurement ranked by another registered efficacy score."""
        return ChannelRanking(self.backbone, self.weights_id, self.layer, self.config, self.tuning, score_name)

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
            percent: x, in ``(0, 100]`` (ignored for ``"all"``).

        Returns:
            Sorted channel indices, ``(K,)`` int64.

        Raises:
            ValueError: on an unknown subset or a percent outside ``(0, 100]``.
        """
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        if subset == "all":
            return torch.arange(self.n_channels)
        if not 0 < float(percent) <= 100:
            raise ValueError(f"percent must be in (0, 100], got {percent}")
        k = max(1, round(self.n_channels * float(percent) / 100.0))
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

"""The training losses compared, and the rule that balances L2 against the perceptual term.

Every perceptual term compares VGG-16 ``relu2_2`` features (the paper's layer), on one shared frozen backbone:

=========  ==================================================================================
name       loss
=========  ==================================================================================
l2         mean squared error only (the control; α = 1)
cx_f       L2 + contextual loss, all 128 channels, uniform (Mechrez et al.)
cx_pe      L2 + contextual loss, channel weights ∝ PE (the paper's PE loss)
cx_h       L2 + contextual loss on the H-x channels by PE (x = ``top_percent``, uniform weights)
eq1_f      L2 + Eq. 1 (:class:`pe_iqa.PELoss`, all channels, uniform)
eq1_pe     L2 + Eq. 1 (:class:`pe_iqa.PELoss`, all channels, weights ∝ PE)
=========  ==================================================================================

Balancing rule: ``loss = α · L2/L2₀ + (1 − α) · X/X₀`` with ``L2₀`` and ``X₀`` the two terms' values on the
first fine-tuning batch (detached numbers, recorded in each run's result file). The terms have unrelated
scales (MSE ≈ 1e-3 on [0, 1] images; CX ≈ 1–3; Eq. 1's scale depends on the core's normalisation and changes
with ``channel_norm``), so the paper's raw ``α·L2 + (1 − α)·CX`` would make the same α mean different things
for different losses (and for the same loss across library versions). Normalising by the starting values
makes α the share of each term at the start, comparable across losses; the rule is invariant to any constant
rescaling of a term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VARIANTS", "BalancedLoss", "LossVariant", "build_perceptual"]


@dataclass(frozen=True)
class LossVariant:
    """One loss of the comparison (see the module docstring)."""

    name: str
    label: str
    family: str  # "l2", "cx" or "eq1"
    weighting: str = "uniform"
    subset: str = "all"


VARIANTS: dict[str, LossVariant] = {v.name: v for v in (
    LossVariant("l2", "L2", "l2"),
    LossVariant("cx_f", "L2 + CX (F)", "cx"),
    LossVariant("cx_pe", "L2 + CX (PE-weighted)", "cx", weighting="pe"),
    LossVariant("cx_h", "L2 + CX (PE H-x)", "cx", subset="high"),
    LossVariant("eq1_f", "L2 + Eq. 1 (F)", "eq1"),
    LossVariant("eq1_pe", "L2 + Eq. 1 (PE-weighted)", "eq1", weighting="pe"),
)}


def build_perceptual(variant: LossVariant, backbone: nn.Module, layers: Sequence[str], top_percent: float,
                     bandwidth: float, max_positions: int | None) -> nn.Module | None:
    """The perceptual term of ``variant`` on a shared frozen backbone (``None`` for plain L2)."""
    if variant.family == "l2":
        return None
    if variant.family == "cx":
        from pe_iqa.contextual_loss import PEContextualLoss

        return PEContextualLoss(backbone, list(layers), weighting=variant.weighting, subset=variant.subset,
                                top_percent=top_percent, bandwidth=bandwidth, max_positions=max_positions)
    from pe_iqa import PELoss

    return PELoss("pe_vgg", backbone=backbone, layers=list(layers), weighting=variant.weighting,
                  subset=variant.subset, top_percent=top_percent)


class BalancedLoss(nn.Module):
    """``α · L2/L2₀ + (1 − α) · X/X₀`` with ``L2₀, X₀`` taken from the first call (see the module docstring)."""

    def __init__(self, perceptual: nn.Module | None, alpha: float) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if perceptual is None and alpha != 1.0:
            raise ValueError("plain L2 has alpha = 1")
        self.perceptual, self.alpha = perceptual, float(alpha)
        self.l2_0: float | None = None
        self.x_0: float | None = None

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss and its two raw terms (``{"l2": …, "x": …}``, floats)."""
        l2 = F.mse_loss(preds, target)
        if self.perceptual is None:
            return l2, {"l2": float(l2.detach()), "x": float("nan")}
        x = self.perceptual(preds, target)
        if self.l2_0 is None:
            self.l2_0, self.x_0 = max(float(l2.detach()), 1e-12), max(float(x.detach()), 1e-12)
        loss = self.alpha * l2 / self.l2_0 + (1.0 - self.alpha) * x / self.x_0
        return loss, {"l2": float(l2.detach()), "x": float(x.detach())}

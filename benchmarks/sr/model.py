"""A small VDSR-style network (Kim et al., CVPR 2016): bicubic-upsampled input plus a learned residual."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VDSR"]


class VDSR(nn.Module):
    """``depth`` 3×3 convolutions of ``width`` channels with ReLUs, predicting the residual to the ILR input.

    The last convolution starts at zero, so the untrained network returns its (bicubic) input.

    Example:
        >>> net = VDSR(depth=4, width=8)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> bool(torch.equal(net(x), x))
        True
    """

    def __init__(self, depth: int = 10, width: int = 32) -> None:
        super().__init__()
        if depth < 2 or width < 1:
            raise ValueError(f"depth must be >= 2 and width >= 1, got {depth} and {width}")
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 3, 3, padding=1))
        self.body = nn.Sequential(*layers)
        for module in self.body:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, ilr: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` bicubic-upsampled images → super-resolved images (not clamped)."""
        return ilr + self.body(ilr)

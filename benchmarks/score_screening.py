"""Screen channel-efficacy scores on LIVE: SROCC of the H-x distance for every registered score.

For each AlexNet layer and each score in :data:`pe_iqa.efficacy.EFFICACY_SCORES` (PE, its controls, the
variants of :mod:`pe_iqa.efficacy_variants` and the chromatic scores of :mod:`pe_iqa.chromatic_tuning`),
the channels of H-x (x ∈ ``--percents``) are selected with :meth:`pe_iqa.ranking.ChannelRanking.select` and
the unit-normalised Eq. 1 distance (``channel_norm=True``, uniform weights, one layer) is computed between
every distorted LIVE image and its reference; the table reports SROCC against DMOS. Controls: F (all
channels), L-x by PE, and random-x (mean ± std over ``--seeds`` random subsets of the same size as H-x).
With 99 images the SROCC itself is uncertain by about ±0.01–0.02: read differences smaller than that, and
than the random spread, as ties.

Features of all images are computed once per layer (float16 in memory). The distance is evaluated for all
subsets at once from per-channel products: with ``A = Σ_S a²``, ``B = Σ_S b²``, ``C = Σ_S a·b`` at each
position and ``n_a = sqrt(A + ε²) + ε`` (as :class:`pe_iqa.distance.PEDistance` normalises),
``Σ_S (a/n_a − b/n_b)² = A/n_a² + B/n_b² − 2C/(n_a n_b)``, so each subset is one matrix product. The first
pair is checked against :class:`~pe_iqa.distance.PEDistance`.

Usage::

    TORCH_HOME=../shared/torch_home HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.score_screening \\
        [--live-root ../shared/data/LIVE] [--layers relu1 relu3] [--percents 5 10 25 50] [--seeds 20]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.stats import spearmanr
from torchvision.transforms.functional import to_tensor

from benchmarks.datasets.live import load_live_index
from pe_iqa import EFFICACY_SCORES, PEDistance, get_rankings, load_backbone
from pe_iqa.chromatic_tuning import prepare_chromatic

_NORM_EPS = 1e-10
_DEFAULT_LIVE_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "LIVE"


def _load_image(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        return to_tensor(img.convert("RGB")).unsqueeze(0)  # (1, 3, H, W) in [0, 1]


def _features(backbone, paths: list[Path]) -> dict[Path, dict[str, torch.Tensor]]:
    feats = {}
    with torch.inference_mode():
        for path in paths:
            out = backbone(_load_image(path))
            feats[path] = {layer: act[0].flatten(1).to(torch.float16) for layer, act in out.items()}  # (C, P)
    return feats


def subset_distances(a: torch.Tensor, b: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Unit-normalised Eq. 1 distance of one pair for many channel subsets at once.

    Args:
        a: features of the distorted image, ``(C, P)`` (P positions).
        b: features of the reference, ``(C, P)``.
        masks: channel subsets as 0/1 rows, ``(Q, C)``.

    Returns:
        ``(Q,)`` float64: ``1/|S| · mean_P Σ_{m∈S} (â_m − b̂_m)²`` per subset.
    """
    a, b = a.float(), b.float()
    m = masks.float()
    sa, sb, sab = m @ (a * a), m @ (b * b), m @ (a * b)  # (Q, P)
    inv_a = (sa + _NORM_EPS**2).sqrt_().add_(_NORM_EPS).reciprocal_()  # 1 / n_a
    inv_b = (sb + _NORM_EPS**2).sqrt_().add_(_NORM_EPS).reciprocal_()
    cross = sab.mul_(inv_a).mul_(inv_b).mul_(2.0)
    per_position = sa.mul_(inv_a).mul_(inv_a).add_(sb.mul_(inv_b).mul_(inv_b)).sub_(cross)
    return per_position.clamp_min_(0.0).double().mean(dim=1) / masks.sum(dim=1).double()


def _subsets(ranking, scores: list[str], percents: list[float], seeds: int) -> list[tuple[str, float, torch.Tensor]]:
    n = ranking.n_channels
    rows: list[tuple[str, float, torch.Tensor]] = [("F", math.nan, torch.arange(n))]
    for x in percents:
        for name in scores:
            rows.append((f"H:{name}", x, ranking.with_score(name).select("high", x)))
        rows.append(("L:pe", x, ranking.select("low", x)))
        k = max(1, round(n * x / 100.0))
        for seed in range(seeds):
            generator = torch.Generator().manual_seed(1000 * seed + int(10 * x))
            rows.append(("random", x, torch.randperm(n, generator=generator)[:k]))
    return rows


def _check_against_pedistance(backbone, layer, percent, channels, dist_path, ref_path, value) -> float:
    """Relative difference between our closed form and :class:`PEDistance` (H-x by PE) on one pair."""
    metric = PEDistance(backbone, [layer], subset="high", top_percent=percent, score="pe", check_range=False)
    if not torch.equal(metric.selected_channels()[layer], channels.sort().values):
        raise AssertionError(f"{layer}: PEDistance selects other channels than ChannelRanking.select")
    with torch.inference_mode():
        reference = float(metric(_load_image(dist_path), _load_image(ref_path)))
    return abs(reference - value) / max(abs(reference), 1e-12)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--live-root", type=Path, default=Path(os.environ.get("PE_IQA_LIVE_ROOT", _DEFAULT_LIVE_ROOT)))
    parser.add_argument("--layers", nargs="+", default=["relu1", "relu2", "relu3", "relu4", "relu5"])
    parser.add_argument("--percents", nargs="+", type=float, default=[5.0, 10.0, 25.0, 50.0])
    parser.add_argument("--scores", nargs="+", default=None, help="default: every registered score")
    parser.add_argument("--seeds", type=int, default=10, help="random subsets per x")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    scores = args.scores or sorted(EFFICACY_SCORES, key=lambda s: (s not in ("pe", "magnitude", "mu1", "mu2"), s))
    unknown = [s for s in scores if s not in EFFICACY_SCORES]
    if unknown:
        raise ValueError(f"--scores: unknown {unknown}; registered: {sorted(EFFICACY_SCORES)}")

    start = time.perf_counter()
    index = load_live_index(args.live_root)
    records = index.records
    dmos = np.array([r.dmos for r in records])
    backbone = load_backbone("alexnet", args.layers)
    rankings = get_rankings(backbone, list(args.layers))
    if {"achromatic", "pe_achromatic"} & set(scores):
        prepare_chromatic(backbone, list(args.layers))  # measured once, then cached like the tuning curves
    paths = sorted({r.dist_path for r in records} | {r.ref_path for r in records})
    feats = _features(backbone, paths)
    print(f"{index.summary()}\n{len(paths)} images, features in {time.perf_counter() - start:.1f} s\n")

    header = "".join(f"{f'H-{x:g}':>14}" for x in args.percents)
    for layer in args.layers:
        ranking = rankings[layer]
        rows = _subsets(ranking, scores, args.percents, args.seeds)
        masks = torch.zeros(len(rows), ranking.n_channels)
        for q, (_, _, channels) in enumerate(rows):
            masks[q, channels] = 1.0
        unique, inverse = torch.unique(masks, dim=0, return_inverse=True)  # many selectors pick the same set
        dists = np.stack([
            subset_distances(feats[r.dist_path][layer], feats[r.ref_path][layer], unique).numpy() for r in records
        ])[:, inverse.numpy()]  # (N, Q)
        srocc = np.array([spearmanr(dists[:, q], dmos).statistic for q in range(len(rows))])
        pe_row = next(q for q, row in enumerate(rows) if row[0] == "H:pe")
        error = _check_against_pedistance(backbone, layer, rows[pe_row][1], rows[pe_row][2], records[0].dist_path,
                                          records[0].ref_path, float(dists[0, pe_row]))
        print(f"== AlexNet {layer} ({ranking.n_channels} channels): F = {srocc[0]:.3f}   "
              f"[check vs PEDistance: rel. err {error:.1e}]")
        print(f"{'selector':<18}{header}")
        labels = [f"H:{s}" for s in scores] + ["L:pe"]
        for label in labels:
            cells = []
            for x in args.percents:
                q = next(i for i, row in enumerate(rows) if row[0] == label and row[1] == x)
                cells.append(f"{srocc[q]:.3f} ({rows[q][2].numel():>3})")
            print(f"{label:<18}" + "".join(f"{c:>14}" for c in cells))
        cells = []
        for x in args.percents:
            values = srocc[[i for i, row in enumerate(rows) if row[0] == "random" and row[1] == x]]
            cells.append(f"{values.mean():.3f}±{values.std(ddof=1) if len(values) > 1 else 0.0:.3f}")
        print(f"{f'random (n={args.seeds})':<18}" + "".join(f"{c:>14}" for c in cells) + "\n")
    print(f"total {time.perf_counter() - start:.1f} s (SROCC vs DMOS; (k) = channels selected)")


if __name__ == "__main__":
    main()

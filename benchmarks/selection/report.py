"""Outputs of the selection study: CSV files, the Markdown report and the plots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmarks.report import environment_info, markdown_table, write_csv, write_text_atomic
from benchmarks.selection.comparisons import COMPARISONS, selector_label, selector_variants
from benchmarks.selection.distances import BackboneDistances, format_percent
from benchmarks.selection.study import SelectionStudy
from pe_iqa.safe_files import write_figure

__all__ = ["significance_matrix", "write_outputs"]


def _per_layer_table(study: SelectionStudy, dist: BackboneDistances, layer: str) -> str:
    rows = [r for r in study.srocc if r["backbone"] == dist.backbone and r["layer"] == layer]
    table = []
    for selector, norm in selector_variants(dist):
        entry: dict[str, object] = {"selector": selector_label(selector, norm)}
        for subset in ("H", "L"):
            for x in dist.percents:
                match = [r for r in rows if r["selector"] == selector and r["subset"] == subset
                         and r["x"] == x and r["channel_norm"] == norm]
                entry[f"{subset}-{format_percent(x)}"] = f"{match[0]['srocc']:.3f}" if match else "–"
        table.append(entry)
    for norm in (True, False):
        entry = {"selector": selector_label("random", norm)}
        for x in dist.percents:
            match = [r for r in rows if r["selector"] == "random" and r["x"] == x and r["channel_norm"] == norm]
            entry[f"H-{format_percent(x)}"] = f"{match[0]['srocc']:.3f}±{match[0]['random_sd']:.3f}" if match else "–"
        table.append(entry)
    f_rows = {r["channel_norm"]: r for r in rows if r["selector"] == "F"}
    columns = ["selector"] + [f"{s}-{format_percent(x)}" for s in ("H", "L") for x in dist.percents]
    f_text = ", ".join(f"{'norm' if n else 'raw'} {r['srocc']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                       for n, r in f_rows.items())
    return (f"**{dist.backbone} {layer}** ({dist.n_channels[layer]} channels) — F: {f_text}\n\n"
            + markdown_table(table, columns))


def significance_matrix(study: SelectionStudy, backbone: str) -> str:
    """Selectors × layers: the significant wins (+) and losses (−) of H-x over the x values, per comparison.

    A cell ``"+L3 +R1 −F1"`` reads: over the x values, H-x beat L-x significantly 3 times, beat the random mean
    once and lost to F once (95 % paired-bootstrap intervals resampling references); ``·`` = nothing significant.
    """
    dist = next(d for d in study.dists if d.backbone == backbone)
    letters = {"H-L": "L", "H-F": "F", "H-random": "R"}
    table = []
    for selector, norm in selector_variants(dist):
        entry: dict[str, object] = {"selector": selector_label(selector, norm)}
        for layer in dist.layers:
            rows = [r for r in study.comparisons if r["backbone"] == backbone and r["layer"] == layer
                    and r["selector"] == selector and r["channel_norm"] == norm]
            parts = []
            for comparison, letter in letters.items():
                wins = sum(bool(r["sig_win"]) for r in rows if r["comparison"] == comparison)
                losses = sum(bool(r["sig_loss"]) for r in rows if r["comparison"] == comparison)
                parts += [f"+{letter}{wins}"] * bool(wins) + [f"−{letter}{losses}"] * bool(losses)
            entry[layer] = " ".join(parts) or "·"
        table.append(entry)
    return markdown_table(table, ["selector", *dist.layers])


def _comparison_table(study: SelectionStudy, backbone: str, selector: str, norm: bool) -> str:
    rows = [r for r in study.comparisons if r["backbone"] == backbone and r["selector"] == selector
            and r["channel_norm"] == norm]
    table: dict[tuple, dict[str, object]] = {}
    for r in rows:
        entry = table.setdefault((r["layer"], r["x"]), {"layer": r["layer"], "x": format_percent(float(r["x"])),
                                                        "H": f"{r['h_srocc']:.3f}"})
        mark = "*" if r["sig_win"] else ("†" if r["sig_loss"] else "")
        entry[str(r["comparison"])] = f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]{mark}"
        if r["comparison"] == "H-random":
            entry["seeds beaten"] = f"{r['seeds_beaten']:.0%}"
    return markdown_table(list(table.values()), ["layer", "x", "H", *COMPARISONS, "seeds beaten"])


def write_outputs(study: SelectionStudy, out: str | os.PathLike[str], command: str = "") -> list[Path]:
    """Write the CSV files, the Markdown report and the plots of a study into ``out``.

    Returns:
        The written paths.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        write_csv(study.srocc, folder / "selection_srocc.csv"),
        write_csv(study.comparisons, folder / "selection_comparisons.csv"),
        write_csv(study.wins_by_layer + study.wins_total, folder / "selection_win_counts.csv"),
        write_csv(study.cv_summary, folder / "selection_cv_summary.csv"),
        write_csv(study.cv_folds, folder / "selection_cv_folds.csv"),
    ]
    files += _plots(study, folder)
    files.append(_write_markdown(study, folder / "selection_report.md", command))
    study.files = files
    return files


def _write_markdown(study: SelectionStudy, path: Path, command: str) -> Path:
    extra: dict[str, object] = {f"time: {k}": f"{v:.1f} s" for k, v in study.timings.items()}
    extra["bootstrap resamples"] = study.n_boot
    for dist in study.dists:
        extra[f"{dist.backbone}"] = (f"scale {dist.scale:g}, layers {', '.join(dist.layers)}, selectors "
                                     f"{', '.join(dist.selectors)}")
    env = environment_info("cpu", {"LIVE": study.index_summary}, extra)
    win_columns = ["backbone", "layer", "selector", *COMPARISONS]
    lines = [
        "# Does PE select well? — controls, win counts and cross-validated defaults (LIVE)",
        "",
        f"Command: `{command}`" if command else "",
        "",
        "SROCC against DMOS (positive = agrees with humans). Distances are unit-normalised (`norm`) unless "
        "marked raw. Win cells: `point wins/n (significant wins+ / significant losses−)`, where significant "
        "means the 95 % paired-bootstrap interval of the SROCC difference excludes 0, resampling the references "
        "(each with all its images; the image-resampled interval is in the CSV as `ci_low`/`ci_high`). With 5 "
        "references that bootstrap has few distinct resamples: see `selection_percentiles.md` for the exact "
        "sign-flip tests. "
        "H-random compares H-x with the mean over random seeds of random-x subsets of the same size.",
        "",
        "## Environment",
        "",
        markdown_table([{"key": k, "value": v} for k, v in env.items()]),
        "",
        "## Win counts per selector (all layers and x)",
        "",
        markdown_table(study.wins_total, win_columns),
        "",
        "## Significant wins and losses per layer",
        "",
        f"Over the {len(study.dists[0].percents) if study.dists else 0} x values: `+L3` = H-x significantly above "
        "L-x three times, `−F1` = significantly below F once, `R` = the random-x mean; `·` = nothing significant.",
        "",
    ]
    for dist in study.dists:
        lines += [f"**{dist.backbone}**", "", significance_matrix(study, dist.backbone), ""]
    lines += [
        "## Win counts per layer (over x)",
        "",
        markdown_table(study.wins_by_layer, win_columns),
        "",
        "## Cross-validation (leave one reference out)",
        "",
        "`fold mean ± sd`: held-out SROCC within each reference (≈20 images, noisy); `pooled`: SROCC of all "
        "held-out predictions concatenated (folds may pick differently scaled configs); `pooled mapped`: the "
        "same after each fold's logistic mapping fitted on its training references. `diff vs pe_alex`: "
        "pooled-mapped difference with a 95 % paired-bootstrap interval.",
        "",
        markdown_table(study.cv_summary, digits=3),
        "",
        "### Folds",
        "",
        markdown_table(study.cv_folds, digits=3),
        "",
    ]
    for dist in study.dists:
        lines += [f"## {dist.backbone}: PE comparisons with 95 % CIs (* significant win, † significant loss)", ""]
        for norm in (True, False):
            lines += [f"PE, {'normalised' if norm else 'raw'}:", "",
                      _comparison_table(study, dist.backbone, "pe", norm), ""]
        lines += [f"## {dist.backbone}: SROCC per layer", ""]
        for layer in dist.layers:
            lines += [_per_layer_table(study, dist, layer), ""]
    write_text_atomic(path, "\n".join(lines))
    return path


def _plots(study: SelectionStudy, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for dist in study.dists:
        rows = [r for r in study.srocc if r["backbone"] == dist.backbone]
        fig, axes = plt.subplots(1, len(dist.layers), figsize=(4.2 * len(dist.layers), 4.6), sharey=True)
        axes = np.atleast_1d(axes)
        colours = plt.get_cmap("tab20")
        xs = np.array(dist.percents)
        for ax, layer in zip(axes, dist.layers, strict=True):
            here = [r for r in rows if r["layer"] == layer]
            rand = sorted((r for r in here if r["selector"] == "random" and r["channel_norm"]), key=lambda r: r["x"])
            mean = np.array([r["srocc"] for r in rand])
            sd = np.array([r["random_sd"] for r in rand])
            ax.fill_between(xs, [r["random_min"] for r in rand], [r["random_max"] for r in rand], color="0.9",
                            label="random (norm) min–max")
            ax.fill_between(xs, mean - sd, mean + sd, color="0.75", label="random (norm) mean ± sd")
            full = next(r for r in here if r["selector"] == "F" and r["channel_norm"])
            ax.axhline(full["srocc"], color="k", ls=":", lw=1, label="F (norm)")
            for j, selector in enumerate(dist.selectors):
                line = sorted((r for r in here if r["selector"] == selector and r["subset"] == "H"
                               and r["channel_norm"]), key=lambda r: r["x"])
                ax.plot(xs, [r["srocc"] for r in line], marker="o", ms=3, color="k" if selector == "pe"
                        else colours(j % 20), lw=2.2 if selector == "pe" else 1.0, label=f"H {selector}")
            low = sorted((r for r in here if r["selector"] == "pe" and r["subset"] == "L" and r["channel_norm"]),
                         key=lambda r: r["x"])
            ax.plot(xs, [r["srocc"] for r in low], ls="--", color="k", lw=1.2, label="L pe")
            raw = sorted((r for r in here if r["selector"] == "pe" and r["subset"] == "H" and not r["channel_norm"]),
                         key=lambda r: r["x"])
            ax.plot(xs, [r["srocc"] for r in raw], ls=":", marker="s", ms=3, color="tab:red", lw=1.5,
                    label="H pe (raw)")
            ax.set_xscale("log")
            ax.set_xticks(xs, [format_percent(x) for x in xs])
            ax.minorticks_off()
            ax.set_title(f"{dist.backbone} {layer}")
            ax.set_xlabel("x (% of channels)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("SROCC vs DMOS")
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=min(8, len(names)), fontsize=8)
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        path = folder / f"selection_srocc_vs_x_{dist.backbone}.png"
        write_figure(fig, path, dpi=110, what="benchmark figure")
        plt.close(fig)
        paths.append(path)

        comps = [r for r in study.comparisons if r["backbone"] == dist.backbone and r["comparison"] in
                 ("H-L", "H-random")]
        variants = selector_variants(dist)
        fig, axes = plt.subplots(len(dist.layers), 2, figsize=(16, 2.6 * len(dist.layers)), sharey="row",
                                 squeeze=False)
        width = 0.8 / len(dist.percents)
        for i, layer in enumerate(dist.layers):
            for j, comparison in enumerate(("H-L", "H-random")):
                ax = axes[i, j]
                for k, x in enumerate(dist.percents):
                    cells = [next(r for r in comps if r["layer"] == layer and r["comparison"] == comparison
                                  and r["selector"] == s and r["channel_norm"] == n and r["x"] == x)
                             for s, n in variants]
                    diff = np.array([c["diff"] for c in cells])
                    err = np.array([[c["diff"] - c["ci_low"] for c in cells],
                                    [c["ci_high"] - c["diff"] for c in cells]])
                    pos = np.arange(len(variants)) + (k - (len(dist.percents) - 1) / 2) * width
                    ax.bar(pos, diff, width, yerr=np.nan_to_num(err), capsize=1.5, label=f"x={format_percent(x)}",
                           color=plt.get_cmap("viridis")(k / max(1, len(dist.percents) - 1)))
                ax.axhline(0, color="k", lw=0.8)
                ax.set_title(f"{dist.backbone} {layer}: SROCC {comparison} (95 % paired-bootstrap CI)", fontsize=9)
                ax.set_xticks(np.arange(len(variants)), [selector_label(s, n) for s, n in variants], rotation=35,
                              ha="right", fontsize=7)
                ax.grid(axis="y", alpha=0.3)
        axes[0, 0].legend(fontsize=7, ncol=len(dist.percents))
        fig.tight_layout()
        path = folder / f"selection_differences_{dist.backbone}.png"
        write_figure(fig, path, dpi=100, what="benchmark figure")
        plt.close(fig)
        paths.append(path)
    return paths

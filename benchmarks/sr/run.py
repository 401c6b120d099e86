"""×4 super-resolution trained with PE-weighted perceptual and contextual losses (the paper's training use).

A small VDSR-style network is pretrained with L2 per seed, then fine-tuned with each loss of
:mod:`benchmarks.sr.losses` at several α (``α·L2/L2₀ + (1−α)·X/X₀``) and evaluated on held-out images with
PSNR, SSIM, LPIPS and DISTS (pyiqa; NIQE and NRQM when their weight files are in pyiqa's cache). Outputs in
``--out`` (default ``benchmarks/results/sr``; with ``--quick`` a new temporary folder unless ``--out`` names one):
``runs/*.json`` (one per run; a rerun skips finished ones), ``sr_runs.csv``, ``sr_images.csv``,
``sr_image_level.csv`` and ``sr_matched_offsets.csv`` (:mod:`benchmarks.sr.inference`: t-intervals and exact
sign-flip tests over the held-out images, matched-PSNR comparisons at several offsets flagged where no run supports
them), ``sr.md`` and the plots.

    python -m benchmarks.sr.run --threads 1                 # full run (≈3–4 h on one CPU thread)
    python -m benchmarks.sr.run --report-only               # rebuild the reports from the committed runs/*.json
    python -m benchmarks.sr.run --alphas 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9 --held-out extended   # denser grid
    python -m benchmarks.sr.run --quick                     # smoke test (< 1 min) in a temporary folder
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import torch

from benchmarks.report import write_text_atomic
from pe_iqa.cli.errors import exit_status

from ..report import environment_info, markdown_table, write_csv
from . import inference
from .data import EXTENDED_HELD_OUT, check_held_out, load_images
from .evaluate import MetricSet
from .inference import MATCHED_PAIRS, image_level_rows, matched_offset_rows, plot_matched_offsets
from .losses import VARIANTS
from .report import (
    COMPARISONS,
    comparison_rows,
    image_rows,
    matched_distortion_rows,
    plot_perception_distortion,
    run_rows,
    summary_rows,
    table_markdown,
)
from .train import SRConfig, evaluate_network, finetune, pretrain, read_result, write_json_atomic

__all__ = ["QUICK", "main", "run_sr"]

DEFAULT_ALPHAS = (0.9, 0.5, 0.1)
DEFAULT_SEEDS = (0, 1, 2)
QUICK = SRConfig(patch=32, batch=4, depth=4, width=8, pretrain_steps=20, finetune_steps=4, eval_crop=64,
                 train_images=("skimage:camera", "skimage:grass", "live:buildings"),
                 held_out=("skimage:coffee", "live:monarch"), metrics=("psnr", "ssim", "lpips", "dists"))


def _planned(variants: Sequence[str], alphas: Sequence[float], seeds: Sequence[int]) -> list[tuple[str, float, int]]:
    runs = []
    for seed in seeds:
        runs.append(("pretrained", 1.0, seed))
        for variant in variants:
            runs += [(variant, alpha, seed) for alpha in ((1.0,) if variant == "l2" else alphas)]
    return runs


def run_sr(out: Path, config: SRConfig, variants: Sequence[str], alphas: Sequence[float], seeds: Sequence[int],
           progress: bool = True, debug: bool = False) -> tuple[list[dict], dict[str, str]]:
    """Run (or resume) every (loss, α, seed) and write the reports; returns the results and the failures."""
    from tqdm import tqdm

    started = time.perf_counter()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown losses {unknown}; choose from {list(VARIANTS)}")
    if any(not 0.0 <= a < 1.0 for a in alphas):
        raise ValueError(f"alphas must be in [0, 1), got {list(alphas)}")
    check_held_out(config.train_images, config.held_out)
    train, missing_train = load_images(config.train_images, config.scale)
    held_out, missing_held = load_images(config.held_out, config.scale, crop=config.eval_crop)
    if not train or not held_out:
        raise FileNotFoundError(f"no usable training or held-out images (missing: {missing_train | missing_held})")
    metrics = MetricSet(config.metrics, config.scale)
    digest = config.digest()
    runs_dir, cache_dir = out / "runs", out / "checkpoints"
    results, failures = [], {}

    def finished(name: str, variant: str, alpha: float, seed: int, compute) -> None:
        path = runs_dir / f"{name}.json"
        result = read_result(path, digest)
        if result is None:
            result = {"variant": variant, "alpha": alpha, "seed": seed, "config_digest": digest, **compute()}
            write_json_atomic(path, result)
        results.append(result)

    def bicubic() -> dict:
        tic = time.perf_counter()
        return {"images": evaluate_network(None, held_out, metrics), "eval_seconds": time.perf_counter() - tic}

    finished("bicubic", "bicubic", 1.0, -1, bicubic)
    backbone = None
    states: dict[int, tuple[dict, float]] = {}
    for variant, alpha, seed in tqdm(_planned(variants, alphas, seeds), desc="sr runs", disable=not progress):
        name = f"{variant}_a{alpha:g}_s{seed}"

        def compute(variant: str = variant, alpha: float = alpha, seed: int = seed) -> dict:
            nonlocal backbone
            if seed not in states:
                states[seed] = pretrain(config, seed, train, cache_dir)
            state, pretrain_seconds = states[seed]
            if variant == "pretrained":
                net, record = _network(config, state), {"pretrain_seconds": pretrain_seconds}
            else:
                if backbone is None and VARIANTS[variant].family != "l2":
                    from pe_iqa import load_backbone

                    backbone = load_backbone(config.backbone, list(config.layers))
                net, record = finetune(config, VARIANTS[variant], alpha, seed, state, train, backbone)
            tic = time.perf_counter()
            images = evaluate_network(net, held_out, metrics)
            return {"training": record, "images": images, "eval_seconds": time.perf_counter() - tic}

        try:
            finished(name, variant, alpha, seed, compute)
        except Exception as error:  # one failed run never loses the others
            if debug:
                raise
            failures[name] = f"{type(error).__name__}: {error}"
    _write_reports(out, config, results, metrics.names, metrics.unavailable, [im.name for im in held_out],
                   {**missing_train, **missing_held}, time.perf_counter() - started)
    return results, failures


def report_only(out: Path, config: SRConfig) -> list[dict]:
    """Rebuild the reports from the finished runs in ``out/runs`` (no training, no evaluation).

    Only runs of this configuration (its digest) are used; the metrics are those every run has.

    Raises:
        FileNotFoundError: if no finished run of this configuration is there.
    """
    started = time.perf_counter()
    digest = config.digest()
    results = []
    for path in sorted((out / "runs").glob("*.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result.get("config_digest") == digest:
            results.append(result)
    if not results:
        raise FileNotFoundError(f"no finished run of this configuration (digest {digest}) in {out / 'runs'}")
    order = {name: i for i, name in enumerate(["pretrained", *VARIANTS])}  # the order run_sr records runs in
    results.sort(key=lambda r: (r["variant"] != "bicubic", r["seed"], order.get(r["variant"], -1), -r["alpha"]))
    recorded = list(results[0]["images"])
    images = [im for im in config.held_out if im in recorded] + [im for im in recorded if im not in config.held_out]
    names = [m for m in config.metrics if all(m in r["images"][im] for r in results for im in images)]
    unavailable = {m: "not in the recorded runs (weights not available when they ran)" for m in config.metrics
                   if m not in names}
    _write_reports(out, config, results, names, unavailable, images, {}, time.perf_counter() - started)
    return results


def _network(config: SRConfig, state: dict) -> torch.nn.Module:
    from .model import VDSR

    net = VDSR(config.depth, config.width)
    net.load_state_dict(state)
    return net


def _write_reports(out: Path, config: SRConfig, results: list[dict], names: list[str], unavailable: dict[str, str],
                   images: list[str], missing: dict[str, str], wall_seconds: float) -> None:
    write_csv(image_rows(results), out / "sr_images.csv")
    image_level = image_level_rows(results, names, images, COMPARISONS)
    write_csv(image_level, out / "sr_image_level.csv")
    matched = matched_offset_rows(results, images, MATCHED_PAIRS) if "psnr" in names else []
    if matched:
        write_csv(matched, out / "sr_matched_offsets.csv")
        plot_matched_offsets(matched, out / "sr_matched_offsets.png")
    runs = run_rows(results, names)
    write_csv(runs, out / "sr_runs.csv")
    plot_perception_distortion(runs, out / "sr_perception_distortion.png")
    compute = sum((r.get("training") or {}).get("train_seconds", 0.0) + r.get("eval_seconds", 0.0) for r in results)
    compute += sum((r.get("training") or {}).get("pretrain_seconds", 0.0) for r in results)
    timing = [{"loss": v, "runs": len(rs), "mean train s": sum(r["train_seconds"] or 0 for r in rs) / len(rs),
               "mean eval s": sum(r["eval_seconds"] or 0 for r in rs) / len(rs)}
              for v in dict.fromkeys(r["variant"] for r in runs) for rs in [[r for r in runs if r["variant"] == v]]]
    env = environment_info("cpu", extra={
        "held-out images": ", ".join(images), "training images": ", ".join(config.train_images),
        "images not found": "; ".join(f"{k} ({v})" for k, v in missing.items()) or "none",
        "metrics not evaluated": "; ".join(f"{k}: {v}" for k, v in unavailable.items()) or "none",
        "this invocation (s)": f"{wall_seconds:.0f}", "recorded compute of all runs (s)": f"{compute:.0f}",
    })
    channels = [{"loss": v, "channels": rs[0]["channels"],
                 "effective channels ((Σw)²/Σw²)": rs[0]["effective_channels"]}
                for v in dict.fromkeys(r["variant"] for r in runs if r["channels"] is not None)
                for rs in [[r for r in runs if r["variant"] == v]]]
    protocol = (
        f"Protocol: a VDSR-style network ({config.depth} convolutions × {config.width} channels, residual on the "
        f"bicubic input) is pretrained with L2 for {config.pretrain_steps} steps per seed, then fine-tuned from that "
        f"network for {config.finetune_steps} steps (Adam, lr {config.finetune_lr:g}, batches of {config.batch} "
        f"patches of {config.patch}² px, the same patch stream for every loss) with `α·L2/L2₀ + (1−α)·X/X₀`, "
        f"`L2₀, X₀` the terms on the first fine-tuning batch. `L2` is the same fine-tuning with L2 alone; "
        f"`pretrained` is the starting point, `bicubic` the input. Perceptual terms use VGG-16 "
        f"{'+'.join(config.layers)}; H-x is H-{config.top_percent:g}. Metrics on the held-out images at full "
        f"size, {config.scale}-px border shaved, outputs quantised to 8 bits; PSNR and SSIM on the Y channel.")
    text = ["# ×4 super-resolution with PE-weighted losses", "", protocol, "", "## Environment", "",
            markdown_table([{"key": k, "value": v} for k, v in env.items()], ["key", "value"]), "",
            "## Configuration", "", markdown_table([{"key": k, "value": str(v)} for k, v in asdict(config).items()],
                                                   ["key", "value"]), "",
            "## Held-out results (mean over seeds × images, 95 % two-level bootstrap interval)", "",
            table_markdown(summary_rows(results, names, images), names, ["loss", "alpha", "seeds"]), "",
            "## Paired differences (same seed and image; ‘better’/‘worse’: interval excludes 0)", "",
            table_markdown(comparison_rows(results, names, images), names, ["comparison", "alpha"], differences=True),
            "",
            f"## Image-level inference ({len(images)} held-out images)", "",
            "Each paired difference (same seed and image) averaged over the seeds: one difference per image. "
            "`t low`/`t high`: 95 % Student-t interval over the images; `sign-flip p`: exact two-sided test over "
            f"the images (smallest possible p with {len(images)} images: {2 / 2 ** len(images):.3g}); "
            "`images higher`: images where the difference is > 0 (`higher is` says whether that is better). "
            "The bootstrap intervals above resample only these few images and seeds: read them with this table.",
            "", markdown_table(image_level, digits=4), "",
            "## Matched PSNR, per image, at several offsets (`sr_matched_offsets.csv`, `sr_matched_offsets.png`)", "",
            (inference.__doc__ or "").split("\n\n")[2].replace("\n", " "),
            "", markdown_table(matched, digits=4) if matched else "(no PSNR)", "",
            "## Perceptual error at matched PSNR on the seed-mean curves (interpolated at L2's PSNR − 0.1 / − 0.25 / "
            "− 0.5 dB; mean, sd and number of seeds whose curve reaches it; `runs within 0.2 dB`: seeds with a run "
            "that close to the target, `gap`: widest segment crossed without a run, dB)", "",
            markdown_table(matched_distortion_rows(results, images), digits=4), "",
            "![matched offsets](sr_matched_offsets.png)", "",
            "## Channels entering the perceptual term", "", markdown_table(channels, digits=1), "",
            "## Run times", "", markdown_table(timing, digits=1), "",
            "![perception–distortion](sr_perception_distortion.png)", ""]
    write_text_atomic(out / "sr.md", "\n".join(text))


def _alphas(text: str) -> list[float]:
    try:
        return [float(a) for a in text.split(",") if a.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"α values must be numbers, got {text!r}") from error


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sr.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (under a minute)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default benchmarks/results/sr; with --quick a new temporary folder)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--alphas", type=_alphas, nargs="+", default=None,
                        help="α values, space- or comma-separated (e.g. 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9)")
    parser.add_argument("--held-out", nargs="+", default=None,
                        help="held-out images (live:<name>, skimage:<name>, file:<path>) or 'extended' "
                             f"({len(EXTENDED_HELD_OUT)} openly licensed images available offline)")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the reports from the finished runs in --out (no training)")
    parser.add_argument("--losses", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--finetune-steps", type=int, default=None)
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    config = QUICK if args.quick else SRConfig()
    if args.finetune_steps is not None:
        config = replace(config, finetune_steps=args.finetune_steps)
    if args.held_out is not None:
        held_out = EXTENDED_HELD_OUT if args.held_out == ["extended"] else tuple(args.held_out)
        config = replace(config, held_out=held_out)
    out = args.out or (Path(tempfile.mkdtemp(prefix="pe_sr_quick_")) if args.quick else Path("benchmarks/results/sr"))
    seeds = args.seeds if args.seeds is not None else ((0,) if args.quick else DEFAULT_SEEDS)
    alphas = ([a for group in args.alphas for a in group] if args.alphas is not None
              else ((0.5,) if args.quick else DEFAULT_ALPHAS))
    try:
        if args.report_only:
            results, failures = report_only(out, config), {}
        else:
            results, failures = run_sr(out, config, args.losses, alphas, seeds, progress=args.progress,
                                       debug=args.debug)
    except Exception as error:
        if args.debug:
            raise
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return exit_status(error)  # the command line's one exit table
    for name, message in failures.items():
        print(f"run {name} failed: {message}", file=sys.stderr)
    print(f"{len(results)} runs in {out} ({len(failures)} failed); report: {out / 'sr.md'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Write the shipped selections (``pe_iqa/selections.json``) from the shipped tuning curves.

For every shipped ranking (AlexNet and VGG-16 with their ImageNet weights, default analysis configuration; one file
per layer in ``pe_iqa/analysis/rankings``) and every selection the presets use (score, subset, x, channel
normalisation, weighting), the layer's channels are ranked from the shipped tuning curves, selected, and their
weights computed — exactly what :func:`~pe_iqa.resolver.resolve` does on a miss — and written with a SHA-256
checksum. Run after changing a shipped ranking, the presets or the selection rule::

    python -m pe_iqa.analysis.export_selections [--check]

``--check`` writes nothing and exits 1 if the file differs from what would be written (the tests run it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..analysis_config import AnalysisConfig
from ..feature_distance import channel_weights
from ..presets import PRESETS
from ..safe_files import atomic_write
from ..selections import FORMAT_VERSION, SELECTIONS_FILE, SelectionKey, selection_checksum
from .ranking import ChannelRanking
from .ranking_lookup import SHIPPED_DIR
from .tuning import TuningCurves
from .tuning_cache import TuningKey, read_entry

__all__ = ["selection_entries", "selections_document"]


def _shipped_keys() -> list[TuningKey]:
    keys = []
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        key = json.loads(path.read_text(encoding="utf-8"))["payload"]["key"]
        keys.append(TuningKey(**key))
    return keys


def selection_entries() -> list[dict]:
    """Every shipped selection, computed from the shipped tuning curves, in a stable order."""
    config = AnalysisConfig()
    options = sorted({(spec.score, spec.subset, spec.top_percent if spec.subset != "all" else 100.0,
                       spec.channel_norm, spec.weighting) for spec in PRESETS.values()})
    entries = []
    for tuning_key in _shipped_keys():
        if tuning_key.config_key != config.key():
            raise ValueError(f"shipped ranking {tuning_key} is not for the default analysis configuration")
        tuning = TuningCurves(**read_entry(SHIPPED_DIR / tuning_key.filename(), tuning_key, TuningCurves.ARRAYS))
        for score, subset, top_percent, channel_norm, weighting in options:
            ranking = ChannelRanking(tuning_key.backbone, tuning_key.weights_id, tuning_key.layer, config, tuning,
                                     score)
            channels = ranking.select(subset, top_percent)
            scores = ranking.score[channels] if weighting == "pe" else None
            weights = channel_weights(len(channels), channel_norm, scores)
            key = SelectionKey(tuning_key.backbone, tuning_key.weights_id, tuning_key.layer, tuning_key.config_key,
                               score, subset, top_percent, channel_norm, weighting)
            entries.append({**{name: getattr(key, name) for name in key.__dataclass_fields__},
                            "n_channels": ranking.n_channels, "channels": [int(c) for c in channels.tolist()],
                            "channel_weights": [float(w) for w in weights.tolist()]})
    return entries


def selections_document() -> str:
    """The text of ``selections.json``."""
    entries = selection_entries()
    lines = ",\n".join(json.dumps(entry, sort_keys=True, separators=(",", ":")) for entry in entries)
    return (f'{{"format_version": {FORMAT_VERSION}, "checksum": "{selection_checksum(entries)}", "entries": [\n'
            f"{lines}\n]}}\n")  # one entry per line


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the shipped selections file."""
    parser = argparse.ArgumentParser(prog="python -m pe_iqa.analysis.export_selections", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    parser.add_argument("--out", type=Path, default=SELECTIONS_FILE, help="where to write (default: the package's)")
    args = parser.parse_args(argv)
    text = selections_document()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run python -m pe_iqa.analysis.export_selections", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    with atomic_write(args.out) as handle:
        handle.write(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

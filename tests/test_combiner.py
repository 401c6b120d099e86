"""One combiner (issue 25): every place where results meet calls :func:`~pe_iqa.provenance.combine_records`; a
missing, partial or unreadable record is unknown and never trusted; no other code compares records."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pe_iqa import provenance
from pe_iqa.provenance import Provenance, ProvenanceError, sidecar_path
from pe_iqa.scoring import ScorePair, ScoringMetric, build_metric, score_pairs
from pe_iqa.scoring.output import ResumeWarning, journal_path

ROOT = Path(__file__).resolve().parents[1]
RECORD = Provenance("pe_alex", spec="1f", weights_id="ab", options={"alpha": "white"})


def test_same_records_combine_and_different_ones_are_refused_naming_the_difference() -> None:
    assert provenance.combine_records(RECORD.to_dict(), RECORD, "a.csv", "fix it") == ""
    both = {"pe_alex": RECORD, "lpips": RECORD}
    assert provenance.combine_records(both, {"pe_alex": RECORD}, "a.csv", "fix it") == ""
    with pytest.raises(ProvenanceError, match=r"^a\.csv holds pe_alex scores .*alpha: black ≠ white.*: fix it"):
        provenance.combine_records(RECORD.with_options(alpha="black"), RECORD, "a.csv", "fix it")


@pytest.mark.parametrize("saved", [None, {}, {"lpips": RECORD.to_dict()}, {"pe_alex": {"metric": 3}},
                                   {"pe_alex": "garbage"}])
def test_missing_partial_or_unreadable_records_are_unknown(saved) -> None:
    reason = provenance.combine_records(saved, {"pe_alex": RECORD}, "a.csv", "fix it")
    assert reason.startswith("a.csv ") and "pe_alex" in reason
    with pytest.raises(ProvenanceError, match=r"^a\.csv .*pe_alex.*: fix it$"):
        provenance.combine_records(saved, {"pe_alex": RECORD}, "a.csv", "fix it", refuse_unknown=True)


@pytest.fixture(scope="module")
def pe_alex() -> ScoringMetric:
    return build_metric("pe_alex", "cpu")


@pytest.fixture(scope="module")
def transparent_pairs(tmp_path_factory) -> list[ScorePair]:
    """Three pairs whose distorted images are half transparent: alpha white and black give other scores."""
    root = tmp_path_factory.mktemp("alpha")
    rng = np.random.default_rng(2)
    pairs = []
    for k in range(3):
        ref = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(ref).save(root / f"r{k}.png")
        Image.fromarray(np.dstack([ref, np.full((64, 64), 128, np.uint8)]), "RGBA").save(root / f"d{k}.png")
        pairs.append(ScorePair(root / f"d{k}.png", root / f"r{k}.png"))
    return pairs


def _edit_metrics(path: Path, metrics: dict) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data["metrics"] = metrics
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("partial", ["empty", "another metric"])
def test_a_csv_sidecar_emptied_or_left_partial_is_not_trusted(transparent_pairs, pe_alex, tmp_path, partial) -> None:
    """Item 1: ``--alpha white``, empty the record, ``--alpha black --resume`` kept the white values (exit 0)."""
    out = tmp_path / "s.csv"
    white = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", progress=False)
    black = score_pairs(transparent_pairs, [pe_alex], alpha="black", progress=False)
    assert white.scores("pe_alex").tolist() != black.scores("pe_alex").tolist()
    record = json.loads(sidecar_path(out).read_text(encoding="utf-8"))["metrics"]["pe_alex"]
    _edit_metrics(sidecar_path(out), {} if partial == "empty" else {"lpips": {**record, "metric": "lpips"}})
    with pytest.warns(ResumeWarning, match=r"s\.csv has no record for pe_alex"):
        again = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="black", resume=True, progress=False)
    assert again.resumed == 0 and again.scores("pe_alex").tolist() == black.scores("pe_alex").tolist()


def test_a_journal_sidecar_left_partial_is_not_trusted(transparent_pairs, pe_alex, tmp_path) -> None:
    """Item 1, journals: an interrupted white run whose journal record was emptied, resumed black."""
    out = tmp_path / "s.csv"
    calls = [0]

    def stop_at_third(dist, ref):
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt
        return pe_alex.score(dist, ref)

    stopping = ScoringMetric("pe_alex", True, score=stop_at_third, provenance=pe_alex.provenance,
                             valid_range=pe_alex.valid_range)
    with pytest.raises(KeyboardInterrupt):
        score_pairs(transparent_pairs, [stopping], csv_path=out, alpha="white", progress=False)
    _edit_metrics(sidecar_path(journal_path(out)), {})
    black = score_pairs(transparent_pairs, [pe_alex], alpha="black", progress=False)
    with pytest.warns(ResumeWarning, match=r"s\.csv\.partial has no record for pe_alex"):
        again = score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="black", resume=True, progress=False)
    assert again.resumed == 0 and again.scores("pe_alex").tolist() == black.scores("pe_alex").tolist()


def test_a_deeply_nested_sidecar_is_refused_in_one_line_naming_it(transparent_pairs, pe_alex, tmp_path) -> None:
    """Item 16: such a sidecar raised a RecursionError naming no file."""
    out = tmp_path / "s.csv"
    score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", progress=False)
    sidecar_path(out).write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    with pytest.raises(ProvenanceError) as caught:
        score_pairs(transparent_pairs, [pe_alex], csv_path=out, alpha="white", resume=True, progress=False)
    message = str(caught.value)
    assert str(sidecar_path(out)) in message and "nested too deeply" in message and "\n" not in message


# --- no other code compares records -------------------------------------------------------------------------------

_COMBINER = ROOT / "src" / "pe_iqa" / "provenance.py"
#: Names that hold a provenance record (or records) wherever they appear in the code.
_RECORD_WORDS = ("record", "provenance", "saved", "theirs", "ours", "identity")
#: Comparisons that match those names but compare no two results' records (file, source text, why).
_NOT_RECORDS = {
    ("src/pe_iqa/distance.py", "theirs.shape != ours.shape"): "tensor shapes",
    ("benchmarks/live_table.py", "[r['dist_name'] for r in rows] == [r.dist_name for r in records]"): "LIVE rows",
    ("src/pe_iqa/scoring/maps.py", "found == metadata[PROVENANCE_KEY]"):
        "a map's PNG chunk (record and image digests) is up to date or the map is redrawn: nothing is combined",
}


def _mentions_a_record(node: ast.expr) -> bool:
    text = ast.unparse(node).lower()
    return any(word in text for word in _RECORD_WORDS)


def _record_comparisons(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            operands = [node.left, *node.comparators]
            if sum(_mentions_a_record(o) for o in operands) >= 1 and not any(
                    isinstance(o, ast.Constant) for o in operands):
                if (str(path.relative_to(ROOT)), ast.unparse(node)) not in _NOT_RECORDS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
            if name == "describe_difference" or (name == "diff" and receiver not in ("np", "numpy", "torch")):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_combiner_compares_records() -> None:
    """The combiner is the only code that compares records: a comparison (``==``/``!=``, ``.diff``,
    ``describe_difference``) of anything named like a record outside ``pe_iqa/provenance.py`` fails here."""
    files = [p for folder in ("src", "plugins", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    found = [hit for path in files if path != _COMBINER for hit in _record_comparisons(path)]
    assert found == [], "compare records with pe_iqa.provenance.combine_records:\n" + "\n".join(found)

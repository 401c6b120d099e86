"""One combiner (issue 25): every place where results meet calls :func:`~pe_iqa.provenance.combine_records`; a
missing, partial or unreadable record is unknown and never trusted; no other code compares records."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pe_iqa import provenance
from pe_iqa.provenance import Provenance, ProvenanceError

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
    names = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    names += [n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)]
    return any(word in name.lower() for name in names for word in _RECORD_WORDS)


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


@pytest.mark.slow  # parses every module of src/, plugins/ and benchmarks/ (1.3 s on 2 shared cores)
def test_only_the_combiner_compares_records() -> None:
    """The combiner is the only code that compares records: a comparison (``==``/``!=``, ``.diff``,
    ``describe_difference``) of anything named like a record outside ``pe_iqa/provenance.py`` fails here."""
    files = [p for folder in ("src", "plugins", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    found = [hit for path in files if path != _COMBINER for hit in _record_comparisons(path)]
    assert found == [], "compare records with pe_iqa.provenance.combine_records:\n" + "\n".join(found)

"""A lean metric: presets run from the shipped selections without the PE analysis, and no hidden global state.

The shipped selections equal the ranking of the shipped tuning curves (exactly); building a preset imports no
analysis module; a first-time analysis says so once; caches are keyed on what they depend on; reading an image or
writing a file changes no process-wide setting.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import pe_iqa
from pe_iqa import PRESETS, DistanceSpec, PEDistance, pe_distance
from pe_iqa.backbones import load_backbone
from pe_iqa.backbones.geometry import geometric_min_input_size
from pe_iqa.backbones.module import _smallest_valid_size
from pe_iqa.selections import SELECTIONS_FILE, SelectionKey, shipped_keys, shipped_selection

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "pe_iqa"
ANALYSIS_MODULES = ("stimuli", "csf", "tuning", "efficacy", "tuning_cache", "ranking_lookup", "ranking")
SMALL = pe_iqa.AnalysisConfig(size=64, n_frequencies=6, n_orientations=6, n_phases=1)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT / "plugins"), str(ROOT),
                                         env.get("PYTHONPATH", "")])
    return env


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``code`` run by a fresh interpreter (this checkout's packages first); its return code must be 0."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            env=env if env is not None else _env())
    assert result.returncode == 0, result.stderr
    return result


# ---- the shipped selections ---------------------------------------------------------------------------------------

def test_every_shipped_selection_equals_the_ranking_of_the_shipped_tuning_curves() -> None:
    from pe_iqa.analysis.ranking import ChannelRanking
    from pe_iqa.analysis.ranking_lookup import SHIPPED_DIR
    from pe_iqa.analysis.tuning import TuningCurves
    from pe_iqa.analysis.tuning_cache import TuningKey, read_entry
    from pe_iqa.feature_distance import channel_weights

    keys = shipped_keys()
    shipped_rankings = sorted(SHIPPED_DIR.glob("*.json"))
    # every layer of every shipped ranking, for the selection of every preset
    assert len(keys) == len(shipped_rankings) * len({(s.subset, s.top_percent if s.subset != "all" else 100.0)
                                                      for s in PRESETS.values()})
    for key in keys:
        tuning_key = TuningKey(key.backbone, key.weights_id, key.layer, key.config_key)
        tuning = TuningCurves(**read_entry(SHIPPED_DIR / tuning_key.filename(), tuning_key, TuningCurves.ARRAYS))
        ranking = ChannelRanking(key.backbone, key.weights_id, key.layer, pe_iqa.AnalysisConfig(), tuning, key.score)
        channels = ranking.select(key.subset, key.top_percent)
        scores = ranking.score[channels] if key.weighting == "pe" else None
        selection = shipped_selection(key)
        assert selection is not None and selection.n_channels == ranking.n_channels
        assert torch.equal(selection.channels, channels), key
        assert torch.equal(selection.channel_weights, channel_weights(len(channels), key.channel_norm, scores)), key


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_every_preset_is_shipped_for_its_layers_and_selects_the_analysis_channels(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    from pe_iqa.resolver import rankings_of, resolve, selection_key

    monkeypatch.setenv("PE_IQA_CACHE", str(tmp_path))
    for name, spec in PRESETS.items():
        resolved = resolve(spec)
        assert all(layer.ranking is None for layer in resolved.layers), f"{name} was not answered by the file"
        rankings = rankings_of(spec)
        for layer in resolved.layers:
            assert shipped_selection(selection_key(spec, resolved.weights_id, layer.name)) is not None
            assert torch.equal(layer.channels, rankings[layer.name].select(spec.subset, spec.top_percent)), name
    assert list(tmp_path.iterdir()) == []  # nothing measured, nothing cached


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_the_selections_file_is_up_to_date_and_checksummed(tmp_path: Path) -> None:
    from pe_iqa.analysis.export_selections import main, selections_document

    assert SELECTIONS_FILE.read_text(encoding="utf-8") == selections_document()
    assert main(["--check"]) == 0
    document = json.loads(SELECTIONS_FILE.read_text(encoding="utf-8"))
    document["entries"][0]["channels"][0] += 1  # an edited file, checksum not recomputed
    broken = tmp_path / "selections.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    assert main(["--check", "--out", str(broken)]) == 1


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_a_damaged_selections_file_falls_back_to_the_analysis(tmp_path: Path, monkeypatch) -> None:
    from pe_iqa import selections

    document = json.loads(SELECTIONS_FILE.read_text(encoding="utf-8"))
    document["entries"][0]["channels"][0] += 1
    broken = tmp_path / "selections.json"
    broken.write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setattr(selections, "SELECTIONS_FILE", broken)
    selections._shipped.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="checksum mismatch"):
            metric = PEDistance("pe_alex")
        expected = metric.rankings["relu3"].select("high", 10)
        assert torch.equal(metric.selected_channels()["relu3"], expected)
    finally:
        selections._shipped.cache_clear()


def test_a_selection_key_ignores_x_for_every_channel() -> None:
    key = SelectionKey("alexnet", "b46189e918b58399", "relu3", pe_iqa.AnalysisConfig().key(), "pe", "all", 37,
                       True, "uniform")
    assert key.top_percent == 100.0 and shipped_selection(key) is not None


# ---- building a preset imports no analysis ------------------------------------------------------------------------

@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_building_a_preset_imports_no_analysis_module() -> None:
    code = ("import sys, torch; from pe_iqa import PEDistance; m = PEDistance('pe_alex'); "
            "x = torch.rand(1, 3, 64, 64); float(m(x, x.flip(-1))); "
            "print([k for k in sys.modules if k == 'pe_iqa.analysis' or k.startswith('pe_iqa.analysis.')])")
    result = _python(code)
    assert result.stdout.strip() == "[]", result.stdout
    assert result.stderr.strip() == ""  # nothing measured, nothing announced


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_the_analysis_names_stay_public_and_load_lazily() -> None:
    code = ("import sys, pe_iqa; before = any(k.startswith('pe_iqa.analysis.') for k in sys.modules); "
            "from pe_iqa import get_ranking, measure_tuning, ChannelRanking, TuningCurves, perceptual_efficacy; "
            "print(before, get_ranking.__module__, ChannelRanking.__module__)")
    result = _python(code)
    assert result.stdout.split() == ["False", "pe_iqa.analysis.ranking_lookup", "pe_iqa.analysis.ranking"]
    with pytest.raises(AttributeError):
        pe_iqa.no_such_name  # noqa: B018


def test_the_core_modules_of_a_distance_import_no_analysis_module() -> None:
    """Statically: no module a preset needs names the analysis outside a function (loaded on a miss only)."""
    core = ["spec.py", "presets.py", "resolver.py", "selections.py", "distance.py", "distance_maps.py",
            "feature_distance.py", "functional.py", "analysis_config.py", "input_checks.py"]
    for name in core:
        tree = ast.parse((SRC / name).read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "analysis", f"{name} imports {node.module} at module level"


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_a_first_time_analysis_says_once_what_it_measures_and_where_it_caches(tmp_path: Path) -> None:
    code = ("from pe_iqa import PEDistance, AnalysisConfig; "
            "small = AnalysisConfig(size=64, n_frequencies=6, n_orientations=6, n_phases=1); "
            "PEDistance(weights='random', layers=['relu1', 'relu2'], config=small); "
            "PEDistance(weights='random', layers=['relu1', 'relu2'], config=small)")
    env = _env() | {"PE_IQA_CACHE": str(tmp_path)}
    result = _python(code, env)
    lines = [line for line in result.stderr.splitlines() if line.startswith("pe-iqa: measuring")]
    assert len(lines) == 1, result.stderr
    assert "alexnet relu1, relu2" in lines[0] and str(tmp_path) in lines[0]
    assert len(list(tmp_path.glob("alexnet__*.json"))) == 2


# ---- geometry instead of forward passes -----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "layers"), [("alexnet", None), ("alexnet", ["relu1"]), ("vgg16", ["relu2_2"]),
                                              ("resnet18", None), ("squeezenet1_1", None)])
@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_the_min_input_size_from_geometry_equals_the_probed_one(name: str, layers: list[str] | None) -> None:
    backbone = load_backbone(name, layers, weights="random")
    assert geometric_min_input_size(backbone.extractor) == _smallest_valid_size(backbone)


def test_the_min_input_size_of_a_preset_runs_no_forward_pass(monkeypatch) -> None:
    from pe_iqa.backbones import module

    monkeypatch.setattr(module, "_runs", lambda *args: pytest.fail("a forward pass probed the input size"))
    assert PEDistance("pe_alex").min_input_size == 31


# ---- what a distance is -------------------------------------------------------------------------------------------

@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_the_distance_says_which_way_is_better_and_its_range() -> None:
    metric = PEDistance(weights="random", layers=["relu1"])
    assert metric.lower_better is True and metric.higher_is_better is False
    assert metric.score_range == (0.0, 1.0) == metric.value_range
    assert PEDistance(weights="random", layers=["relu1"], channel_norm=False).value_range == (0.0, float("inf"))
    tm = pytest.importorskip("pe_iqa_torchmetrics")
    assert tm.PEFeatureDistance.higher_is_better == PEDistance.higher_is_better


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_rankings_of_a_shipped_preset_are_loaded_on_demand() -> None:
    metric = PEDistance("pe_alex")
    ranking = metric.rankings["relu3"]
    assert ranking.weights_id == metric.weights_id
    assert torch.equal(ranking.select("high", 10), metric.selected_channels()["relu3"])


# ---- no hidden mutable state ---------------------------------------------------------------------------------------

@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_pe_distance_never_returns_a_value_made_with_a_replaced_score(tmp_path: Path, monkeypatch) -> None:
    """The issue's repro: after re-registering a score, the functional form must agree with a fresh module."""
    from pe_iqa.analysis import efficacy

    monkeypatch.setenv("PE_IQA_CACHE", str(tmp_path))
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    options = {"weights": "random", "layers": ["relu1"], "top_percent": 10, "config": SMALL, "score": "mine"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            pe_iqa.register_score("mine", lambda tuning, config: tuning.magnitude())
            first = float(pe_distance(x, y, **options))
            pe_iqa.register_score("mine", lambda tuning, config: -tuning.magnitude(), override=True)
            again = float(pe_distance(x, y, **options))
            fresh = float(PEDistance(**options)(x, y))
    finally:
        efficacy._REGISTERED.pop("mine", None)
    assert first != pytest.approx(fresh)  # the two scores select different channels
    assert again == pytest.approx(fresh)


def test_ranking_memory_is_bounded(monkeypatch) -> None:
    from pe_iqa.analysis import ranking_lookup

    monkeypatch.setattr(ranking_lookup, "MEMORY_ENTRIES", 2)
    ranking_lookup.clear_memory_cache()
    try:
        pe_iqa.get_rankings("alexnet", ["relu1", "relu2", "relu3"])
        assert len(ranking_lookup._MEMORY) == 2
        assert [key.layer for key in ranking_lookup._MEMORY] == ["relu2", "relu3"]
    finally:
        ranking_lookup.clear_memory_cache()


def test_reading_an_image_changes_no_pillow_setting(tmp_path: Path, monkeypatch) -> None:
    from PIL import Image

    from pe_iqa.image_io import ImageReadError, read_image

    path = tmp_path / "a.png"
    Image.new("RGB", (40, 30), (10, 20, 30)).save(path)
    before = Image.MAX_IMAGE_PIXELS
    for limit in ("0", str(10**10), "1000"):
        monkeypatch.setenv("PE_IQA_MAX_IMAGE_PIXELS", limit)
        if limit == "1000":
            with pytest.raises(ImageReadError, match="above the limit"):
                read_image(path)
        else:
            image = read_image(path)
            assert tuple(image.shape[-3:]) == (3, 30, 40)
            assert abs(float(image[..., 0, 0, 0].flatten()[0]) - 10 / 255) < 1e-6
        assert Image.MAX_IMAGE_PIXELS == before


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_no_module_changes_the_umask_and_new_files_follow_it(tmp_path: Path) -> None:
    code = ("import os, pathlib\nos.umask(0o027)\ncalls = []\nreal = os.umask\n"
            "os.umask = lambda mask: calls.append(mask) or real(mask)\n"
            "import pe_iqa.safe_files as safe_files\n"
            f"target = pathlib.Path({str(tmp_path)!r}) / 'f.txt'\n"
            "with safe_files.atomic_write(target) as handle:\n    handle.write('x')\n"
            "print(calls, oct(target.stat().st_mode & 0o777))")
    result = _python(code)
    assert result.stdout.split() == ["[]", "0o640"]


_MUTABLE = (list, set, dict, bytearray)
#: Module-level mutable values allowed, each bounded or deprecated (and said so where it is defined).
_ALLOWED_MUTABLE = {
    "pe_iqa.functional._MODULES",  # at most _MAX_MODULES modules, keyed on all their value depends on
    "pe_iqa.analysis.ranking_lookup._MEMORY",  # at most MEMORY_ENTRIES layers, keyed on network, layer, config
    "pe_iqa.analysis.efficacy._REGISTERED",  # the deprecated register_score's names (removed in 0.3)
}


def test_no_core_module_holds_an_unbounded_mutable_global() -> None:
    import collections
    import importlib

    found = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for attribute, value in vars(module).items():
            if attribute.startswith("__") or isinstance(value, type(sys)):
                continue
            if isinstance(value, (*_MUTABLE, collections.deque)) and f"{name}.{attribute}" not in _ALLOWED_MUTABLE:
                found.append(f"{name}.{attribute} ({type(value).__name__})")
    assert found == []


def test_a_replaced_spec_keeps_the_registry_frozen() -> None:
    with pytest.raises(ValueError, match="score must be one of"):
        DistanceSpec(score="not_a_score")
    assert dataclasses.replace(PRESETS["pe_alex"], score="mu1").score == "mu1"


@pytest.mark.slow  # quick-tier run after the merge: >= 0.8 s on 2 shared cores
def test_the_removed_ranking_methods_are_deprecated_aliases() -> None:
    ranking = PEDistance("pe_alex").rankings["relu3"]
    with pytest.warns(FutureWarning, match="deprecated"):
        by_mu1 = ranking.with_score("mu1")
    assert torch.equal(by_mu1.order(), dataclasses.replace(ranking, score_name="mu1").order())
    with pytest.warns(FutureWarning, match="deprecated"):
        flipped = ranking.ranked_by("minus_pe", -ranking.pe)
    assert flipped.score_name == "minus_pe" and torch.equal(flipped.score, -ranking.pe)

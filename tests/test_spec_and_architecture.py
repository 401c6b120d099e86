"""The distance spec (one validated, hashable value), presets named the same way everywhere, and the package's
architecture: a small immutable public API and no import cycles."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pe_iqa
from pe_iqa import PRESETS, DistanceSpec, PEDistance, pe_distance
from pe_iqa.presets import resolve_spec

ROOT = Path(__file__).resolve().parents[1]


def test_spec_is_frozen_hashable_and_canonical() -> None:
    spec = DistanceSpec("alex", ["relu3", "relu1", "relu3"], top_percent=10)
    assert spec.backbone == "alexnet" and spec.layers == ("relu1", "relu3")
    assert hash(spec) == hash(DistanceSpec("alexnet", ("relu1", "relu3")))
    assert spec == DistanceSpec("alexnet", ("relu1", "relu3"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.top_percent = 20  # type: ignore[misc]
    assert DistanceSpec().layers == ("relu1", "relu2", "relu3", "relu4", "relu5")  # the backbone's defaults


def test_replace_validates_and_resets_layers_for_another_backbone() -> None:
    spec = PRESETS["pe_alex"]
    assert spec.replace(top_percent=25).top_percent == 25.0
    assert spec.replace(backbone="vgg16").layers == ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    assert spec.replace(backbone="vgg16", layers=["relu2_2"]).layers == ("relu2_2",)
    with pytest.raises(ValueError, match="top_percent"):
        spec.replace(top_percent=0)
    with pytest.raises(TypeError, match=r"unknown distance option\(s\) \['topk'\]"):
        spec.replace(topk=3)


def test_layer_weights_are_stored_normalised_in_layer_order() -> None:
    spec = DistanceSpec("alexnet", ["relu3", "relu1"], layer_weights=[1, 3])
    assert spec.layers == ("relu1", "relu3") and spec.layer_weights == (0.75, 0.25)
    assert spec == DistanceSpec("alexnet", ["relu1", "relu3"], layer_weights=(6, 2)) and hash(spec)
    assert "0.75·relu1+0.25·relu3" in spec.describe()
    assert spec.replace(backbone="vgg16").layer_weights is None  # another backbone: default layers, averaged
    with pytest.raises(ValueError, match="one weight per layer"):
        spec.replace(layers=["relu1", "relu2", "relu3"])
    with pytest.raises(ValueError, match="distinct"):
        DistanceSpec("alexnet", ["relu1", "relu1"], layer_weights=[1, 2])


def test_presets_are_read_only_specs() -> None:
    assert set(PRESETS) == {"pe_alex", "pe_vgg", "pe_alex_f"}
    assert all(isinstance(spec, DistanceSpec) for spec in PRESETS.values())
    with pytest.raises(TypeError):
        PRESETS["mine"] = PRESETS["pe_alex"]  # type: ignore[index]
    assert resolve_spec() is PRESETS["pe_alex"]
    assert resolve_spec("pe_vgg", top_percent=None) is PRESETS["pe_vgg"]  # None overrides nothing


@pytest.mark.slow  # 92.4 s measured (full run, 2 shared cores)
def test_a_preset_is_named_the_same_way_in_every_entry_point() -> None:
    tm = pytest.importorskip("pe_iqa_torchmetrics")
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    options = {"weights": "random", "layers": ["relu1"], "top_percent": 25}
    module = PEDistance("pe_alex", **options)
    functional = pe_distance(x, y, "pe_alex", **options)
    metric = tm.PEFeatureDistance("pe_alex", **options)(x, y)
    assert float(module(x, y)) == pytest.approx(float(functional)) == pytest.approx(float(metric))
    assert PEDistance("pe_vgg", weights="random", layers=["relu1_2"]).spec.backbone == "vgg16"
    spec = PRESETS["pe_alex_f"].replace(weights="random", layers=("relu1",))
    assert PEDistance(spec).spec == spec and float(pe_distance(x, y, spec)) > 0


def test_public_api_is_small_and_documented() -> None:
    assert len(pe_iqa.__all__) <= 20
    for name in pe_iqa.__all__:
        assert hasattr(pe_iqa, name), name
        obj = getattr(pe_iqa, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), f"{name} has no docstring"
    assert not any(isinstance(getattr(pe_iqa, n), dict) for n in pe_iqa.__all__)  # nothing mutable at the top


def _imports(path: Path, package: str) -> set[str]:
    """Modules of ``package`` that ``path`` imports (absolute or relative, at any depth of the file)."""
    name = _module_name(path)
    parent = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = parent[: len(parent) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base) if node.level else node.module or ""
            if target.split(".")[0] == package:
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == package)
    return found


def _module_name(path: Path) -> str:
    for root in (ROOT / "src", ROOT / "plugins", ROOT):
        if root in path.parents:
            parts = path.relative_to(root).with_suffix("").parts
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(path)


@pytest.mark.parametrize(("folder", "package"), [("src/pe_iqa", "pe_iqa"), ("benchmarks", "benchmarks")])
def test_no_module_imports_in_a_cycle(folder: str, package: str) -> None:
    files = list((ROOT / folder).rglob("*.py"))
    modules = {_module_name(f): f for f in files}
    graph = {name: {m for m in _imports(path, package) if m in modules and m != name} for name, path in modules.items()}
    # a package's __init__ re-exporting its children is not a cycle through them
    for name in graph:
        graph[name] = {m for m in graph[name] if not (modules[m].name == "__init__.py" and name.startswith(m + "."))}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " → ".join([*stack[stack.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.slow  # 4.5 s measured (full run, 2 shared cores)
def test_the_core_imports_neither_pyiqa_nor_torchmetrics() -> None:
    code = ("import sys, pe_iqa, pe_iqa.distance, pe_iqa.plotting, pe_iqa.feature_distance; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('pyiqa', 'torchmetrics', 'benchmarks')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr

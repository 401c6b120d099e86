"""Marks for the doctests of ``src/`` and ``plugins/`` (a docstring cannot carry a pytest mark).

The examples below build a network (AlexNet, the presets' rankings); each took 0.8 s or more in a quick-tier run
on 2 shared CPU cores, so ``pytest -m "not slow"`` leaves them to the full run. A name that no longer exists marks
nothing; a new slow example belongs here.
"""

from __future__ import annotations

import pytest

#: Doctest names (``module.object``) that build a network.
SLOW_DOCTESTS = frozenset({
    "pe_iqa.distance.PEDistance", "pe_iqa.distance.PEDistance.maps", "pe_iqa.distance.PEDistance.features",
    "pe_iqa.distance.PELoss", "pe_iqa.functional.pe_distance", "pe_iqa.analysis.ranking_lookup.get_ranking",
    "pe_iqa.explain.explain_pair", "pe_iqa.contextual_loss.PEContextualLoss",
    "pe_iqa_torchmetrics", "pe_iqa_torchmetrics.metric.PEFeatureDistance",
    "pe_iqa_torchmetrics.metric.PEFeatureDistance.plot", "pe_iqa_torchmetrics.functional.pe_feature_distance",
    "pe_iqa_pyiqa",
})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.DoctestItem) and item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)

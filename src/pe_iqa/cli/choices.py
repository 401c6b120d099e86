"""The core's names the argument parser shows (presets, alpha policies), as plain data: building the parser must
not import torch, and the core modules that own these names do. ``tests/test_cli_startup.py`` checks that each
equals the core's own (``pe_iqa.presets.PRESETS``, ``pe_iqa.image_io.ALPHA_POLICIES``)."""

from __future__ import annotations

__all__ = ["ALPHA_POLICIES", "DEFAULT_METRIC", "PRESET_NAMES"]

#: ``pe_iqa.presets.PRESETS``' names, in its order.
PRESET_NAMES: tuple[str, ...] = ("pe_alex", "pe_vgg", "pe_alex_f")
#: ``pe_iqa.presets.DEFAULT_METRIC``.
DEFAULT_METRIC = "pe_alex"
#: ``pe_iqa.image_io.ALPHA_POLICIES``.
ALPHA_POLICIES: tuple[str, ...] = ("error", "drop", "white", "black")

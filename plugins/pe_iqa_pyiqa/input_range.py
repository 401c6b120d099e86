"""pe-iqa's range message for the PE metrics built by ``pyiqa.create_metric``, before pyiqa's bare assertion.

pyiqa's ``InferenceModel`` checks its inputs with ``assert x.min() > -eps and x.max() < 1 + eps`` before the
architecture sees them, so ``[0, 255]`` images given to ``create_metric("pe_alex")`` ended in an ``AssertionError``
that says neither what the data look like nor how to fix it. :func:`install` wraps
``InferenceModel.is_valid_input`` once: for the PE metrics only (the models whose architecture is
:class:`~pe_iqa_pyiqa.arch.PEDistanceArch`) it runs pe-iqa's own check first
(:func:`pe_iqa.input_checks.check_value_range`), which names the likely range and the fix; every other pyiqa
metric is checked exactly as before. The error is both a ``ValueError`` and an ``AssertionError``, so code that
caught pyiqa's assertion still does.
"""

from __future__ import annotations

__all__ = ["InputRangeError", "install"]


class InputRangeError(ValueError, AssertionError):
    """Input values outside ``[0, 1]`` given to a PE metric of pyiqa (pyiqa raised an ``AssertionError`` here)."""


def _is_pe_metric(model) -> bool:
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    from .model_configs import ARCH_NAME

    config = DEFAULT_CONFIGS.get(getattr(model, "metric_name", None), {})
    return config.get("metric_opts", {}).get("type") == ARCH_NAME


def _check(model, images) -> None:
    import torch

    from pe_iqa.input_checks import check_value_range

    if not (getattr(model, "check_input_range", False) and isinstance(images, torch.Tensor) and images.ndim == 4
            and images.is_floating_point() and _is_pe_metric(model)):
        return
    try:
        check_value_range({"input": images})
    except ValueError as error:
        text = str(error).replace(
            "or pass data_range=255",
            f"or create the metric with pyiqa.create_metric({model.metric_name!r}, data_range=255, "
            f"check_input_range=False)")
        raise InputRangeError(f"{model.metric_name}: {text}") from None


def install() -> None:
    """Wrap ``pyiqa``'s ``InferenceModel.is_valid_input`` with pe-iqa's range check for the PE metrics
    (idempotent)."""
    from pyiqa.models.inference_model import InferenceModel

    original = InferenceModel.is_valid_input
    if getattr(original, "_pe_iqa_range_check", False):
        return

    def is_valid_input(self, x):
        _check(self, x)
        return original(self, x)

    is_valid_input._pe_iqa_range_check = True
    is_valid_input.__doc__ = original.__doc__
    InferenceModel.is_valid_input = is_valid_input

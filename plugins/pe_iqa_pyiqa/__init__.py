"""pyiqa adapter: registers the PE metric presets (``pe_alex``, ``pe_vgg``, ``pe_alex_f``) as pyiqa metrics.

:func:`register` adds one entry per preset of :data:`pe_iqa.presets.PRESETS` to pyiqa's model configs
(``pyiqa.default_model_configs.DEFAULT_CONFIGS``: full-reference, ``lower_better=True``, ``score_range="0, 1"``,
see :func:`~pe_iqa_pyiqa.model_configs.score_range`) and registers :class:`~pe_iqa_pyiqa.arch.PEDistanceArch`
in ``pyiqa.utils.registry.ARCH_REGISTRY``. It is idempotent and runs

* when this package is imported (``import pe_iqa_pyiqa``),
* when called directly (``pe_iqa_pyiqa.register()``),
* through the ``pyiqa.archs`` entry point ``pe_iqa = "pe_iqa_pyiqa:register"``, which pyiqa calls the first
  time its arch registry is asked for an architecture it does not hold yet.

Limitation: ``pyiqa.create_metric(name)`` asserts that ``name`` is in ``DEFAULT_CONFIGS`` *before* it looks
up any architecture, so the entry point alone cannot make a fresh process accept ``"pe_alex"`` (it only fires
after some other metric's architecture was looked up). Import this package (or call :func:`register`) first.
For the same reason pyiqa's own command line (``pyiqa pe_alex -t DIST -r REF``) does not know the presets;
``pe-iqa pyiqa pe_alex -t DIST -r REF`` registers them and then runs pyiqa's command line.

Needs ``pyiqa`` (``pip install pe-iqa[pyiqa]``); the core package ``pe_iqa`` does not import it.

Example:
    >>> import torch, pyiqa
    >>> import pe_iqa_pyiqa  # registers the presets
    >>> "pe_alex" in pyiqa.list_models(metric_mode="FR")
    True
    >>> # weights="random" only to need no weight files here; the presets use the ImageNet weights
    >>> metric = pyiqa.create_metric("pe_alex", device="cpu", weights="random", layers=["relu1"], top_percent=25)
    >>> metric.lower_better, metric.score_range
    (True, '0, 1')
    >>> reference = torch.rand(2, 3, 64, 64)
    >>> metric(reference, reference)  # (distorted, reference) → (N,) scores
    tensor([0., 0.])
"""

from __future__ import annotations

import warnings

from .arch import PEDistanceArch
from .model_configs import model_config, model_configs, score_range

__all__ = ["PEDistanceArch", "model_config", "model_configs", "register", "score_range"]


def register() -> None:
    """Make the PE presets available to ``pyiqa.create_metric`` / ``pyiqa.list_models`` (idempotent).

    An existing ``DEFAULT_CONFIGS`` entry of the same name that pyiqa itself defines (built by another
    architecture) is kept, with a warning.
    """
    from pyiqa.default_model_configs import DEFAULT_CONFIGS
    from pyiqa.utils.registry import ARCH_REGISTRY

    ARCH_REGISTRY.register(PEDistanceArch, override=True)
    for name, config in model_configs().items():
        existing = DEFAULT_CONFIGS.get(name)
        if existing is not None and existing.get("metric_opts", {}).get("type") != PEDistanceArch.__name__:
            warnings.warn(f"pyiqa already defines a metric {name!r}; not replacing it", RuntimeWarning, stacklevel=2)
            continue
        DEFAULT_CONFIGS[name] = config


register()

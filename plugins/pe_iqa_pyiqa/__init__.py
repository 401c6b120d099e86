"""pyiqa adapter: registers the PE metric presets (``pe_alex``, ``pe_vgg``, ``pe_alex_f``) as pyiqa metrics.

:func:`register` adds one entry per preset of :data:`pe_iqa.presets.PRESETS` to pyiqa's model configs
(``pyiqa.default_model_configs.DEFAULT_CONFIGS``: full-reference, ``lower_better=True``, ``score_range="0, 1"``,
see :func:`~pe_iqa_pyiqa.model_configs.score_range`) and registers :class:`~pe_iqa_pyiqa.arch.PEDistanceArch`
in ``pyiqa.utils.registry.ARCH_REGISTRY`` (and gives the presets pe-iqa's input-range message,
:mod:`.input_range`). It is idempotent and runs

* when this package is imported (``import pe_iqa_pyiqa``),
* when called directly (``pe_iqa_pyiqa.register()``),
* through the ``pyiqa.archs`` entry point ``pe_iqa = "pe_iqa_pyiqa:register"``, which pyiqa calls the first
  time its arch registry is asked for an architecture it does not hold yet,
* when pyiqa first imports ``pyiqa.default_model_configs``, through the start-up hook pe-iqa installs
  (``pe_iqa_pyiqa.pth`` → :mod:`pe_iqa_pyiqa_autoregister`; opt out with ``PE_IQA_PYIQA_AUTOREGISTER=0``).

pyiqa checks ``DEFAULT_CONFIGS`` *before* it looks up any architecture, so the entry point alone cannot make a
fresh process accept ``"pe_alex"``; the start-up hook is what lets ``pyiqa.create_metric("pe_alex")`` and pyiqa's
own command line (``pyiqa pe_alex -t DIST -r REF``) work without an import. Where ``.pth`` files are not
processed (``python -S``/``-I``), import this package first. Other plugin pieces, found by pe-iqa through its
own entry-point groups: :mod:`.scoring_metrics` (pyiqa metrics in ``pe-iqa score``) and :mod:`.command`
(``pe-iqa pyiqa ...``).

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
    >>> metric(reference, reference)  # (distorted, reference) → (N, 1) scores, as pyiqa's lpips and dists
    tensor([[0.],
            [0.]])
"""

from __future__ import annotations

import warnings

from . import input_range
from .arch import PEDistanceArch
from .model_configs import ARCH_NAME, model_config, model_configs, score_range

__all__ = ["PEDistanceArch", "model_config", "model_configs", "register", "score_range"]


def register() -> None:
    """Make the PE presets available to ``pyiqa.create_metric`` / ``pyiqa.list_models`` (idempotent).

    An existing ``DEFAULT_CONFIGS`` entry of the same name that pyiqa itself defines (built by another
    architecture) is kept, with a warning.
    """
    from pyiqa.default_model_configs import DEFAULT_CONFIGS
    from pyiqa.utils.registry import ARCH_REGISTRY

    ARCH_REGISTRY.register(PEDistanceArch, override=True)
    input_range.install()  # pe-iqa's message for [0, 255] input before pyiqa's bare AssertionError
    for name, config in model_configs().items():
        existing = DEFAULT_CONFIGS.get(name)
        if existing is not None and existing.get("metric_opts", {}).get("type") != ARCH_NAME:
            warnings.warn(f"pyiqa already defines a metric {name!r}; not replacing it", RuntimeWarning, stacklevel=2)
            continue
        DEFAULT_CONFIGS[name] = config


register()

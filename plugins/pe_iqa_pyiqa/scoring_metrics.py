"""pyiqa's metrics for ``pe-iqa score`` and :func:`pe_iqa.scoring.score_pairs` (entry point ``pe_iqa.metrics``).

Declared in pe-iqa's ``pyproject.toml`` as ``[project.entry-points."pe_iqa.metrics"] pyiqa =
"pe_iqa_pyiqa.scoring_metrics:PROVIDER"``: the core finds it by the group, never by this module's name. The
entry point's name, ``pyiqa``, is the extra that installs pyiqa (``pip install 'pe-iqa[pyiqa]'``), which the core
names when importing this module fails.
"""

from __future__ import annotations

import contextlib
import json
import sys

import torch

from pe_iqa.provenance import Provenance
from pe_iqa.scoring.metrics import ScoringMetric

from .download_errors import explain_download_failure

__all__ = ["PROVIDER", "PyiqaMetrics"]


class MetricDownloadError(FileNotFoundError):
    """A pyiqa metric whose weight file is missing and could not be downloaded (one line, names the file)."""


class PyiqaMetrics:
    """Every pyiqa metric (``pyiqa.list_models()``) as a :class:`~pe_iqa.scoring.metrics.ScoringMetric`."""

    def knows(self, name: str) -> bool:
        from pyiqa.default_model_configs import DEFAULT_CONFIGS  # the presets are in it: this package registered them

        return name in DEFAULT_CONFIGS

    def build(self, name: str, device: torch.device) -> ScoringMetric:
        """``pyiqa.create_metric(name)``; its loading messages go to standard error.

        Raises:
            MetricDownloadError: the weights are missing and cannot be downloaded (offline).
        """
        import pyiqa

        try:
            with contextlib.redirect_stdout(sys.stderr):  # pyiqa prints "Loading pretrained model ..."
                metric = pyiqa.create_metric(name, device=device)
        except Exception as error:
            message = explain_download_failure(error, name)
            if message is None:
                raise
            raise MetricDownloadError(message) from error
        if getattr(metric, "metric_mode", "FR") == "NR":
            def score(dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
                return metric(dist)
        else:
            def score(dist: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
                return metric(dist, ref)
        return ScoringMetric(name=name, lower_better=bool(metric.lower_better), score=score, source="pyiqa",
                             provenance=pyiqa_provenance(name, metric))


def pyiqa_provenance(name: str, metric: object) -> Provenance:
    """The record of a pyiqa metric: its name, pyiqa's version, its configuration (``metric_opts``, mode) and the
    dtype it computes in (compared on ``--resume``)."""
    import pyiqa
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    config = DEFAULT_CONFIGS.get(name, {})
    options = {"metric_opts": json.dumps(config.get("metric_opts", {}), sort_keys=True, default=str),
               "metric_mode": str(config.get("metric_mode", ""))}
    parameter = next(iter(getattr(metric, "parameters", lambda: iter(()))()), None)
    dtype = str(parameter.dtype).removeprefix("torch.") if parameter is not None else "float32"
    return Provenance(name, kind="pyiqa", dtype=dtype, version=f"pyiqa {pyiqa.__version__}", options=options)


#: The object the ``pe_iqa.metrics`` entry point loads.
PROVIDER = PyiqaMetrics()

"""Evaluation protocols: correlation with MOS/DMOS, resampling over images or references, BAPPS 2AFC and JND mAP.

Every protocol takes plain arrays of metric values and human labels and states the metric's direction
explicitly (``higher_is_better_*`` or ``lower_is_better``).
"""

from __future__ import annotations

from benchmarks.protocols.bootstrap import (
    BootstrapCI,
    PairedBootstrap,
    SignFlipResult,
    SroccComparison,
    bootstrap_srocc_ci,
    compare_srocc,
    sign_flip_test,
    t_interval,
    within_group_srocc,
)
from benchmarks.protocols.correlation import (
    CorrelationResult,
    LogisticFit,
    LogisticFitWarning,
    evaluate_scores,
    fit_logistic,
    krcc,
    logistic_4param,
    logistic_5param,
    plcc,
    rmse,
    rowwise_srocc,
    safe_srocc,
    srocc,
)
from benchmarks.protocols.jnd import jnd_map, jnd_precision_recall, voc_ap
from benchmarks.protocols.two_afc import two_afc_score, two_afc_scores

__all__ = [
    "BootstrapCI",
    "CorrelationResult",
    "LogisticFit",
    "LogisticFitWarning",
    "PairedBootstrap",
    "SignFlipResult",
    "SroccComparison",
    "bootstrap_srocc_ci",
    "compare_srocc",
    "evaluate_scores",
    "fit_logistic",
    "jnd_map",
    "jnd_precision_recall",
    "krcc",
    "logistic_4param",
    "logistic_5param",
    "plcc",
    "rmse",
    "rowwise_srocc",
    "safe_srocc",
    "sign_flip_test",
    "srocc",
    "t_interval",
    "two_afc_score",
    "two_afc_scores",
    "voc_ap",
    "within_group_srocc",
]

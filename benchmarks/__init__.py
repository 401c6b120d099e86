"""Benchmarks for perceptual image-quality distances.

* :mod:`benchmarks.datasets`: adapters for LIVE Release 2 (official layout or pyiqa meta-info CSV), pyiqa's
  full-reference layouts and BAPPS (official 2AFC / JND layout), tolerant of partial copies.
* :mod:`benchmarks.protocols`: SROCC/KRCC/PLCC (+ logistic fits, RMSE, bootstrap CI), 2AFC score, JND mAP.
* :mod:`benchmarks.comparison`: the metrics compared with, from the one metric registry of ``pe-iqa score``
  (:class:`pe_iqa.scoring.metrics.MetricRegistry`) plus the baselines ``l2``, ``tm_ssim``, ``tm_psnr``.

The tests' generated trees with planted answers live in ``tests/fixtures/``.
"""

"""Benchmarks for perceptual image-quality distances.

* :mod:`benchmarks.datasets`: adapters for LIVE Release 2 (official layout or pyiqa meta-info CSV) and BAPPS
  (official 2AFC / JND layout), tolerant of partial copies.
* :mod:`benchmarks.protocols`: SROCC/KRCC/PLCC (+ logistic fits, RMSE, bootstrap CI), 2AFC score, JND mAP.
* :mod:`benchmarks.fixtures`: generators of tiny official-format trees with planted answers.
"""

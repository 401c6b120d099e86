"""×4 super-resolution with PE-weighted perceptual and contextual losses (``python -m benchmarks.sr.run``).

* :mod:`benchmarks.sr.data`: offline, openly licensed images (LIVE references, scikit-image), bicubic
  degradation, train / held-out split, patch sampling.
* :mod:`benchmarks.sr.model`: a small VDSR-style network.
* :mod:`benchmarks.sr.losses`: the compared losses and the α balancing rule.
* :mod:`benchmarks.sr.train`: L2 pretraining per seed, fine-tuning per (loss, α, seed), resumable result files.
* :mod:`benchmarks.sr.evaluate`: PSNR/SSIM/LPIPS/DISTS (and NIQE/NRQM when their weights are available) via pyiqa.
* :mod:`benchmarks.sr.report`: CSVs, bootstrap tables and the perception–distortion plot.
"""

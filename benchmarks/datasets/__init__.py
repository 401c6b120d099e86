"""Dataset adapters: LIVE Release 2, BAPPS (2AFC, JND) and pyiqa's full-reference layouts, partial copies included.

Modules (import the one you need; this package re-exports nothing):

* :mod:`~benchmarks.datasets.live` — LIVE's index (official release or pyiqa's layout);
* :mod:`~benchmarks.datasets.pyiqa_layouts` — pyiqa's full-reference datasets (TID2013, CSIQ, KADID-10k, …);
* :mod:`~benchmarks.datasets.fr_sources` — one entry point for both (``load_fr_dataset``);
* :mod:`~benchmarks.datasets.bapps` — BAPPS 2AFC and JND: indexes, torch datasets, loaders.
"""

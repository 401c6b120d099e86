"""The PE analysis: stimuli → tuning curves → efficacy scores → channel rankings (loaded only when asked for).

* :mod:`~pe_iqa.analysis.stimuli` — radial and oriented gratings;
* :mod:`~pe_iqa.analysis.csf` — contrast sensitivity functions;
* :mod:`~pe_iqa.analysis.tuning` — measuring each channel's tuning curves;
* :mod:`~pe_iqa.analysis.efficacy` — the efficacy scores (PE and its controls);
* :mod:`~pe_iqa.analysis.ranking` — ranking channels and selecting H-x / L-x / F;
* :mod:`~pe_iqa.analysis.tuning_cache` and :mod:`~pe_iqa.analysis.ranking_lookup` — the shipped and cached tuning
  curves, or a measurement;
* :mod:`~pe_iqa.analysis.export_selections` — writing the shipped selections (``pe_iqa/selections.json``).

A distance built from a key the package ships (:mod:`pe_iqa.selections`) imports none of these; this package
imports none of them either, so ``import pe_iqa.analysis.tuning`` loads only what it needs.
"""

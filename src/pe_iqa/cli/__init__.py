"""The ``pe-iqa`` command line (also ``python -m pe_iqa``): score images, rank channels, plot, plugin commands.

Commands::

    pe-iqa score -t DIST -r REF [METRIC ...]     score distorted images against references (default pe_alex)
    pe-iqa score --pairs pairs.csv --csv out.csv  a manifest of pairs, streamed to a resumable CSV
    pe-iqa score --sample pe_alex lpips ssim      score the bundled sample (one image, six distortions)
    pe-iqa rank BACKBONE [--layers ...]           PE ranking of each layer's channels (table, JSON or CSV)
    pe-iqa plot BACKBONE [--layers ...]           tuning curves, PE histograms and first-layer filters (PNG)
    pe-iqa pyiqa ARGS ...                         pyiqa's own command line with the pe metrics registered
                                                  (a plugin command: pip install 'pe-iqa[pyiqa]')

One module per command (:mod:`.score`, :mod:`.rank`, :mod:`.plot`); plugin commands come from the entry-point
group ``pe_iqa.commands``, so the core never imports a plugin. Results go to standard output; progress, timings,
warnings and "wrote FILE" lines to standard error. Errors are one line on standard error with exit status 1
(something failed) or 2 (the command line is wrong); ``--debug`` (or ``PE_IQA_DEBUG=1``) shows the traceback.
"""

from .program import COMMAND_ENTRY_POINTS, build_parser, main
from .score import SAMPLE_DIR

__all__ = ["COMMAND_ENTRY_POINTS", "SAMPLE_DIR", "build_parser", "main"]

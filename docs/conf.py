"""Sphinx configuration of the pe-iqa documentation site.

Build (offline: no intersphinx, no remote images), warnings as errors as ``.ci/run`` does::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Needs the ``docs`` extra (``pip install -e ".[docs]"``): Sphinx, MyST-Parser (the pages stay Markdown), Furo,
and TorchMetrics so that the TorchMetrics plugin's API can be imported for its reference.
"""

from __future__ import annotations

from importlib.metadata import version as _version

project = "pe-iqa"
author = "pe-iqa contributors"
copyright = "pe-iqa contributors, MIT licence"
release = _version("pe-iqa")
version = release

extensions = [
    "myst_parser",  # Markdown pages (the README's sections moved as they were)
    "sphinx.ext.autodoc",  # the API reference, from the docstrings
    "sphinx.ext.napoleon",  # ... which are Google style
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: `[text](#a-heading)` links within a page, and ```` ```{directive} ```` blocks.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# autodoc / napoleon: Google docstrings, members in source order, type hints in the description.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"pe-iqa {release}"
html_static_path: list[str] = []

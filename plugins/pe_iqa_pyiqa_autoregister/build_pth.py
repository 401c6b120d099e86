"""Build step (setuptools ``build_py``) that ships ``pe_iqa_pyiqa.pth`` at the root of site-packages.

Used only while building pe-iqa (``[tool.setuptools.cmdclass] build_py = ...`` in ``pyproject.toml``; setuptools
loads this file directly, without importing the package). It writes one line that Python's ``site`` runs at
start-up (see :mod:`pe_iqa_pyiqa_autoregister`):

* regular wheels (``pip install pe-iqa``, ``pip wheel .``): the file goes into ``build_lib``, hence the wheel's
  root, hence site-packages; it is listed in the wheel's ``RECORD``, so ``pip uninstall`` removes it;
* editable installs (``pip install -e .``, PEP 660): setuptools builds the package files into a throw-away folder
  and ships only a path hook plus the files of the *unpacked wheel* folder, which is the ``install`` command's
  ``install_lib``; the ``.pth`` is written there, so it sits next to setuptools' own ``__editable__`` ``.pth``
  and is uninstalled with it.

The line is guarded: if the hook package is gone, start-up goes on silently; if it is broken (a SyntaxError, any
other exception), start-up goes on after one line on standard error, never a traceback, and that line is printed
once per process even where ``site`` processes the file twice (Python 3.11 with a ``lib64 → lib`` link).
"""

from __future__ import annotations

from pathlib import Path

try:
    from setuptools.command.build_py import build_py
except ImportError:  # only builds need setuptools; importing this module elsewhere (doctest collection) must not fail
    build_py = object

__all__ = ["PTH_LINE", "PTH_NAME", "BuildPyWithPth"]

PTH_NAME = "pe_iqa_pyiqa.pth"
PTH_LINE = ('import sys; exec("try:\\n import pe_iqa_pyiqa_autoregister as _h\\n _h.install()\\n'
            'except ImportError:\\n pass\\nexcept Exception as _e:\\n'
            ' if not getattr(sys, \'_pe_iqa_hook_said\', 0):\\n'
            '  sys._pe_iqa_hook_said = 1\\n'
            '  sys.stderr.write(\'pe-iqa: pyiqa hook disabled (%s: %s)\\\\n\' % (type(_e).__name__, _e))")\n')


class BuildPyWithPth(build_py):
    """``build_py`` that also writes :data:`PTH_NAME` at the root of the built (or editable) wheel."""

    def _pth_target(self) -> Path:
        if self.editable_mode:
            return Path(self.get_finalized_command("install").install_lib) / PTH_NAME
        return Path(self.build_lib) / PTH_NAME

    def run(self) -> None:
        super().run()
        target = self._pth_target()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PTH_LINE, encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        return outputs if self.editable_mode else [*outputs, str(Path(self.build_lib) / PTH_NAME)]

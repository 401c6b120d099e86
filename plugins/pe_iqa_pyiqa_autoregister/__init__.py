"""Adds pe-iqa's metrics to pyiqa's model configs when pyiqa first imports them, and only then.

``pe_iqa_pyiqa.pth`` (written by :mod:`.build_pth`) runs :func:`install` at start-up: a finder first on
``sys.meta_path`` that answers ``None`` for every module but ``pyiqa.default_model_configs``; for that one it
lets pyiqa's file load, then imports :mod:`pe_iqa_pyiqa` (which registers the presets) and removes itself.
Only ``os`` and ``sys`` are used here (start-up cost: ``benchmarks/autoregister_startup.py``). Opt out with
``PE_IQA_PYIQA_AUTOREGISTER=0``; ``python -I`` (isolated mode) and ``python -S`` skip it too; a failure in the
hook is a ``RuntimeWarning``, never a broken pyiqa.
"""

import os
import sys

__all__ = ["OPT_OUT_ENV", "TARGET_MODULE", "enabled", "install", "uninstall"]

#: The environment variable that turns the hook off.
OPT_OUT_ENV = "PE_IQA_PYIQA_AUTOREGISTER"
#: The only module the hook reacts to.
TARGET_MODULE = "pyiqa.default_model_configs"


def enabled() -> bool:
    """Whether ``PE_IQA_PYIQA_AUTOREGISTER`` allows the hook (anything but 0/false/no/off)."""
    return os.environ.get(OPT_OUT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _register(module) -> None:
    if not enabled() or getattr(module, "_pe_iqa_registered", False):
        return
    try:
        import pe_iqa_pyiqa  # noqa: F401  (its import registers the presets' configs and architecture)
    except Exception as error:  # never break pyiqa's own import
        import warnings

        warnings.warn(f"pe-iqa could not add its metrics to pyiqa ({type(error).__name__}: {error}); "
                      f"`import pe_iqa_pyiqa` to register them explicitly", RuntimeWarning, stacklevel=2)
    module._pe_iqa_registered = True


class _RegisteringLoader:
    """Wraps the real loader of ``pyiqa.default_model_configs``: execute it, then register."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _Finder:
    """A meta-path finder that only ever answers for :data:`TARGET_MODULE`."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != TARGET_MODULE:
            return None
        uninstall()  # once is enough; also keeps the search below from finding this finder again
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and enabled():
            spec.loader = _RegisteringLoader(spec.loader)
        return spec

    def __repr__(self) -> str:
        return f"<pe-iqa pyiqa autoregister finder for {TARGET_MODULE}>"


def install() -> None:
    """Put the finder in front of ``sys.meta_path`` (no-op when opted out, already installed, or pyiqa loaded).

    Also a no-op in isolated mode (``python -I``): Python still runs site-packages' ``.pth`` lines there, but an
    isolated interpreter asks for nothing but the standard start-up (``python -S`` skips ``.pth`` files anyway).
    """
    if not enabled() or sys.flags.isolated or TARGET_MODULE in sys.modules:
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def uninstall() -> None:
    """Remove the finder from ``sys.meta_path``."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _Finder)]

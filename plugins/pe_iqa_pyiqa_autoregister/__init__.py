"""Adds pe-iqa's metrics to pyiqa's model configs the moment pyiqa first imports them — and only then.

pyiqa checks ``pyiqa.default_model_configs.DEFAULT_CONFIGS`` (plain dicts) before it loads any entry point, so
without help a fresh ``pyiqa pe_alex -t DIST -r REF`` or ``pyiqa.create_metric("pe_alex")`` cannot know the
presets. pe-iqa installs ``pe_iqa_pyiqa.pth`` into site-packages; at interpreter start it runs::

    import pe_iqa_pyiqa_autoregister as hook; hook.install()

which puts a tiny finder at the front of ``sys.meta_path``. The finder answers ``None`` for every module except
``pyiqa.default_model_configs``; for that one it lets the normal machinery load pyiqa's file, then adds the
PE presets' configs (through :func:`pe_iqa_pyiqa.register`, which also registers their architecture) and removes
itself. Nothing else is imported at start-up: this module uses only ``os`` and ``sys`` (measured in
``benchmarks/autoregister_startup.py``). pyiqa's own ``pyiqa.archs`` entry point would register the
architecture on its own; the configs are what needs the hook.

Opt out with ``PE_IQA_PYIQA_AUTOREGISTER=0`` (also ``false``/``no``/``off``), read at start-up and again when
pyiqa is imported; ``import pe_iqa_pyiqa`` still registers explicitly. A failure inside the hook never breaks
pyiqa: it becomes a ``RuntimeWarning``.
"""

from __future__ import annotations

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
    """Put the finder in front of ``sys.meta_path`` (no-op when opted out, already installed, or pyiqa loaded)."""
    if not enabled() or TARGET_MODULE in sys.modules:
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def uninstall() -> None:
    """Remove the finder from ``sys.meta_path``."""
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _Finder)]

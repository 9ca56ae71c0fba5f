"""Old module paths keep working: ``import perceptual_utils.style_net`` gives the module's new home
(:mod:`perceptual_utils.style.net`) with a ``DeprecationWarning`` naming it.

One table, :data:`MOVED`, and one meta-path finder. An old module that moved whole is the new module
itself (same object, so ``monkeypatch`` through the old path still reaches it); one that was split
(``fetch``, ``widgets``, ``optimize``) is a module that finds each name in its new homes, in order.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

_P = "perceptual_utils."

#: old module -> new module(s), without the ``perceptual_utils.`` prefix.
MOVED: dict[str, tuple[str, ...]] = {
    "loss_network": ("vgg.network",),
    "weights": ("vgg.weights",),
    "optimize": ("optimization.runner", "optimization.inversion", "optimization.texture",
                 "optimization.gatys", "vgg.cache", "optimization.cli"),
    "style_net": ("style.net",),
    "style_training": ("style.training",),
    "stylize": ("style.stylize",),
    "style_eval": ("style.evaluation",),
    "benchmark": ("style.timing",),
    "sr_net": ("sr.net",),
    "degradation": ("sr.degradation",),
    "sr_training": ("sr.training",),
    "upscale": ("sr.upscale",),
    "sr_eval": ("sr.evaluation",),
    "metrics": ("sr.metrics",),
    "fetch": ("download.downloader", "download.weights_sources", "download.catalogue", "download.cli"),
    "widgets": ("teaching.frames", "teaching.panel", "datafiles"),
    "exercises": ("teaching.exercises",),
    "data": ("datafiles",),
    "datasets": ("training_data",),
    "batch": ("process_files",),
}


def _fill_split_module(module: types.ModuleType, old: str, targets: list[types.ModuleType]) -> None:
    module.__doc__ = f"Deprecated: the names of {old} now live in {', '.join(t.__name__ for t in targets)}."

    def __getattr__(name: str):
        for target in targets:
            if hasattr(target, name):
                return getattr(target, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r} (it moved to "
                             f"{', '.join(t.__name__ for t in targets)})")

    module.__getattr__ = __getattr__
    module.__dir__ = lambda: sorted({n for t in targets for n in dir(t) if not n.startswith("__")})


class _Loader(importlib.abc.Loader):
    def __init__(self, old: str, new: tuple[str, ...]):
        self.old, self.new = old, tuple(_P + n for n in new)

    def create_module(self, spec):
        return None  # a plain module; exec_module decides what the old name stands for

    def exec_module(self, module) -> None:
        # stacklevel 2: the caller's import statement (warnings skips importlib's own frames)
        warnings.warn(f"{self.old} is deprecated; import from {' / '.join(self.new)} instead",
                      DeprecationWarning, stacklevel=2)
        targets = [importlib.import_module(n) for n in self.new]
        if len(targets) == 1:
            sys.modules[self.old] = targets[0]  # the import system hands out what sys.modules holds
        else:
            _fill_split_module(module, self.old, targets)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_P) or fullname[len(_P):] not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(fullname, MOVED[fullname[len(_P):]]))


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())

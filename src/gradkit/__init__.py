"""gradkit: the mathematics of a first deep-learning course as fast, checked CPU kernels.

Submodules load on first use so that ``import gradkit`` stays fast (Numba, scikit-learn and
matplotlib are only imported by the parts that need them).
"""
from __future__ import annotations

import importlib
from typing import Any

from gradkit._config import (
    available_backends,
    config,
    get_backend,
    get_num_threads,
    set_backend,
    set_num_threads,
    show_config,
    use_backend,
)

__version__ = "0.1.0"

_SUBMODULES = {"functional", "nn", "losses", "optim", "train", "descent", "cluster", "datasets",
               "io", "plot", "cli", "backends"}
_ATTRS = {
    "fit": "train",
    "predict": "train",
    "evaluate": "train",
    "History": "train",
    "save": "io",
    "load": "io",
}

__all__ = sorted(
    ["available_backends", "config", "get_backend", "get_num_threads", "set_backend", "set_num_threads",
     "show_config", "use_backend", "__version__", *_SUBMODULES, *_ATTRS]
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"gradkit.{name}")
    if name in _ATTRS:
        return getattr(importlib.import_module(f"gradkit.{_ATTRS[name]}"), name)
    raise AttributeError(f"module 'gradkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__

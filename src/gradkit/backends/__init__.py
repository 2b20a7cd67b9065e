"""Backends: one module each, the same op names and signatures.

``ops_numpy`` is the specification: every other backend must match it (tests/test_backends.py).
The ops, their contracts, the activation and loss codes and what each backend implements are
registered in ``_spec.py``. ``load(name)`` returns a :class:`Backend` that exposes exactly the
ops registered for it; asking it for another op raises ``MissingOpError`` (a
NotImplementedError naming the backend and the op), never a silent switch to another backend.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from gradkit.backends._spec import (
    ACTIVATIONS,
    BACKENDS,
    OPS,
    REDUCTIONS,
    MissingOpError,
    ops_of,
)

__all__ = ["ACTIVATIONS", "BACKENDS", "REDUCTIONS", "Backend", "MissingOpError", "available",
           "load", "set_numba_threads"]

_MODULES = {"cpp": "gradkit.backends.ops_cpp", "numba": "gradkit.backends.numba",
            "cython": "gradkit.backends.ops_cython", "numpy": "gradkit.backends.ops_numpy"}


class Backend:
    """The registered ops of one backend module, as attributes (``ops.relu(x)``)."""

    def __init__(self, name: str, module: ModuleType):
        self.name = name
        self.module = module
        for op in ops_of(name):
            # A registered op the module lacks is a build out of date with its sources.
            if hasattr(module, op):
                setattr(self, op, getattr(module, op))

    def __getattr__(self, attr):  # only reached for what __init__ did not set
        if attr in OPS:
            raise MissingOpError(self.name, attr)
        return getattr(self.module, attr)  # a module's own helper (ops_numpy.kmeans_lloyd_loop)

    def __repr__(self):
        return f"<gradkit backend {self.name!r} ({self.module.__name__})>"


_loaded: dict[str, Backend] = {}


def load(name: str) -> Backend:
    """Import (once) and return the backend called ``name``."""
    if name in _loaded:
        return _loaded[name]
    if name not in BACKENDS:
        raise ValueError(f"backend={name!r} must be one of {', '.join(map(repr, BACKENDS))}")
    if name == "numba":
        # Starting Numba's OpenMP threading layer resets OpenMP's thread count to all cores,
        # which would silently override OMP_NUM_THREADS / gk.set_num_threads for every backend.
        from gradkit import _core

        threads = _core.get_num_threads()
        module = importlib.import_module(_MODULES[name])
        set_numba_threads(threads)
        _core.set_num_threads(threads)
    else:
        module = importlib.import_module(_MODULES[name])
    _loaded[name] = Backend(name, module)
    return _loaded[name]


def available() -> list[str]:
    """Backends that import here. Numba is only looked up, not imported (``import numba``
    alone takes a few tenths of a second)."""
    names = []
    for name in BACKENDS:
        if name == "numba" and name not in _loaded:
            if importlib.util.find_spec("numba") is not None:
                names.append(name)
            continue
        try:
            load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def set_numba_threads(n: int) -> None:
    """Numba keeps its own pool; only touch it when Numba is already imported."""
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))

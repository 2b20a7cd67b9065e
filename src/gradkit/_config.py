"""Backend choice and thread count: process-wide settings, read once per public call."""
from __future__ import annotations

import contextlib
import platform
from types import ModuleType
from typing import Iterator

from gradkit import backends as _backends

_state = {"backend": "cpp"}


def set_backend(name: str) -> None:
    """Select the backend every gradkit call uses: "cpp" (default), "numba", "cython" or "numpy"."""
    _backends.load(name)  # raises a ValueError/ImportError that says why
    _state["backend"] = name


def get_backend() -> str:
    """Name of the backend in use."""
    return _state["backend"]


def ops() -> ModuleType:
    """The module implementing the kernels for the current backend."""
    return _backends.load(_state["backend"])


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager: ``with gk.use_backend("numba"): ...`` restores the previous backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield
    finally:
        _state["backend"] = previous


def available_backends() -> list[str]:
    """Backends that import on this machine, in order of preference."""
    return _backends.available()


def set_num_threads(n: int) -> None:
    """Threads for every compiled backend (OpenMP for C++/Cython, and Numba once it is loaded)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    from gradkit import _core

    # Numba first: starting its threading layer can reset OpenMP's thread count.
    _backends.set_numba_threads(n)
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the compiled kernels use (OpenMP's max threads)."""
    from gradkit import _core

    return int(_core.get_num_threads())


def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n < 1 << 20 else f"{n / (1 << 20):g} MiB"


def config() -> dict:
    """The version, the ISA in use (and the best one detected), the caches read from the CPU,
    threads and the backends."""
    from gradkit import __version__, _core

    cpu = _core.cpu_info()
    return {
        "version": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "isa": _core.active_isa(),
        "isa_detected": _core.detected_isa(),
        "vector_bits": cpu["vector_bits"],
        "l1d_cache": _kib(cpu["l1d_bytes"]),
        "l2_cache": _kib(cpu["l2_bytes"]),
        "l3_cache": _kib(cpu["l3_bytes"]),
        "cache_source": cpu["cache_source"],
        "threads": get_num_threads(),
        "backend": get_backend(),
        "backends": available_backends(),
    }


def show_config(file=None) -> None:
    """Print ``config()`` as a table (to ``file``, default stdout); ``gk.config()`` returns it."""
    info = config()
    width = max(map(len, info))
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:<{width}} : {value}", file=file)

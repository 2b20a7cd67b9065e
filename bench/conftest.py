"""Shared helpers for the benchmarks (pytest-benchmark).

Conventions every bench file follows, so that ``bench/report.py`` can tabulate any of them:
- ``benchmark.group`` names the case (one table row per case and run), e.g. "gemm f32 256x256x256";
- the implementation is the test's ``impl`` parameter id, or ``benchmark.extra_info["impl"]``;
- the ``record`` fixture, ``record(benchmark, impl, flops=..., bytes=...)``, stores the work
  done by one call, from which the report derives GFLOP/s or GB/s at the statistic it shows;
- ``backend_function(name, function)`` (a fixture too) gets a backend's function or skips;
- ``add_rates(benchmark)`` after the timed call stores gflops/gbps at the median in extra_info;
- each benchmark asserts its result is right before it is timed.
Thread counts come from the environment (OMP_NUM_THREADS), one setting per run: see run_all.sh.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends


def record(benchmark, impl, *, flops=None, bytes=None, **extra):
    """Store what the report needs in extra_info: implementation, work per call, environment."""
    info = benchmark.extra_info
    info["impl"] = impl
    if flops is not None:
        info["flops"] = float(flops)
    if bytes is not None:
        info["bytes"] = float(bytes)
    info["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS", "")
    info["openblas_coretype"] = os.environ.get("OPENBLAS_CORETYPE", "")
    info.update(extra)


def add_rates(benchmark):
    """After the timing: GFLOP/s / GB/s at the median, kept in extra_info for a quick look."""
    info = benchmark.extra_info
    median = benchmark.stats.stats.median
    if "flops" in info:
        info["gflops"] = info["flops"] / median / 1e9
    if "bytes" in info:
        info["gbps"] = info["bytes"] / median / 1e9


def backend_function(name, function):
    """``gradkit.backends.load(name).<function>``, or skip when that backend lacks it here."""
    try:
        module = backends.load(name)
    except ImportError as exc:
        pytest.skip(f"backend {name!r} does not import: {exc}")
    if not hasattr(module, function):
        pytest.skip(f"backend {name!r} has no {function} yet")
    return getattr(module, function)


@pytest.fixture(autouse=True)
def _threads_from_environment():
    """Hold every backend to OMP_NUM_THREADS for each benchmark.

    Loading the Numba backend starts Numba's threading layer, which resets the OpenMP thread
    count that _core shares (and Numba itself ignores OMP_NUM_THREADS): without this, a
    "1 thread" run times gradkit with 2 threads on a machine where the other core is busy.
    """
    backends.available()  # import every backend first, so none can reset the count later
    wanted = os.environ.get("OMP_NUM_THREADS")
    if wanted:
        gk.set_num_threads(int(wanted))
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(2026)


# Fixtures rather than imports: a bench file never has to import this conftest by name (the tests/
# conftest has the same module name).
@pytest.fixture(name="record")
def _record_fixture():
    return record


@pytest.fixture(name="add_rates")
def _add_rates_fixture():
    return add_rates


@pytest.fixture(name="backend_function")
def _backend_function_fixture():
    return backend_function

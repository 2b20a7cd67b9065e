"""Shared fixtures: every backend that imports here, and per-dtype tolerances."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends

# CI=true turns skips for a missing oracle or data set into failures (see ci_oracles.py).
from ci_oracles import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401

ALL_BACKENDS = list(backends.BACKENDS)

# Agreement between backends (different summation orders), per dtype.
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _importable(name):
    try:
        backends.load(name)
    except ImportError:
        return False
    return True


@pytest.fixture(params=ALL_BACKENDS)
def backend(request):
    """Run the test once per backend, with that backend selected."""
    name = request.param
    if not _importable(name):
        pytest.skip(f"backend {name!r} does not import here")
    with gk.use_backend(name):
        yield name


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# Each C++ instruction-set path in turn (skipped where the CPU lacks it); restores the ISA after.
@pytest.fixture(params=["portable", "avx2", "avx512"])
def forced_isa(request):
    from gradkit import _core

    before = _core.active_isa()
    _core.force_isa(request.param)
    if _core.active_isa() != request.param:
        _core.force_isa(before)
        pytest.skip(f"{request.param} not available here")
    yield request.param
    _core.force_isa(before)

"""The C++ backend: adapts gradkit._core (pybind11) to the backend contract in
``gradkit.backends``. Arrays arrive validated and C-contiguous; _core refuses anything else."""
from __future__ import annotations

import numpy as np

from gradkit import _core

# ---------------------------------------------------------------------------- GEMM and dense


def matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    if out is None:
        m = a.shape[1] if trans_a else a.shape[0]
        n = b.shape[0] if trans_b else b.shape[1]
        out = np.empty((m, n), dtype=a.dtype)
        accumulate = False
    return _core.matmul(a, b, trans_a, trans_b, out, accumulate)


def linear(x, w, b, activation="none", slope=0.01):
    return _core.linear(x, w, b, activation, slope)


def linear_backward(dy, x, w, dw, db, need_dx=True):
    return _core.linear_backward(dy, x, w, dw, db, need_dx)

"""GEMM and dense layers. The products are NumPy's np.dot (BLAS), called from Python: a kernel
would call the same BLAS, after copying a transposed view, and compiling np.dot costs seconds;
the bias, the activation and the bias gradient are kernels."""
from __future__ import annotations

import numpy as np

from gradkit.backends._spec import ACTIVATION_CODES
from gradkit.backends.numba import formulas as f
from gradkit.backends.numba._jit import kernel, op


@kernel
def _bias_activate(z, b, has_bias, code, slope):
    """z = act(z + b) in place, row by row; "none" without a bias leaves z as it is."""
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[i, j] + b[j] if has_bias else z[i, j]
            z[i, j] = f.activate(v, code, slope)


@kernel
def _sum_rows_into(dy, db):
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            db[j] += dy[i, j]


@op("matmul")
def matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    result = np.dot(a.T if trans_a else a, b.T if trans_b else b)
    if out is None:
        return result
    if accumulate:
        out += result
    else:
        out[...] = result
    return out


@op("linear")
def linear(x, w, b, activation="none", slope=0.01):
    z = np.dot(x, w.T)
    code = ACTIVATION_CODES[activation]
    if b is not None or code != ACTIVATION_CODES["none"]:
        bias = b if b is not None else np.zeros(1, z.dtype)
        _bias_activate(z, bias, b is not None, code, z.dtype.type(slope))
    return z


@op("linear_backward")
def linear_backward(dy, x, w, dw, db, need_dx=True):
    dw += np.dot(dy.T, x)
    if db is not None:
        _sum_rows_into(dy, db)
    return np.dot(dy, w) if need_dx else None

"""Activations and their backward passes, elementwise over flat arrays, and row-wise softmax.

Each activation has its own range kernel (so the first use of relu compiles relu only) and its
own ``parallel=True`` driver that runs fixed chunks with prange; small inputs take the range
kernel on the calling thread. The formula itself lives in ``formulas``.

The range kernels slice and then index from 0: a ``range(lo, hi)`` index may be negative as far
as Numba knows, and its wraparound check keeps LLVM from vectorising (4x slower).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from gradkit.backends.numba import formulas as f
from gradkit.backends.numba._jit import CHUNK, PARALLEL_MIN, kernel, n_chunks, op

# ---- forward: y[lo:hi] = act(x[lo:hi])


@kernel
def _relu_range(y, x, lo, hi):
    y, x = y[lo:hi], x[lo:hi]
    for i in range(hi - lo):
        y[i] = f.relu(x[i])


@kernel
def _leaky_relu_range(y, x, slope, lo, hi):
    y, x = y[lo:hi], x[lo:hi]
    for i in range(hi - lo):
        y[i] = f.leaky_relu(x[i], slope)


@kernel
def _sigmoid_range(y, x, lo, hi):
    y, x = y[lo:hi], x[lo:hi]
    for i in range(hi - lo):
        y[i] = f.sigmoid(x[i])


@kernel
def _tanh_range(y, x, lo, hi):
    y, x = y[lo:hi], x[lo:hi]
    for i in range(hi - lo):
        y[i] = f.tanh(x[i])


@kernel(parallel=True)
def _relu_parallel(y, x):
    for c in prange(n_chunks(x.size)):
        _relu_range(y, x, c * CHUNK, min(x.size, (c + 1) * CHUNK))


@kernel(parallel=True)
def _leaky_relu_parallel(y, x, slope):
    for c in prange(n_chunks(x.size)):
        _leaky_relu_range(y, x, slope, c * CHUNK, min(x.size, (c + 1) * CHUNK))


@kernel(parallel=True)
def _sigmoid_parallel(y, x):
    for c in prange(n_chunks(x.size)):
        _sigmoid_range(y, x, c * CHUNK, min(x.size, (c + 1) * CHUNK))


@kernel(parallel=True)
def _tanh_parallel(y, x):
    for c in prange(n_chunks(x.size)):
        _tanh_range(y, x, c * CHUNK, min(x.size, (c + 1) * CHUNK))


# ---- backward: dx[lo:hi] = dy * act'(from the output y)


@kernel
def _relu_back_range(dx, dy, y, lo, hi):
    dx, dy, y = dx[lo:hi], dy[lo:hi], y[lo:hi]
    for i in range(hi - lo):
        dx[i] = f.relu_grad(dy[i], y[i])


@kernel
def _leaky_relu_back_range(dx, dy, y, slope, lo, hi):
    dx, dy, y = dx[lo:hi], dy[lo:hi], y[lo:hi]
    for i in range(hi - lo):
        dx[i] = f.leaky_relu_grad(dy[i], y[i], slope)


@kernel
def _sigmoid_back_range(dx, dy, y, lo, hi):
    dx, dy, y = dx[lo:hi], dy[lo:hi], y[lo:hi]
    for i in range(hi - lo):
        dx[i] = f.sigmoid_grad(dy[i], y[i])


@kernel
def _tanh_back_range(dx, dy, y, lo, hi):
    dx, dy, y = dx[lo:hi], dy[lo:hi], y[lo:hi]
    for i in range(hi - lo):
        dx[i] = f.tanh_grad(dy[i], y[i])


@kernel(parallel=True)
def _relu_back_parallel(dx, dy, y):
    for c in prange(n_chunks(y.size)):
        _relu_back_range(dx, dy, y, c * CHUNK, min(y.size, (c + 1) * CHUNK))


@kernel(parallel=True)
def _leaky_relu_back_parallel(dx, dy, y, slope):
    for c in prange(n_chunks(y.size)):
        _leaky_relu_back_range(dx, dy, y, slope, c * CHUNK, min(y.size, (c + 1) * CHUNK))


@kernel(parallel=True)
def _sigmoid_back_parallel(dx, dy, y):
    for c in prange(n_chunks(y.size)):
        _sigmoid_back_range(dx, dy, y, c * CHUNK, min(y.size, (c + 1) * CHUNK))


@kernel(parallel=True)
def _tanh_back_parallel(dx, dy, y):
    for c in prange(n_chunks(y.size)):
        _tanh_back_range(dx, dy, y, c * CHUNK, min(y.size, (c + 1) * CHUNK))


def _run(serial, parallel, out, arrays, scalars=()):
    """out = kernel(arrays, scalars) over the flat arrays; returns out in its own shape."""
    flat = [a.reshape(-1) for a in (out, *arrays)]
    if out.size >= PARALLEL_MIN:
        parallel(*flat, *scalars)
    else:
        serial(*flat, *scalars, 0, out.size)
    return out


@op("relu")
def relu(x):
    return _run(_relu_range, _relu_parallel, np.empty_like(x), (x,))


@op("relu_backward")
def relu_backward(dy, y):
    return _run(_relu_back_range, _relu_back_parallel, np.empty_like(y), (dy, y))


@op("leaky_relu")
def leaky_relu(x, slope):
    return _run(_leaky_relu_range, _leaky_relu_parallel, np.empty_like(x), (x,),
                (x.dtype.type(slope),))


@op("leaky_relu_backward")
def leaky_relu_backward(dy, y, slope):
    return _run(_leaky_relu_back_range, _leaky_relu_back_parallel, np.empty_like(y), (dy, y),
                (y.dtype.type(slope),))


@op("sigmoid")
def sigmoid(x):
    return _run(_sigmoid_range, _sigmoid_parallel, np.empty_like(x), (x,))


@op("sigmoid_backward")
def sigmoid_backward(dy, y):
    return _run(_sigmoid_back_range, _sigmoid_back_parallel, np.empty_like(y), (dy, y))


@op("tanh")
def tanh(x):
    return _run(_tanh_range, _tanh_parallel, np.empty_like(x), (x,))


@op("tanh_backward")
def tanh_backward(dy, y):
    return _run(_tanh_back_range, _tanh_back_parallel, np.empty_like(y), (dy, y))


# ---- softmax, row by row


@kernel
def _softmax_rows(y, x):
    for r in range(x.shape[0]):
        mx = x[r, 0]
        for j in range(1, x.shape[1]):
            mx = max(mx, x[r, j])
        total = x.dtype.type(0)
        for j in range(x.shape[1]):
            e = np.exp(x[r, j] - mx)
            y[r, j] = e
            total += e
        inv = x.dtype.type(1) / total
        for j in range(x.shape[1]):
            y[r, j] *= inv


@kernel
def _softmax_back_rows(dx, dy, y):
    for r in range(y.shape[0]):
        dot = y.dtype.type(0)
        for j in range(y.shape[1]):
            dot += dy[r, j] * y[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = y[r, j] * (dy[r, j] - dot)


@op("softmax")
def softmax(x):
    y = np.empty_like(x)
    if x.size:
        _softmax_rows(y, x)
    return y


@op("softmax_backward")
def softmax_backward(dy, y):
    dx = np.empty_like(y)
    if y.size:
        _softmax_back_rows(dx, dy, y)
    return dx

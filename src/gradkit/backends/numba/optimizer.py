"""SGD and Adam, in place over flat parameter arrays; the update rules live in ``formulas``.
Large arrays run fixed chunks with prange (each element's update is independent, so the
result does not depend on the thread count)."""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from gradkit.backends.numba import formulas as f
from gradkit.backends.numba._jit import CHUNK, PARALLEL_MIN, kernel, n_chunks, op


@kernel
def sgd_range(param, grad, buf, lr, momentum, damp1, nesterov, wd, first, use_buf):
    """SGD over whole 1-D arrays (buf unused without momentum); the fused epoch calls it too."""
    if use_buf and wd == 0 and not nesterov and not first:
        # plain momentum, the common case: constant flags, so a loop without branches
        for i in range(param.size):
            param[i], buf[i] = f.sgd(param[i], grad[i], buf[i], lr, momentum, damp1, False, wd,
                                     False, True)
    elif use_buf:
        for i in range(param.size):
            param[i], buf[i] = f.sgd(param[i], grad[i], buf[i], lr, momentum, damp1, nesterov,
                                     wd, first, True)
    else:
        for i in range(param.size):
            param[i], _ = f.sgd(param[i], grad[i], param[i], lr, momentum, damp1, False, wd,
                                False, False)


@kernel(parallel=True)
def _sgd_parallel(param, grad, buf, lr, momentum, damp1, nesterov, wd, first, use_buf):
    n = param.size
    for c in prange(n_chunks(n)):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        b = buf[lo:hi] if use_buf else buf
        sgd_range(param[lo:hi], grad[lo:hi], b, lr, momentum, damp1, nesterov, wd, first,
                  use_buf)


@op("sgd_step")
def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    t = param.dtype.type
    use_buf = momentum != 0
    flat_buf = buf.reshape(-1) if use_buf else np.empty(1, param.dtype)
    args = (param.reshape(-1), grad.reshape(-1), flat_buf, t(lr), t(momentum), t(1 - dampening),
            bool(nesterov), t(weight_decay), bool(first), use_buf)
    if param.size >= PARALLEL_MIN:
        _sgd_parallel(*args)
    else:
        sgd_range(*args)


@kernel
def _adam_range(param, grad, m, v, vmax, b1, one_b1, b2, one_b2, eps, wd, decay, decoupled,
                amsgrad, step_size, sqrt_bc2):
    for i in range(param.size):
        k = i if amsgrad else 0
        param[i], m[i], v[i], vmax[k] = f.adam(param[i], grad[i], m[i], v[i], vmax[k], b1,
                                               one_b1, b2, one_b2, eps, wd, decay, decoupled,
                                               amsgrad, step_size, sqrt_bc2)


@kernel(parallel=True)
def _adam_parallel(param, grad, m, v, vmax, b1, one_b1, b2, one_b2, eps, wd, decay, decoupled,
                   amsgrad, step_size, sqrt_bc2):
    n = param.size
    for c in prange(n_chunks(n)):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        vm = vmax[lo:hi] if amsgrad else vmax
        _adam_range(param[lo:hi], grad[lo:hi], m[lo:hi], v[lo:hi], vm, b1, one_b1, b2, one_b2,
                    eps, wd, decay, decoupled, amsgrad, step_size, sqrt_bc2)


@op("adam_step")
def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, decoupled):
    t = param.dtype.type
    amsgrad = bool(amsgrad)
    vmax = max_exp_avg_sq.reshape(-1) if amsgrad else np.zeros(1, param.dtype)
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    args = (param.reshape(-1), grad.reshape(-1), exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
            vmax, t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(eps), t(weight_decay),
            t(1.0 - lr * weight_decay), bool(decoupled), amsgrad, t(lr / bc1), t(math.sqrt(bc2)))
    if param.size >= PARALLEL_MIN:
        _adam_parallel(*args)
    else:
        _adam_range(*args)

"""Each scalar formula once: the activations, their derivatives and the SGD and Adam updates,
used by the standalone kernels and by the fused epoch alike.

Constants are float32 (0, 1, 0.5 are exact in it): float32 with float32 stays float32 and
float32 with float64 is float64, so one formula serves both dtypes. A Python int literal would
promote float32 arithmetic to float64.
"""
from __future__ import annotations

import numpy as np

from gradkit.backends._spec import ACTIVATION_CODES
from gradkit.backends.numba._fastmath import exp, log, log1p
from gradkit.backends.numba._jit import kernel

RELU = ACTIVATION_CODES["relu"]
LEAKY_RELU = ACTIVATION_CODES["leaky_relu"]
SIGMOID = ACTIVATION_CODES["sigmoid"]
TANH = ACTIVATION_CODES["tanh"]

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@kernel
def relu(z):
    return _ZERO if z < _ZERO else z  # NaN is not < 0: it stays NaN, as np.maximum(z, 0)


@kernel
def leaky_relu(z, slope):
    return z if z > _ZERO else z * slope


@kernel
def sigmoid(z):
    e = exp(-abs(z))  # of a non-positive number: never overflows
    pos = np.float32(z >= _ZERO)  # arithmetic, not a branch, on the sign
    return (pos + (_ONE - pos) * e) / (_ONE + e)


@kernel
def tanh(z):
    return np.tanh(z)


@kernel
def relu_grad(d, y):
    return d if y > _ZERO else _ZERO


@kernel
def leaky_relu_grad(d, y, slope):
    return d if y > _ZERO else d * slope


@kernel
def sigmoid_grad(d, y):
    return d * y * (_ONE - y)


@kernel
def tanh_grad(d, y):
    return d * (_ONE - y * y)


@kernel(inline="always")
def activate(z, code, slope):
    """The activation with ACTIVATION_CODES code of z ("none": z itself)."""
    if code == RELU:
        return relu(z)
    if code == LEAKY_RELU:
        return leaky_relu(z, slope)
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return tanh(z)
    return z


@kernel(inline="always")
def activate_grad(d, y, code, slope):
    """d times the derivative of the activation ``code``, from its output y."""
    if code == RELU:
        return relu_grad(d, y)
    if code == LEAKY_RELU:
        return leaky_relu_grad(d, y, slope)
    if code == SIGMOID:
        return sigmoid_grad(d, y)
    if code == TANH:
        return tanh_grad(d, y)
    return d


# ---- losses, per element: (value, gradient), the gradient already times scale
# (scale = 1/n for "mean", 1 for "sum", times 2*factor for MSE).


@kernel
def l1(p, t, scale):
    d = p - t
    if d != d:  # NaN stays NaN, as np.sign(nan)
        return abs(d), d * scale
    return abs(d), (np.float32(d > _ZERO) - np.float32(d < _ZERO)) * scale


@kernel
def mse(p, t, factor, scale):
    d = p - t
    return factor * d * d, d * scale


@kernel
def bce(p, t, scale, eps):
    """-(t log p + (1 - t) log(1 - p)), each log clamped at -100 as PyTorch does; the
    denominator of the gradient kept at least eps (PyTorch's 1e-12, in p's dtype)."""
    log_p = max(log(p), np.float32(-100.0))
    log_1mp = max(log1p(-p), np.float32(-100.0))
    grad = (p - t) / max(p * (_ONE - p), eps) * scale
    return -(t * log_p + (_ONE - t) * log_1mp), grad


@kernel
def bce_with_logits_linear(z, t):
    """max(z, 0) - t z; at z = ±inf, where that is inf - inf or 0 * inf, its limit: (1 - t) z
    for z > 0 and -t z for z < 0, with a coefficient of exactly 0 giving 0 (ops_numpy)."""
    if abs(z) == np.inf:
        coef = _ONE - t if z > _ZERO else -t
        return _ZERO if coef == _ZERO else coef * z
    return (z if z > _ZERO else _ZERO) - t * z  # a NaN z gives NaN through t * z


@kernel
def bce_with_logits(z, t, scale):
    """max(z, 0) - t z + log(1 + e^-|z|): no overflow for any z."""
    e = exp(-abs(z))
    return bce_with_logits_linear(z, t) + log1p(e), (sigmoid(z) - t) * scale


# ---- optimisers, per element


@kernel
def sgd(p, g, b, lr, momentum, damp1, nesterov, wd, first, use_buf):
    """One SGD step of one parameter p with gradient g and momentum buffer b (PyTorch
    semantics; damp1 = 1 - dampening): returns (p, b)."""
    if wd != 0:
        g = g + wd * p
    if use_buf:
        b = g if first else momentum * b + damp1 * g
        g = g + momentum * b if nesterov else b
    return p - lr * g, b


@kernel
def adam(p, g, m, v, vmax, b1, one_b1, b2, one_b2, eps, wd, decay, decoupled, amsgrad,
         step_size, sqrt_bc2):
    """One Adam step of one parameter (PyTorch semantics): returns (p, m, v, vmax). The
    constants come rounded to p's dtype: one_b1 = 1 - b1, one_b2 = 1 - b2, decay =
    1 - lr * wd (decoupled, AdamW), step_size = lr / (1 - b1^step), sqrt_bc2 =
    sqrt(1 - b2^step)."""
    if decoupled:
        p = p * decay
    elif wd != 0:
        g = g + wd * p
    m = b1 * m + one_b1 * g
    v = b2 * v + one_b2 * g * g
    if amsgrad:
        vmax = v if (v > vmax or v != v) else vmax  # NaN propagates, as np.maximum
        denom = np.sqrt(vmax) / sqrt_bc2 + eps
    else:
        denom = np.sqrt(v) / sqrt_bc2 + eps
    return p - step_size * (m / denom), m, v, vmax

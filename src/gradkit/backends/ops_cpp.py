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


# ---- activations, losses, SGD (csrc/bindings/nn.cpp) ----------------------------------------
# _core validates nothing beyond dtype/contiguity/shape; the names match the contract, so most
# functions are the compiled ones themselves.

relu = _core.relu
relu_backward = _core.relu_backward
leaky_relu = _core.leaky_relu
leaky_relu_backward = _core.leaky_relu_backward
sigmoid = _core.sigmoid
sigmoid_backward = _core.sigmoid_backward
tanh = _core.tanh
tanh_backward = _core.tanh_backward
softmax = _core.softmax
softmax_backward = _core.softmax_backward


def l1_loss(pred, target, reduction="mean"):
    return _core.l1_loss(pred, target, reduction)


def mse_loss(pred, target, reduction="mean", half=False):
    return _core.mse_loss(pred, target, reduction, bool(half))


def bce_loss(pred, target, reduction="mean"):
    # The kernel counts p outside [0, 1] (or NaN) in the same pass and _core raises ValueError.
    return _core.bce_loss(pred, target, reduction)


def bce_with_logits_loss(logits, target, reduction="mean"):
    return _core.bce_with_logits_loss(logits, target, reduction)


def cross_entropy_loss(logits, labels, reduction="mean"):
    return _core.cross_entropy_loss(logits, labels, reduction)


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    _core.sgd_step(param, grad, buf, float(lr), float(momentum), float(dampening), bool(nesterov),
                   float(weight_decay), bool(first))

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


# ---- k-means


def kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads=1):
    centers_new = np.empty_like(centers)
    n_changed, shift, inertia, _ = _core.kmeans_lloyd_step(X, sample_weight, centers,
                                                            centers_new, labels, n_threads)
    return centers_new, n_changed, shift, inertia


def kmeans_assign(X, sample_weight, centers, n_threads=1):
    labels = np.empty(X.shape[0], dtype=np.int32)
    inertia = _core.kmeans_assign(X, sample_weight, centers, labels, n_threads)
    return labels, inertia


def kmeans_inertia(X, sample_weight, centers, labels, n_threads=1):
    return _core.kmeans_inertia(X, sample_weight, centers, labels, n_threads)


def kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads=1):
    centers = centers_init.copy()
    labels = np.empty(X.shape[0], dtype=np.int32)
    inertia, n_iter = _core.kmeans_lloyd(X, sample_weight, centers, labels, max_iter, tol,
                                         n_threads)
    return centers, labels, inertia, n_iter


def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    return _core.kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms,
                                 n_threads)


def kmeans_mean_variance(X, n_threads=1):
    return _core.kmeans_mean_variance(X, n_threads)


# ---- fused MLP epoch
# mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
#           X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
#           weight_decay, first, step_loss) -> steps done
# perm holds one epoch's row order (X's rows), which every epoch of the call takes, or several
# epochs' orders back to back (a multiple of X's rows), taken in turn; each epoch
# is cut into ceil(N / batch) mini-batches (the last may be smaller). Runs mini-batches
# first_step .. first_step + n_steps - 1, counted across those epochs, in place on the parameters and momentum buffers; writes each batch's loss to step_loss and
# stops early (returning the steps done) at a non-finite loss, without updating for it.
# loss in MLP_LOSSES; y is int64 labels (N,) for "cross_entropy", else targets (N, OUT).

MLP_LOSSES = ("cross_entropy", "mse", "l1", "bce_with_logits")
_ACT_CODES = {"none": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}


def mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
              X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
              weight_decay, first, step_loss, sparse_input="auto"):
    labels = y if loss == "cross_entropy" else None
    targets = None if loss == "cross_entropy" else y
    return _core.mlp_epoch(
        list(weights), list(biases), list(weight_bufs), list(bias_bufs),
        [_ACT_CODES[a] for a in activations], float(slope), MLP_LOSSES.index(loss),
        reduction == "mean", bool(half), X, labels, targets, perm, int(batch_size),
        int(first_step), int(n_steps), float(lr), float(momentum), float(dampening),
        bool(nesterov), float(weight_decay), bool(first), step_loss,
        {"auto": 2, True: 1, False: 0}[sparse_input])

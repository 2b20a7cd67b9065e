"""The C++ backend: adapts gradkit._core (pybind11) to the backend contract in
``gradkit.backends``. Arrays arrive validated and C-contiguous; _core refuses anything else."""
from __future__ import annotations

import numpy as np

from gradkit import _core
from gradkit.backends._spec import ACTIVATION_CODES, FUSED_LOSS_CODES

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


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, decoupled):
    _core.adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, int(step), float(lr),
                    float(beta1), float(beta2), float(eps), float(weight_decay), bool(amsgrad),
                    bool(decoupled))


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


KMEANS_ALGORITHMS = {"lloyd": 0, "hamerly": 1, "elkan": 2}  # the kernel's KMeansAlgorithm


def kmeans_fit(X, sample_weight, centers_init, max_iter, tol, algorithm, n_threads=1):
    """kmeans_lloyd with an exact algorithm from KMEANS_ALGORITHMS; also returns the number of
    row-centre distances computed."""
    centers = centers_init.copy()
    labels = np.empty(X.shape[0], dtype=np.int32)
    inertia, n_iter, n_distances = _core.kmeans_fit(X, sample_weight, centers, labels, max_iter,
                                                    tol, KMEANS_ALGORITHMS[algorithm],
                                                    n_threads)
    return centers, labels, inertia, n_iter, n_distances


def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    return _core.kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms,
                                 n_threads)


def kmeans_mean_variance(X, n_threads=1):
    return _core.kmeans_mean_variance(X, n_threads)


# ---- fused MLP epoch
# The contract is mlp_epoch's entry in _spec.py; the codes come from its tables.


def mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
              X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
              weight_decay, first, step_loss, sparse_input="auto", adam=None):
    labels = y if loss == "cross_entropy" else None
    targets = None if loss == "cross_entropy" else y
    extra = {}
    if adam is not None:
        extra = dict(optimizer=1, beta1=float(adam["betas"][0]), beta2=float(adam["betas"][1]),
                     eps=float(adam["eps"]), amsgrad=bool(adam["amsgrad"]),
                     decoupled=bool(adam["decoupled"]), adam_step=int(adam["step"]),
                     weight_moments=list(adam["weight_moments"]),
                     bias_moments=list(adam["bias_moments"]))
    return _core.mlp_epoch(
        list(weights), list(biases), list(weight_bufs), list(bias_bufs),
        [ACTIVATION_CODES[a] for a in activations], float(slope), FUSED_LOSS_CODES[loss],
        reduction == "mean", bool(half), X, labels, targets, perm, int(batch_size),
        int(first_step), int(n_steps), float(lr), float(momentum), float(dampening),
        bool(nesterov), float(weight_decay), bool(first), step_loss,
        {"auto": 2, True: 1, False: 0}[sparse_input], **extra)

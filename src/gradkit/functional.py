"""Stateless operations: the formulas of the course, checked once and run on the current backend.

Every function validates its input (shapes, dtypes, values), converts it once to C-contiguous
float32/float64, then calls the backend chosen with ``gk.set_backend``. Shapes follow PyTorch:
a dense layer's weight is (out_features, in_features).
"""
from __future__ import annotations

import numpy as np

from gradkit import _config
from gradkit._validation import (
    adam_hyperparameters,
    choice,
    float_array,
    label_array,
    real_number,
    same_shape,
)
from gradkit.backends import ACTIVATIONS, REDUCTIONS

__all__ = [
    "matmul", "linear", "linear_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "softmax", "softmax_backward",
    "l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy_loss",
    "sgd_step", "adam_step",
]


# ---------------------------------------------------------------------------- GEMM and dense


def matmul(a, b, *, trans_a: bool = False, trans_b: bool = False) -> np.ndarray:
    """``op(a) @ op(b)`` with gradkit's own GEMM; op transposes when trans_a / trans_b is set.

    a is (M, K) (or (K, M) with trans_a), b is (K, N) (or (N, K) with trans_b); result (M, N).
    """
    a = float_array(a, "a", ndim=2)
    b = float_array(b, "b", ndim=2, dtype=a.dtype)
    k_a = a.shape[0] if trans_a else a.shape[1]
    k_b = b.shape[1] if trans_b else b.shape[0]
    if k_a != k_b:
        raise ValueError(f"inner dimensions differ: op(a) has {k_a} columns, op(b) has {k_b} rows")
    return _config.ops().matmul(a, b, bool(trans_a), bool(trans_b))


def _check_linear(x, weight, bias):
    weight = float_array(weight, "weight", ndim=2)
    x = float_array(x, "x", ndim=2, dtype=weight.dtype)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but weight expects {weight.shape[1]} "
                         f"(weight is (out_features, in_features) = {weight.shape})")
    if bias is not None:
        bias = float_array(bias, "bias", ndim=1, dtype=weight.dtype)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias has {bias.shape[0]} entries but weight has "
                             f"{weight.shape[0]} output features")
    return x, weight, bias


def linear(x, weight, bias=None, *, activation: str = "none", slope: float = 0.01) -> np.ndarray:
    """Dense layer ``y = act(x @ weight.T + bias)``: each output is a weighted sum of the inputs.

    x (B, IN), weight (OUT, IN), bias (OUT,) or None -> y (B, OUT). ``activation`` is fused into
    the GEMM epilogue: "none", "relu", "leaky_relu" (with ``slope``), "sigmoid" or "tanh".
    """
    x, weight, bias = _check_linear(x, weight, bias)
    choice(activation, "activation", ACTIVATIONS)
    slope = real_number(slope, "slope", low=0.0)
    return _config.ops().linear(x, weight, bias, activation, slope)


def linear_backward(dy, x, weight, *, bias: bool = True, need_dx: bool = True):
    """Gradients of a dense layer: ``dx = dy @ W``, ``dW = dyᵀ @ x``, ``db = Σ_rows dy``.

    dy (B, OUT), x (B, IN), weight (OUT, IN) -> (dx (B, IN) or None, dW (OUT, IN), db (OUT,) or None).
    """
    x, weight, _ = _check_linear(x, weight, None)
    dy = float_array(dy, "dy", ndim=2, dtype=weight.dtype)
    if dy.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"dy must have shape (batch, out_features) = "
                         f"{(x.shape[0], weight.shape[0])}, got {dy.shape}")
    dw = np.zeros_like(weight)
    db = np.zeros(weight.shape[0], dtype=weight.dtype) if bias else None
    dx = _config.ops().linear_backward(dy, x, weight, dw, db, bool(need_dx))
    return dx, dw, db


# ------------------------------------------------------------------------------- activations


def _unary(name, x, *args):
    x = float_array(x, "x")
    return getattr(_config.ops(), name)(x, *args)


def _backward(name, dy, y, *args):
    y = float_array(y, "y")
    dy = float_array(dy, "dy", dtype=y.dtype)
    same_shape(dy, y, "dy", "y")
    return getattr(_config.ops(), name)(dy, y, *args)


def relu(x) -> np.ndarray:
    """``max(x, 0)`` elementwise."""
    return _unary("relu", x)


def relu_backward(dy, y) -> np.ndarray:
    """``dy * (y > 0)``, from the forward output y."""
    return _backward("relu_backward", dy, y)


def leaky_relu(x, slope: float = 0.01) -> np.ndarray:
    """``x if x > 0 else slope * x`` elementwise (slope >= 0)."""
    return _unary("leaky_relu", x, real_number(slope, "slope", low=0.0))


def leaky_relu_backward(dy, y, slope: float = 0.01) -> np.ndarray:
    """``dy * (1 if y > 0 else slope)``, from the forward output y."""
    return _backward("leaky_relu_backward", dy, y, real_number(slope, "slope", low=0.0))


def sigmoid(x) -> np.ndarray:
    """``1 / (1 + e^-x)`` elementwise, without overflow for large |x|."""
    return _unary("sigmoid", x)


def sigmoid_backward(dy, y) -> np.ndarray:
    """``dy * y * (1 - y)``, from the forward output y."""
    return _backward("sigmoid_backward", dy, y)


def tanh(x) -> np.ndarray:
    """``tanh(x)`` elementwise."""
    return _unary("tanh", x)


def tanh_backward(dy, y) -> np.ndarray:
    """``dy * (1 - y²)``, from the forward output y."""
    return _backward("tanh_backward", dy, y)


def softmax(x) -> np.ndarray:
    """Row-wise ``e^(x - max) / Σ e^(x - max)`` of a 2-D array (B, C)."""
    x = float_array(x, "x", ndim=2)
    return _config.ops().softmax(x)


def softmax_backward(dy, y) -> np.ndarray:
    """``y * (dy - Σ_row dy*y)``, from the forward output y (B, C)."""
    y = float_array(y, "y", ndim=2)
    dy = float_array(dy, "dy", dtype=y.dtype)
    same_shape(dy, y, "dy", "y")
    return _config.ops().softmax_backward(dy, y)


# ------------------------------------------------------------------------------------ losses


def _pair(pred, target, pred_name="pred"):
    pred = float_array(pred, pred_name)
    target = float_array(target, "target", dtype=pred.dtype)
    same_shape(pred, target, pred_name, "target")
    if pred.size == 0:
        raise ValueError(f"{pred_name} is empty; a loss needs at least one element")
    return pred, target


def l1_loss(pred, target, *, reduction: str = "mean"):
    """Mean absolute error ``Σ|p - y| / n`` -> (value, dL/dpred = sign(p - y) / n)."""
    pred, target = _pair(pred, target)
    choice(reduction, "reduction", REDUCTIONS)
    return _config.ops().l1_loss(pred, target, reduction)


def mse_loss(pred, target, *, reduction: str = "mean", half: bool = False):
    """Mean squared error ``Σ(p - y)² / n`` -> (value, dL/dpred = 2 (p - y) / n).

    ``half=True`` is the course's ``1/(2m)`` form: value ``Σ(p - y)² / (2n)``, gradient ``(p - y) / n``.
    """
    pred, target = _pair(pred, target)
    choice(reduction, "reduction", REDUCTIONS)
    return _config.ops().mse_loss(pred, target, reduction, bool(half))


def bce_loss(pred, target, *, reduction: str = "mean"):
    """Binary cross-entropy on probabilities ``-(y log p + (1 - y) log(1 - p))``.

    Returns (value, dL/dpred = (p - y) / (p (1 - p)) / n). Each log is clamped at -100, so p = 0
    or p = 1 gives a large finite loss, as in PyTorch. pred must lie in [0, 1].
    """
    pred, target = _pair(pred, target)
    choice(reduction, "reduction", REDUCTIONS)
    # The backend checks 0 <= pred <= 1 inside its fused pass and raises ValueError naming pred.
    return _config.ops().bce_loss(pred, target, reduction)


def bce_with_logits_loss(logits, target, *, reduction: str = "mean"):
    """Binary cross-entropy on logits z: ``max(z, 0) - y z + log(1 + e^-|z|)``, stable for any z.

    Returns (value, dL/dz = (sigmoid(z) - y) / n).
    """
    logits, target = _pair(logits, target, "logits")
    choice(reduction, "reduction", REDUCTIONS)
    return _config.ops().bce_with_logits_loss(logits, target, reduction)


def cross_entropy_loss(logits, labels, *, reduction: str = "mean"):
    """Softmax cross-entropy ``logsumexp(z) - z[label]`` per row of logits (B, C).

    labels are integer classes (B,) in [0, C). Returns (value, dL/dz = (softmax(z) - onehot) / B).
    """
    logits = float_array(logits, "logits", ndim=2)
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be non-empty (batch, classes), got shape {logits.shape}")
    labels = label_array(labels, "labels", n_classes=logits.shape[1], length=logits.shape[0])
    choice(reduction, "reduction", REDUCTIONS)
    return _config.ops().cross_entropy_loss(logits, labels, reduction)


# --------------------------------------------------------------------------------- optimiser


def sgd_step(param, grad, lr: float, *, momentum_buffer=None, momentum: float = 0.0,
             dampening: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
             first: bool = True) -> None:
    """One in-place SGD update ``param -= lr * g`` (PyTorch semantics).

    ``g = grad + weight_decay * param``; with momentum, ``buf = g`` on the first step and
    ``buf = momentum * buf + (1 - dampening) * g`` after; Nesterov uses ``g + momentum * buf``,
    otherwise ``buf``. param, grad and momentum_buffer must be C-contiguous arrays of one float
    dtype (they are updated in place, so they are never copied).
    """
    _require_inplace(param, "param")
    grad = float_array(grad, "grad", dtype=param.dtype)
    same_shape(param, grad, "param", "grad")
    lr = real_number(lr, "lr", low=0.0)
    momentum = real_number(momentum, "momentum", low=0.0)
    dampening = real_number(dampening, "dampening")
    weight_decay = real_number(weight_decay, "weight_decay", low=0.0)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("nesterov=True requires momentum > 0 and dampening == 0")
    if momentum != 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer is required when momentum != 0")
        _require_inplace(momentum_buffer, "momentum_buffer", like=param)
    else:
        momentum_buffer = None
    _config.ops().sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, bool(nesterov),
                           weight_decay, bool(first))


def adam_step(param, grad, exp_avg, exp_avg_sq, step: int, *, lr: float = 1e-3,
              betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
              amsgrad: bool = False, max_exp_avg_sq=None, decoupled: bool = False) -> None:
    """One in-place Adam update (PyTorch semantics; ``decoupled=True`` is AdamW).

    ``step`` is the 1-based count including this update. ``g = grad + weight_decay * param``
    (Adam) or ``param *= 1 - lr * weight_decay`` first (AdamW); ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g²`` (with amsgrad, ``max_exp_avg_sq = max(max_exp_avg_sq, v)`` is used
    for v); ``param -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)``. param,
    exp_avg, exp_avg_sq (and max_exp_avg_sq) are updated in place, so they are never copied.
    """
    _require_inplace(param, "param")
    grad = float_array(grad, "grad", dtype=param.dtype)
    same_shape(param, grad, "param", "grad")
    _require_inplace(exp_avg, "exp_avg", like=param)
    _require_inplace(exp_avg_sq, "exp_avg_sq", like=param)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an int (the 1-based update count), got {type(step).__name__}")
    if step < 1:
        raise ValueError(f"step={step} must be >= 1 (the count including this update)")
    lr, beta1, beta2, eps, weight_decay = adam_hyperparameters(lr, betas, eps, weight_decay)
    if amsgrad:
        if max_exp_avg_sq is None:
            raise ValueError("max_exp_avg_sq is required when amsgrad=True")
        _require_inplace(max_exp_avg_sq, "max_exp_avg_sq", like=param)
    else:
        max_exp_avg_sq = None
    _config.ops().adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, int(step), lr,
                            beta1, beta2, eps, weight_decay, bool(amsgrad), bool(decoupled))


def _require_inplace(arr, name, like=None):
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (it is updated in place), "
                        f"got {type(arr).__name__}")
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must have dtype float32 or float64, got {arr.dtype}")
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        raise ValueError(f"{name} must be a writeable C-contiguous array (it is updated in place)")
    if like is not None and (arr.shape != like.shape or arr.dtype != like.dtype):
        raise ValueError(f"{name} must have the shape {like.shape} and dtype {like.dtype} of param, "
                         f"got {arr.shape} {arr.dtype}")

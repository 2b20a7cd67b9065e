"""The reference backend: every formula written plainly with NumPy. The other backends must
match it; see ``gradkit.backends`` for the contract each function follows."""
from __future__ import annotations

import numpy as np

from gradkit._validation import bce_pred_message

# ---------------------------------------------------------------------------- GEMM and dense


def matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    a = a.T if trans_a else a
    b = b.T if trans_b else b
    result = a @ b
    if out is None:
        return result
    if accumulate:
        out += result
    else:
        out[...] = result
    return out


def _activate(z, activation, slope):
    if activation == "none":
        return z
    if activation == "relu":
        return relu(z)
    if activation == "leaky_relu":
        return leaky_relu(z, slope)
    if activation == "sigmoid":
        return sigmoid(z)
    if activation == "tanh":
        return tanh(z)
    raise ValueError(f"unknown activation {activation!r}")


def linear(x, w, b, activation="none", slope=0.01):
    z = x @ w.T  # (B, IN) @ (IN, OUT)
    if b is not None:
        z += b
    return _activate(z, activation, slope)


def linear_backward(dy, x, w, dw, db, need_dx=True):
    dw += dy.T @ x  # (OUT, B) @ (B, IN)
    if db is not None:
        db += dy.sum(axis=0)
    return dy @ w if need_dx else None  # (B, OUT) @ (OUT, IN)


# ------------------------------------------------------------------------------- activations


def relu(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_backward(dy, y):
    return np.where(y > 0, dy, 0).astype(dy.dtype, copy=False)


def leaky_relu(x, slope):
    return np.where(x > 0, x, x * x.dtype.type(slope)).astype(x.dtype, copy=False)


def leaky_relu_backward(dy, y, slope):
    return np.where(y > 0, dy, dy * dy.dtype.type(slope)).astype(dy.dtype, copy=False)


def sigmoid(x):
    # exp of a non-positive number only, so neither branch overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def sigmoid_backward(dy, y):
    return dy * y * (1 - y)


def tanh(x):
    return np.tanh(x)


def tanh_backward(dy, y):
    return dy * (1 - y * y)


def softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(dy, y):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


# ------------------------------------------------------------------------------------ losses


def _reduce(per_element, reduction, count):
    """Value of the loss: float64 sum for "mean"/"sum", the array itself for "none"."""
    if reduction == "none":
        return per_element
    total = float(per_element.sum(dtype=np.float64))
    return total / count if reduction == "mean" else total


def _scale(reduction, count):
    return 1.0 / count if reduction == "mean" else 1.0


def l1_loss(pred, target, reduction="mean"):
    diff = pred - target
    grad = np.sign(diff) * pred.dtype.type(_scale(reduction, pred.size))
    return _reduce(np.abs(diff), reduction, pred.size), grad.astype(pred.dtype, copy=False)


def mse_loss(pred, target, reduction="mean", half=False):
    diff = pred - target
    factor = 0.5 if half else 1.0
    value = _reduce(factor * diff * diff, reduction, pred.size)
    grad = diff * pred.dtype.type(2.0 * factor * _scale(reduction, pred.size))
    if reduction == "none":
        value = value.astype(pred.dtype, copy=False)
    return value, grad.astype(pred.dtype, copy=False)


def bce_loss(pred, target, reduction="mean"):
    # Backends own the range check (the compiled ones count bad values in their fused pass).
    n_bad = int(np.count_nonzero(~((pred >= 0) & (pred <= 1))))
    if n_bad:
        raise ValueError(bce_pred_message(n_bad))
    # -(y log p + (1 - y) log(1 - p)), each log clamped at -100 so p = 0 or 1 stays finite.
    with np.errstate(divide="ignore"):  # log(0) = -inf is expected, then clamped
        log_p = np.maximum(np.log(pred), -100)
        log_1mp = np.maximum(np.log1p(-pred), -100)
    per = -(target * log_p + (1 - target) * log_1mp)
    # d/dp = (p - y) / (p (1 - p)), with the denominator kept away from 0 (PyTorch's eps).
    denom = np.maximum(pred * (1 - pred), pred.dtype.type(1e-12))
    grad = (pred - target) / denom * pred.dtype.type(_scale(reduction, pred.size))
    value = _reduce(per, reduction, pred.size)
    if reduction == "none":
        value = value.astype(pred.dtype, copy=False)
    return value, grad.astype(pred.dtype, copy=False)


def bce_with_logits_loss(logits, target, reduction="mean"):
    # log(1 + e^z) - y z, written as max(z, 0) - y z + log1p(e^-|z|): no overflow for any z.
    z = logits
    per = np.maximum(z, 0) - target * z + np.log1p(np.exp(-np.abs(z)))
    grad = (sigmoid(z) - target) * z.dtype.type(_scale(reduction, z.size))
    value = _reduce(per, reduction, z.size)
    if reduction == "none":
        value = value.astype(z.dtype, copy=False)
    return value, grad.astype(z.dtype, copy=False)


def cross_entropy_loss(logits, labels, reduction="mean"):
    # per row: logsumexp(z) - z[label]; gradient softmax(z) - onehot(label).
    batch = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_prob = shifted - log_norm
    rows = np.arange(batch)
    per = -log_prob[rows, labels]
    grad = np.exp(log_prob)
    grad[rows, labels] -= 1
    grad *= logits.dtype.type(_scale(reduction, batch))
    value = _reduce(per, reduction, batch)
    if reduction == "none":
        value = value.astype(logits.dtype, copy=False)
    return value, grad.astype(logits.dtype, copy=False)


# --------------------------------------------------------------------------------- optimiser


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    g = grad + param.dtype.type(weight_decay) * param if weight_decay != 0 else grad
    if momentum != 0:
        if first:
            buf[...] = g
        else:
            buf *= param.dtype.type(momentum)
            buf += param.dtype.type(1 - dampening) * g
        g = g + param.dtype.type(momentum) * buf if nesterov else buf
    param -= param.dtype.type(lr) * g

"""The reference backend: every formula written plainly with NumPy. The other backends must
match it; see ``gradkit.backends`` for the contract each function follows."""
from __future__ import annotations

import math

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


def _bce_logits_linear(z, y):
    """max(z, 0) - y z, the part of BCE-with-logits linear in z.

    At z = ±inf that expression is inf - inf or 0 * inf, so there it is the limit instead:
    (1 - y) z for z > 0 and -y z for z < 0, where a coefficient of exactly 0 gives 0. The
    finite z keep max(z, 0) - y z: (1 - y) z rounds differently.
    """
    with np.errstate(invalid="ignore"):  # the NaN of inf - inf and 0 * inf is replaced below
        finite = np.maximum(z, 0) - y * z
        coef = np.where(z > 0, 1 - y, -y)
        limit = np.where(coef == 0, 0, coef * z)
    return np.where(np.isinf(z), limit, finite)


def bce_with_logits_loss(logits, target, reduction="mean"):
    # log(1 + e^z) - y z, written as max(z, 0) - y z + log1p(e^-|z|): no overflow for any z,
    # and the limit at z = ±inf (see _bce_logits_linear).
    z = logits
    per = _bce_logits_linear(z, target) + np.log1p(np.exp(-np.abs(z)))
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


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, decoupled):
    t = param.dtype.type
    if decoupled and weight_decay != 0:
        param *= t(1 - lr * weight_decay)
    g = grad + t(weight_decay) * param if not decoupled and weight_decay != 0 else grad
    exp_avg *= t(beta1)
    exp_avg += t(1 - beta1) * g
    exp_avg_sq *= t(beta2)
    exp_avg_sq += t(1 - beta2) * (g * g)
    v = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = np.sqrt(v) / t(math.sqrt(1 - beta2 ** step)) + t(eps)
    param -= t(lr / (1 - beta1 ** step)) * exp_avg / denom


# ---- k-means
# X (n, d) and centers (k, d) share one float dtype; sample_weight is (n,) of that dtype or
# None for unit weights; labels are int32. Sums, weights, inertia and shifts are float64.


def _kmeans_weights(sample_weight, n):
    return np.ones(n) if sample_weight is None else sample_weight.astype(np.float64)


def _kmeans_nearest(X, centers):
    # argmin_j ||c_j||^2 - 2 x.c_j (the ||x||^2 term does not change the argmin); first on ties.
    cnorm = np.einsum("ij,ij->i", centers, centers)
    dist = cnorm[None, :] - 2 * (X @ centers.T)
    labels = np.argmin(dist, axis=1).astype(np.int32)
    return labels, dist[np.arange(X.shape[0]), labels]


def _kmeans_offsets(X, centers, labels):
    # Each point's squared distance to its centre (float64), and the rounding of the
    # assignment's ||c||^2 - 2 x.c in X's precision: a distance not above it is "on the centre".
    x64, c64 = X.astype(np.float64), centers[labels].astype(np.float64)
    diff = x64 - c64
    dist = np.einsum("ij,ij->i", diff, diff)
    noise = np.finfo(X.dtype).eps * (np.einsum("ij,ij->i", x64, x64)
                                     + np.einsum("ij,ij->i", c64, c64))
    return dist, noise


def _kmeans_relocate_empty(sums, weight, X, w, centers, labels):
    # Empty clusters (weight 0) take the points farthest from their centres, farthest first
    # (ties: lower index); each point leaves its old cluster's sums and keeps its label, as in
    # scikit-learn. Never taken: a cluster's last point in that order (its nearest: taking a
    # cluster's only point just empties another; with fewer distinct points than clusters that
    # left a zero centre and ran max_iter), a point of weight 0 (it cannot fill a cluster),
    # and a point that sits on its centre, nearer than the rounding of the assignment's
    # ||c||^2 - 2 x.c in X's precision (moving it would only duplicate a centre, and which of
    # two such points is "farther" is rounding noise that can make the fit oscillate).
    # Clusters nothing can fill are placed by _kmeans_centers_from_sums. Returns how many
    # were filled.
    empty = np.flatnonzero(weight == 0)
    if empty.size == 0:
        return 0
    dist, noise = _kmeans_offsets(X, centers, labels)
    order = np.lexsort((np.arange(X.shape[0]), -dist))
    order = order[w[order] > 0]
    backwards = order[::-1]
    _, last = np.unique(labels[backwards], return_index=True)
    movable = order[~np.isin(order, backwards[last])]
    takers = movable[dist[movable] > noise[movable]][: empty.size]
    for fresh, i in zip(empty, takers):
        moved = w[i] * X[i].astype(np.float64)
        sums[labels[i]] -= moved
        sums[fresh] = moved
        weight[fresh] = w[i]
        weight[labels[i]] -= w[i]
    return int(takers.size)


def _kmeans_centers_from_sums(sums, weight, centers):
    # The weighted means, in the centres' dtype; a cluster still empty gets the centre of the
    # heaviest cluster (the first on ties), as scikit-learn places it: on the data, and equal
    # to that centre bit for bit, so the two tie exactly in the next assignment. Also the
    # squared shift from `centers`.
    filled = weight > 0
    scale = 1.0 / np.where(filled, weight, 1.0)
    centers_new = (sums * scale[:, None]).astype(centers.dtype)
    centers_new[~filled] = centers_new[np.argmax(weight)]
    shift = float(np.sum((centers_new.astype(np.float64) - centers) ** 2))
    return centers_new, shift


def kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads=1):
    n, k = X.shape[0], centers.shape[0]
    w = _kmeans_weights(sample_weight, n)
    new_labels, mind = _kmeans_nearest(X, centers)
    n_changed = int(np.count_nonzero(new_labels != labels))
    labels[...] = new_labels
    x64 = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    inertia = float(np.sum(w * np.maximum(0.0, sq + mind)))
    weight = np.bincount(labels, weights=w, minlength=k)
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, w[:, None] * x64)
    _kmeans_relocate_empty(sums, weight, X, w, centers, labels)
    centers_new, shift = _kmeans_centers_from_sums(sums, weight, centers)
    return centers_new, n_changed, shift, inertia


def kmeans_assign(X, sample_weight, centers, n_threads=1):
    w = _kmeans_weights(sample_weight, X.shape[0])
    labels, mind = _kmeans_nearest(X, centers)
    x64 = X.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    return labels, float(np.sum(w * np.maximum(0.0, sq + mind)))


def kmeans_inertia(X, sample_weight, centers, labels, n_threads=1):
    w = _kmeans_weights(sample_weight, X.shape[0])
    diff = X.astype(np.float64) - centers[labels].astype(np.float64)
    return float(np.sum(w * np.einsum("ij,ij->i", diff, diff)))


def kmeans_lloyd_loop(step, assign, inertia, X, sample_weight, centers_init, max_iter, tol,
                      n_threads):
    """scikit-learn's Lloyd loop over a backend's step: stop when the labels do not change
    (strict) or the squared centre shift is <= tol; then a final assignment unless strict."""
    centers = centers_init.copy()
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    strict = False
    for it in range(max_iter):
        centers, n_changed, shift, _ = step(X, sample_weight, centers, labels, n_threads)
        if n_changed == 0:
            strict = True
            break
        if shift <= tol:
            break
    if not strict:
        labels, _ = assign(X, sample_weight, centers, n_threads)
    return centers, labels, inertia(X, sample_weight, centers, labels, n_threads), it + 1


def kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads=1):
    return kmeans_lloyd_loop(kmeans_lloyd_step, kmeans_assign, kmeans_inertia, X, sample_weight,
                             centers_init, max_iter, tol, n_threads)


_VARIANCE_CHUNK = 1 << 16  # rows per chunk: np.var(X, axis=0) would copy X


def kmeans_mean_variance(X, n_threads=1):
    # np.mean(np.var(X, axis=0)) in float64 (the scale of scikit-learn's tol), by chunks of rows.
    n = X.shape[0]
    mean = np.add.reduce(X, axis=0, dtype=np.float64) / n
    total = np.zeros(X.shape[1])
    for start in range(0, n, _VARIANCE_CHUNK):
        diff = X[start:start + _VARIANCE_CHUNK] - mean
        total += np.einsum("ij,ij->j", diff, diff)
    return float(np.mean(total / n))


def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    # Greedy k-means++: the first centre drawn with probability w, then per step the best of
    # n_local_trials candidates drawn with probability w D(x)^2 (the one that lowers the
    # potential sum w D^2 most). D^2 stays in X's dtype.
    n = X.shape[0]
    w = _kmeans_weights(sample_weight, n)
    sq = np.einsum("ij,ij->i", X, X)

    def sqdist(idx):
        cands = X[idx]
        cn = np.einsum("ij,ij->i", cands, cands)
        return np.maximum(sq[:, None] + cn[None, :] - 2 * (X @ cands.T), 0).astype(X.dtype)

    def draw(mass, targets):
        return np.minimum(np.searchsorted(np.cumsum(mass), targets, side="left"), n - 1)

    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = draw(w, uniforms[0] * w.sum())
    closest = sqdist(indices[:1])[:, 0]
    current = float(w @ closest)
    for c in range(1, n_clusters):
        u = uniforms[1 + (c - 1) * n_local_trials: 1 + c * n_local_trials]
        cand = draw(w * closest, u * current)
        dist = np.minimum(sqdist(cand), closest[:, None])
        pots = w @ dist.astype(np.float64)
        best = int(np.argmin(pots))
        current = float(pots[best])
        closest = dist[:, best]
        indices[c] = cand[best]
    return indices

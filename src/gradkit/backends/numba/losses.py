"""Losses, one fused pass each: the gradient goes to grad[i] and the per-element loss either to
per[i] ("none") or to a small block buffer whose float64 sum uses eight interleaved
accumulators (a fixed order that LLVM can vectorise). The formulas live in ``formulas``.

Each loss has its own chunk kernel (so the first use of one loss compiles that loss only) and
its own ``parallel=True`` driver over fixed chunks; small inputs run the chunks from Python on
the calling thread. Chunk partials are added in chunk order: the value does not depend on the
thread count.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from gradkit._validation import bce_pred_message
from gradkit.backends.numba import formulas as f
from gradkit.backends.numba._fastmath import exp, log
from gradkit.backends.numba._jit import CHUNK, PARALLEL_MIN, kernel, n_chunks, op

BLOCK = 1024         # losses staged per block before their float64 sum
FEW_CLASSES = 64     # up to here, cross-entropy works on transposed blocks of rows
CE_BLOCK = 256       # rows per transposed block


@kernel
def _sum8(v, n):
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    i = 0
    while i + 8 <= n:
        a0 += v[i]
        a1 += v[i + 1]
        a2 += v[i + 2]
        a3 += v[i + 3]
        a4 += v[i + 4]
        a5 += v[i + 5]
        a6 += v[i + 6]
        a7 += v[i + 7]
        i += 8
    tail = 0.0
    while i < n:
        tail += v[i]
        i += 1
    return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + tail


# ---- the (pred, target) losses: per loss, a chunk kernel [lo, hi) -> float64 sum and a
# parallel driver writing one partial per chunk. `extra` is the loss's own constant (MSE:
# factor, BCE: eps, unused by the others).


@kernel
def _l1_chunk(grad, per, p, t, lo, hi, scale, extra, want_per):
    buf = np.empty(BLOCK, p.dtype)
    total = 0.0
    for s in range(lo, hi, BLOCK):
        n = min(hi, s + BLOCK) - s
        out, g, ps, ts = (per[s:s + n] if want_per else buf), grad[s:s + n], p[s:s + n], t[s:s + n]
        for i in range(n):
            out[i], g[i] = f.l1(ps[i], ts[i], scale)
        if not want_per:
            total += _sum8(buf, n)
    return total


@kernel
def _mse_chunk(grad, per, p, t, lo, hi, scale, extra, want_per):
    buf = np.empty(BLOCK, p.dtype)
    total = 0.0
    for s in range(lo, hi, BLOCK):
        n = min(hi, s + BLOCK) - s
        out, g, ps, ts = (per[s:s + n] if want_per else buf), grad[s:s + n], p[s:s + n], t[s:s + n]
        for i in range(n):
            out[i], g[i] = f.mse(ps[i], ts[i], extra, scale)
        if not want_per:
            total += _sum8(buf, n)
    return total


@kernel
def _bce_chunk(grad, per, p, t, lo, hi, scale, extra, want_per):
    buf = np.empty(BLOCK, p.dtype)
    total = 0.0
    for s in range(lo, hi, BLOCK):
        n = min(hi, s + BLOCK) - s
        out, g, ps, ts = (per[s:s + n] if want_per else buf), grad[s:s + n], p[s:s + n], t[s:s + n]
        for i in range(n):
            out[i], g[i] = f.bce(ps[i], ts[i], scale, extra)
        if not want_per:
            total += _sum8(buf, n)
    return total


@kernel
def _bce_with_logits_chunk(grad, per, p, t, lo, hi, scale, extra, want_per):
    buf = np.empty(BLOCK, p.dtype)
    total = 0.0
    for s in range(lo, hi, BLOCK):
        n = min(hi, s + BLOCK) - s
        out, g, ps, ts = (per[s:s + n] if want_per else buf), grad[s:s + n], p[s:s + n], t[s:s + n]
        for i in range(n):
            out[i], g[i] = f.bce_with_logits(ps[i], ts[i], scale)
        if not want_per:
            total += _sum8(buf, n)
    return total


@kernel(parallel=True)
def _l1_parallel(grad, per, p, t, scale, extra, want_per, partial):
    for c in prange(partial.size):
        partial[c] = _l1_chunk(grad, per, p, t, c * CHUNK, min(p.size, (c + 1) * CHUNK), scale,
                               extra, want_per)


@kernel(parallel=True)
def _mse_parallel(grad, per, p, t, scale, extra, want_per, partial):
    for c in prange(partial.size):
        partial[c] = _mse_chunk(grad, per, p, t, c * CHUNK, min(p.size, (c + 1) * CHUNK), scale,
                                extra, want_per)


@kernel(parallel=True)
def _bce_parallel(grad, per, p, t, scale, extra, want_per, partial):
    for c in prange(partial.size):
        partial[c] = _bce_chunk(grad, per, p, t, c * CHUNK, min(p.size, (c + 1) * CHUNK), scale,
                                extra, want_per)


@kernel(parallel=True)
def _bce_with_logits_parallel(grad, per, p, t, scale, extra, want_per, partial):
    for c in prange(partial.size):
        partial[c] = _bce_with_logits_chunk(grad, per, p, t, c * CHUNK,
                                            min(p.size, (c + 1) * CHUNK), scale, extra, want_per)


@kernel
def _count_not_probability(p):
    bad = 0
    for i in range(p.size):
        bad += not (p[i] >= 0 and p[i] <= 1)  # NaN counts too
    return bad


def _pair_loss(chunk, parallel, pred, target, reduction, grad_factor=1.0, extra=0.0):
    n = pred.size
    dtype = pred.dtype.type
    scale = dtype(grad_factor / n if reduction == "mean" else grad_factor)
    grad = np.empty_like(pred)
    want_per = reduction == "none"
    per = np.empty_like(pred) if want_per else np.empty(1, pred.dtype)
    flat = (grad.reshape(-1), per.reshape(-1), pred.reshape(-1), target.reshape(-1))
    partial = np.zeros(n_chunks(n))
    if n >= PARALLEL_MIN:
        parallel(*flat, scale, dtype(extra), want_per, partial)
    else:
        for c in range(partial.size):
            partial[c] = chunk(*flat, c * CHUNK, min(n, (c + 1) * CHUNK), scale, dtype(extra),
                               want_per)
    if want_per:
        return per, grad
    total = 0.0
    for part in partial:  # chunk order, whatever the thread count
        total += part
    return (total / n if reduction == "mean" else total), grad


@op("l1_loss")
def l1_loss(pred, target, reduction="mean"):
    return _pair_loss(_l1_chunk, _l1_parallel, pred, target, reduction)


@op("mse_loss")
def mse_loss(pred, target, reduction="mean", half=False):
    factor = 0.5 if half else 1.0
    return _pair_loss(_mse_chunk, _mse_parallel, pred, target, reduction, 2.0 * factor, factor)


@op("bce_loss")
def bce_loss(pred, target, reduction="mean"):
    n_bad = _count_not_probability(pred.reshape(-1))
    if n_bad:
        raise ValueError(bce_pred_message(n_bad))
    return _pair_loss(_bce_chunk, _bce_parallel, pred, target, reduction, 1.0, 1e-12)


@op("bce_with_logits_loss")
def bce_with_logits_loss(logits, target, reduction="mean"):
    return _pair_loss(_bce_with_logits_chunk, _bce_with_logits_parallel, logits, target,
                      reduction)


# ---- softmax cross-entropy, row by row


@kernel
def ce_row(g, z, label, scale):
    """Loss of one row of logits z (its float64 value); g = (softmax(z) - onehot) * scale."""
    mx = z[0]
    for j in range(1, z.size):
        mx = max(mx, z[j])
    s = z.dtype.type(0)
    for j in range(z.size):
        e = exp(z[j] - mx)
        g[j] = e
        s += e
    inv = scale / s
    for j in range(z.size):
        g[j] *= inv
    g[label] -= scale
    return np.float64(log(s) - (z[label] - mx))


@kernel
def _ce_rows(grad, per, z, labels, lo, hi, scale, want_per):
    total = 0.0
    for r in range(lo, hi):
        v = ce_row(grad[r], z[r], labels[r], scale)
        if want_per:
            per[r] = v
        else:
            total += v
    return total


@kernel
def _ce_rows_few(grad, per, z, labels, lo, hi, scale, want_per):
    """Few classes: a block of rows is transposed to (C, rows) so that every step runs down
    the rows, which LLVM vectorises; a row-by-row loop over 10 classes would not."""
    n_classes = z.shape[1]
    zt = np.empty((n_classes, CE_BLOCK), z.dtype)
    mx = np.empty(CE_BLOCK, z.dtype)
    s = np.empty(CE_BLOCK, z.dtype)
    v = np.empty(CE_BLOCK, z.dtype)
    total = 0.0
    for r0 in range(lo, hi, CE_BLOCK):
        m = min(CE_BLOCK, hi - r0)
        zb = z[r0:r0 + m]
        gb = grad[r0:r0 + m]
        for r in range(m):
            for c in range(n_classes):
                zt[c, r] = zb[r, c]
        first = zt[0]
        for r in range(m):
            mx[r] = first[r]
            s[r] = 0
        for c in range(1, n_classes):
            row = zt[c]
            for r in range(m):
                mx[r] = row[r] if row[r] > mx[r] else mx[r]
        for c in range(n_classes):
            row = zt[c]
            for r in range(m):
                e = exp(row[r] - mx[r])
                row[r] = e
                s[r] += e
        for r in range(m):
            k = labels[r0 + r]
            v[r] = log(s[r]) - (zb[r, k] - mx[r])
            s[r] = scale / s[r]
        for r in range(m):
            for c in range(n_classes):
                gb[r, c] = zt[c, r] * s[r]
            gb[r, labels[r0 + r]] -= scale
        if want_per:
            per[r0:r0 + m] = v[:m]
        else:
            for r in range(m):
                total += v[r]
    return total


@kernel(parallel=True)
def _ce_parallel_few(grad, per, z, labels, scale, want_per, rows, partial):
    n = z.shape[0]
    for c in prange(partial.size):
        partial[c] = _ce_rows_few(grad, per, z, labels, c * rows, min(n, (c + 1) * rows), scale,
                                  want_per)


@kernel(parallel=True)
def _ce_parallel(grad, per, z, labels, scale, want_per, rows, partial):
    n = z.shape[0]
    for c in prange(partial.size):
        partial[c] = _ce_rows(grad, per, z, labels, c * rows, min(n, (c + 1) * rows), scale,
                              want_per)


@op("cross_entropy_loss")
def cross_entropy_loss(logits, labels, reduction="mean"):
    batch, n_classes = logits.shape
    scale = logits.dtype.type(1.0 / batch if reduction == "mean" else 1.0)
    grad = np.empty_like(logits)
    want_per = reduction == "none"
    per = np.empty(batch if want_per else 1, logits.dtype)
    rows = max(1, CHUNK // n_classes)
    partial = np.zeros((batch + rows - 1) // rows)
    # each path its own kernels, so a first use compiles one of them
    few = n_classes <= FEW_CLASSES
    if logits.size >= PARALLEL_MIN:
        run = _ce_parallel_few if few else _ce_parallel
        run(grad, per, logits, labels, scale, want_per, rows, partial)
    else:
        chunk = _ce_rows_few if few else _ce_rows
        for c in range(partial.size):
            partial[c] = chunk(grad, per, logits, labels, c * rows, min(batch, (c + 1) * rows),
                               scale, want_per)
    if want_per:
        return per, grad
    total = 0.0
    for part in partial:
        total += part
    return (total / batch if reduction == "mean" else total), grad

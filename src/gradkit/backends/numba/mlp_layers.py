"""The pieces of the fused epoch, one role each: gather a batch, forward one layer, the batch's
loss and its gradient, backward one layer. ``mlp.py`` strings them together.

The epoch keeps every array flat (parameters, activations, gradients) and indexes it with
offsets: building a 2-D view costs reference counting and, for a slice, a call to Numba's
reshape helper, which for a 2-3-1 network at batch 1 costs more than the arithmetic. Only the
products large enough for BLAS build views. The small products run each sum over k in order,
starting from the first product, in the parameters' precision. Activations, losses and their
gradients come from ``formulas``, as in the standalone kernels.
"""
from __future__ import annotations

import numpy as np

from gradkit.backends._spec import ACTIVATION_CODES, FUSED_LOSS_CODES
from gradkit.backends.numba import formulas as f
from gradkit.backends.numba._jit import kernel
from gradkit.backends.numba.losses import ce_row

NONE = ACTIVATION_CODES["none"]
CROSS_ENTROPY = FUSED_LOSS_CODES["cross_entropy"]
MSE = FUSED_LOSS_CODES["mse"]
L1 = FUSED_LOSS_CODES["l1"]

SMALL_PRODUCT = 4096  # multiply-adds below which a product is looped here, not sent to BLAS


@kernel(inline="always")
def _forward_small(act, o_off, src, s_off, theta, w_off, b_off, m, n_in, n_o, code, slope):
    """act[o_off:] (m, n_o) = act_fn(src[s_off:] (m, n_in) @ W.T + b), W = theta[w_off:]
    (n_o, n_in), b = theta[b_off:] (n_o) when b_off >= 0.

    A few rows go one output at a time. Many rows go one output column at a time, four weights
    held in scalars over all the rows (the partial sums of longer rows wait in act), then the
    bias and activation in a second pass: per row that is a few loads and multiply-adds instead
    of an inner loop's start-up. Either way each sum runs over k in order."""
    if m < 4:
        for i in range(m):
            a0 = s_off + i * n_in
            o0 = o_off + i * n_o
            for j in range(n_o):
                w0 = w_off + j * n_in
                acc = src[a0] * theta[w0]
                for p in range(1, n_in):
                    acc += src[a0 + p] * theta[w0 + p]
                if b_off >= 0:
                    acc += theta[b_off + j]
                act[o0 + j] = f.activate(acc, code, slope)
        return
    last = n_in - 1
    for j in range(n_o):
        w0 = w_off + j * n_in
        for p0 in range(0, n_in, 4):
            k = min(4, n_in - p0)
            wa = theta[w0 + p0]
            wb = theta[w0 + min(p0 + 1, last)]
            wc = theta[w0 + min(p0 + 2, last)]
            wd = theta[w0 + min(p0 + 3, last)]
            for i in range(m):
                a0 = s_off + i * n_in + p0
                o = o_off + i * n_o + j
                if p0 == 0:
                    acc = src[a0] * wa
                else:
                    acc = act[o] + src[a0] * wa
                if k > 1:
                    acc += src[a0 + 1] * wb
                if k > 2:
                    acc += src[a0 + 2] * wc
                if k > 3:
                    acc += src[a0 + 3] * wd
                act[o] = acc
        if code == NONE:  # a linear output: the bias alone, without the activation's branches
            if b_off >= 0:
                bias = theta[b_off + j]
                for i in range(m):
                    act[o_off + i * n_o + j] += bias
        else:
            for i in range(m):
                o = o_off + i * n_o + j
                v = act[o]
                if b_off >= 0:
                    v += theta[b_off + j]
                act[o] = f.activate(v, code, slope)


@kernel(inline="always")
def _weight_grad_small(grad, w_off, b_off, dz, d_off, src, s_off, m, n_in, n_o, zero):
    """grad[w_off:] (n_o, n_in) = dz[d_off:] (m, n_o)ᵀ @ src[s_off:] (m, n_in); grad[b_off:]
    (n_o) = column sums of dz when b_off >= 0. Four columns (and the bias) are summed side by
    side so that their add latencies overlap; past the last column the indices are clamped and
    the extra sums are dropped, which keeps the inner loop free of branches. zero is 0 in the
    parameters' dtype: the bias sum starts from it as the BLAS path's does (-0.0 + 0 is 0)."""
    last = n_in - 1
    for j in range(n_o):
        for c0 in range(0, n_in, 4):
            c1, c2, c3 = min(c0 + 1, last), min(c0 + 2, last), min(c0 + 3, last)
            d = dz[d_off + j]
            a0 = s_off
            acc0, acc1 = d * src[a0 + c0], d * src[a0 + c1]
            acc2, acc3 = d * src[a0 + c2], d * src[a0 + c3]
            accb = zero + d
            for p in range(1, m):
                d = dz[d_off + p * n_o + j]
                a0 = s_off + p * n_in
                acc0 += d * src[a0 + c0]
                acc1 += d * src[a0 + c1]
                acc2 += d * src[a0 + c2]
                acc3 += d * src[a0 + c3]
                accb += d
            g0 = w_off + j * n_in + c0
            grad[g0] = acc0
            if c0 + 1 <= last:
                grad[g0 + 1] = acc1
            if c0 + 2 <= last:
                grad[g0 + 2] = acc2
            if c0 + 3 <= last:
                grad[g0 + 3] = acc3
            if c0 == 0 and b_off >= 0:
                grad[b_off + j] = accb


@kernel(inline="always")
def _input_grad_small(d, dx_off, dz_off, theta, w_off, y, y_off, m, n_in, n_o, code, slope):
    """d[dx_off:] (m, n_in) = act_grad(d[dz_off:] (m, n_o) @ W (n_o, n_in)) at the layer's
    input y[y_off:]."""
    for i in range(m):
        for c in range(n_in):
            acc = d[dz_off + i * n_o] * theta[w_off + c]
            for p in range(1, n_o):
                acc += d[dz_off + i * n_o + p] * theta[w_off + p * n_in + c]
            d[dx_off + i * n_in + c] = f.activate_grad(acc, y[y_off + i * n_in + c], code, slope)


@kernel(inline="always")
def gather_batch(X, labels, targets, perm, start, m, loss_code, xb2, lb, tb2):
    """The batch's rows perm[start:start + m]: read in place when consecutive (no shuffle),
    else copied into xb2/lb/tb2 with element loops (a slice per row costs more than a short
    row). Returns (x rows' flat offset or -1 when copied, first row)."""
    r0 = perm[start]
    gaps = 0
    if m > 1:  # no early exit, so the check vectorises
        rows = perm[start:start + m]
        for i in range(1, m):
            gaps |= rows[i] ^ (r0 + i)
    if gaps == 0:
        return r0
    n_in, n_out = X.shape[1], tb2.shape[1]
    for i in range(m):
        r = perm[start + i]
        for j in range(n_in):
            xb2[i, j] = X[r, j]
        if loss_code == CROSS_ENTROPY:
            lb[i] = labels[r]
        else:
            for j in range(n_out):
                tb2[i, j] = targets[r, j]
    return -1


@kernel(inline="always")
def forward_layer(act, o_off, src, s_off, theta, w_off, b_off, m, n_in, n_o, code, slope):
    """act[o_off:] (m, n_o) = act_fn(src[s_off:] (m, n_in) @ W.T + b): BLAS when large."""
    if m * n_o * n_in <= SMALL_PRODUCT:
        _forward_small(act, o_off, src, s_off, theta, w_off, b_off, m, n_in, n_o, code, slope)
        return
    a2 = src[s_off:s_off + m * n_in].reshape((m, n_in))
    w2 = theta[w_off:w_off + n_o * n_in].reshape((n_o, n_in))
    z = act[o_off:o_off + m * n_o].reshape((m, n_o))
    np.dot(a2, w2.T, z)
    for i in range(m):
        for j in range(n_o):
            v = z[i, j]
            if b_off >= 0:
                v += theta[b_off + j]
            z[i, j] = f.activate(v, code, slope)


@kernel(inline="always")
def in_dtype(scratch, v):
    """v rounded to the dtype of the 1-element array scratch."""
    scratch[0] = v
    return scratch[0]


@kernel(inline="always")
def batch_loss(dz, y, y_off, labels, l_off, targets, t_off, m, n_out, loss_code, mean, half,
               scratch):
    """The batch's loss (float64) and dz[:m * n_out] = its gradient w.r.t. y[y_off:] (m, n_out).
    The scales are rounded to the parameters' dtype (that of scratch), as the standalone
    losses' are."""
    if loss_code == CROSS_ENTROPY:
        scale = in_dtype(scratch, 1.0 / m if mean else 1.0)
        total = 0.0
        for i in range(m):
            r = y_off + i * n_out
            total += ce_row(dz[i * n_out:(i + 1) * n_out], y[r:r + n_out], labels[l_off + i],
                            scale)
        return total / m if mean else total
    n = m * n_out
    scale = in_dtype(scratch, 1.0 / n if mean else 1.0)
    total = 0.0
    if loss_code == MSE:
        factor = in_dtype(scratch, 0.5 if half else 1.0)
        gscale = in_dtype(scratch, (1.0 if half else 2.0) * (1.0 / n if mean else 1.0))
        for k in range(n):
            value, dz[k] = f.mse(y[y_off + k], targets[t_off + k], factor, gscale)
            total += value
    elif loss_code == L1:
        for k in range(n):
            value, dz[k] = f.l1(y[y_off + k], targets[t_off + k], scale)
            total += value
    else:
        for k in range(n):
            value, dz[k] = f.bce_with_logits(y[y_off + k], targets[t_off + k], scale)
            total += value
    return total / n if mean else total


@kernel(inline="always")
def activation_backward(d, y, y_off, n, code, slope):
    """d[:n] = act_grad(d, y[y_off:]), one loop per activation (no branch per element)."""
    if code == f.RELU:
        for k in range(n):
            d[k] = f.relu_grad(d[k], y[y_off + k])
    elif code == f.LEAKY_RELU:
        for k in range(n):
            d[k] = f.leaky_relu_grad(d[k], y[y_off + k], slope)
    elif code == f.SIGMOID:
        for k in range(n):
            d[k] = f.sigmoid_grad(d[k], y[y_off + k])
    elif code == f.TANH:
        for k in range(n):
            d[k] = f.tanh_grad(d[k], y[y_off + k])


@kernel(inline="always")
def weight_grad(grad, w_off, b_off, d, dz_off, src, s_off, m, n_in, n_o, zero):
    """grad (flat, like theta) of one layer's W and b from dz = d[dz_off:] (m, n_o)."""
    if m * n_o * n_in <= SMALL_PRODUCT:
        _weight_grad_small(grad, w_off, b_off, d, dz_off, src, s_off, m, n_in, n_o, zero)
        return
    dz2 = d[dz_off:dz_off + m * n_o].reshape((m, n_o))
    a2 = src[s_off:s_off + m * n_in].reshape((m, n_in))
    np.dot(dz2.T, a2, grad[w_off:w_off + n_o * n_in].reshape((n_o, n_in)))
    if b_off >= 0:
        gb = grad[b_off:b_off + n_o]
        gb[:] = 0
        for i in range(m):
            for j in range(n_o):
                gb[j] += dz2[i, j]


@kernel(inline="always")
def input_grad(d, dx_off, dz_off, theta, w_off, act, s_off, m, n_in, n_o, code, slope):
    """d[dx_off:] (m, n_in) = act_grad(dz @ W) at the layer's input act[s_off:] (the output of
    the layer below, whose activation is ``code``)."""
    if m * n_in * n_o <= SMALL_PRODUCT:
        _input_grad_small(d, dx_off, dz_off, theta, w_off, act, s_off, m, n_in, n_o, code,
                          slope)
        return
    w2 = theta[w_off:w_off + n_o * n_in].reshape((n_o, n_in))
    dx2 = d[dx_off:dx_off + m * n_in].reshape((m, n_in))
    np.dot(d[dz_off:dz_off + m * n_o].reshape((m, n_o)), w2, dx2)
    y2 = act[s_off:s_off + m * n_in].reshape((m, n_in))
    for i in range(m):
        for j in range(n_in):
            dx2[i, j] = f.activate_grad(dx2[i, j], y2[i, j], code, slope)

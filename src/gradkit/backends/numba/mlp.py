"""The fused MLP epoch (contract: mlp_epoch in _spec.py): forward, loss, backward and the SGD
update of every mini-batch in one compiled call. The parameters are packed into one flat vector
so that the epoch has the same argument types whatever the depth of the network; the packing is
one copy of the parameters per call, small next to an epoch of GEMMs (np.dot -> BLAS).
"""
from __future__ import annotations

import numpy as np

from gradkit.backends._spec import ACTIVATION_CODES, FUSED_LOSS_CODES
from gradkit.backends.numba import mlp_layers as L
from gradkit.backends.numba._jit import kernel, op
from gradkit.backends.numba.optimizer import sgd_range


@kernel(inline="always")
def _layout(dims, batch):
    """Offsets of every layer's output (m, dims[l + 1]) in one flat buffer, its length, and
    the widest layer."""
    n_layers = dims.shape[0] - 1
    act_off = np.empty(n_layers, dtype=np.int64)
    pos = 0
    for l in range(n_layers):
        act_off[l] = pos
        pos += batch * dims[l + 1]
    width = 1
    for l in range(n_layers + 1):
        width = max(width, dims[l])
    return act_off, pos, width


@kernel(inline="always")
def _forward(theta, off_w, off_b, dims, acts, slope, xin, x_off, act, act_off, m):
    for l in range(dims.shape[0] - 1):
        src, s_off = (xin, x_off) if l == 0 else (act, act_off[l - 1])
        L.forward_layer(act, act_off[l], src, s_off, theta, off_w[l], off_b[l], m, dims[l],
                        dims[l + 1], acts[l], slope)


@kernel(inline="always")
def _backward(theta, grad, off_w, off_b, dims, acts, slope, xin, x_off, act, act_off, d, half_d,
              m, zero):
    """grad of every layer from d[:m * n_out] (the gradient at the last layer's output, its
    activation already applied); dz and dx take turns in the two halves of d (swapping
    offsets, not arrays, costs no reference counting)."""
    dz_off, dx_off = 0, half_d
    for l in range(dims.shape[0] - 2, -1, -1):
        n_in, n_o = dims[l], dims[l + 1]
        src, s_off = (xin, x_off) if l == 0 else (act, act_off[l - 1])
        L.weight_grad(grad, off_w[l], off_b[l], d, dz_off, src, s_off, m, n_in, n_o, zero)
        if l > 0:
            L.input_grad(d, dx_off, dz_off, theta, off_w[l], act, s_off, m, n_in, n_o,
                         acts[l - 1], slope)
            dz_off, dx_off = dx_off, dz_off


@kernel
def _epoch(theta, bufs, off_w, off_b, dims, acts, slope, loss_code, mean, half, X, labels,
           targets, perm, batch, first_step, n_steps, lr, momentum, dampening, nesterov,
           weight_decay, first, step_loss):
    n_layers = dims.shape[0] - 1
    n_rows, n_in0, n_out = X.shape[0], dims[0], dims[n_layers]
    steps_per_epoch = (n_rows + batch - 1) // batch
    # one epoch's order in perm serves every epoch of the call; several are taken in turn
    perm_stride = 0 if perm.shape[0] == n_rows else n_rows
    batch = min(batch, n_rows)  # a batch larger than the data is the whole data
    grad = np.zeros_like(theta)
    xf, tf = X.reshape(n_rows * n_in0), targets.reshape(targets.size)
    # Gathered rows are written through 2-D views (the column index is known to be
    # non-negative, so the copy vectorises) and read through the flat ones.
    xb2 = np.empty((batch, n_in0), dtype=X.dtype)
    tb2 = np.empty((batch, n_out), dtype=X.dtype)
    xb, tb = xb2.reshape(batch * n_in0), tb2.reshape(batch * n_out)
    lb = np.empty(batch, dtype=np.int64)
    act_off, act_size, width = _layout(dims, batch)
    act = np.empty(act_size, dtype=X.dtype)
    d = np.empty(2 * batch * width, dtype=X.dtype)
    # the SGD constants rounded to the parameters' dtype, as sgd_step's; a zero of that dtype;
    # and a scratch slot for rounding to it
    hyper = np.zeros(6, dtype=X.dtype)
    hyper[0], hyper[1], hyper[2], hyper[3] = lr, momentum, 1 - dampening, weight_decay
    for s in range(n_steps):
        offset = ((first_step + s) % steps_per_epoch) * batch
        start = ((first_step + s) // steps_per_epoch) * perm_stride + offset
        m = min(batch, n_rows - offset)
        r0 = L.gather_batch(X, labels, targets, perm, start, m, loss_code, xb2, lb, tb2)
        if r0 >= 0:
            xin, x_off, lab_a, l_off, tgt_a, t_off = xf, r0 * n_in0, labels, r0, tf, r0 * n_out
        else:
            xin, x_off, lab_a, l_off, tgt_a, t_off = xb, 0, lb, 0, tb, 0
        _forward(theta, off_w, off_b, dims, acts, slope, xin, x_off, act, act_off, m)
        y_off = act_off[n_layers - 1]
        value = L.batch_loss(d, act, y_off, lab_a, l_off, tgt_a, t_off, m, n_out, loss_code,
                             mean, half, hyper[5:])
        step_loss[s] = value
        if not np.isfinite(value):
            return s
        L.activation_backward(d, act, y_off, m * n_out, acts[n_layers - 1], slope)
        _backward(theta, grad, off_w, off_b, dims, acts, slope, xin, x_off, act, act_off, d,
                  batch * width, m, hyper[4])
        sgd_range(theta, grad, bufs, hyper[0], hyper[1], hyper[2], nesterov, hyper[3], first,
                  momentum != 0)
        first = False
    return n_steps


def _pack(weights, biases, weight_bufs, bias_bufs, use_buf, dtype):
    """The parameters (and momentum buffers) as flat vectors, with each layer's offsets."""
    n_layers = len(weights)
    dims = np.empty(n_layers + 1, dtype=np.int64)
    dims[0] = weights[0].shape[1]
    off_w = np.empty(n_layers, dtype=np.int64)
    off_b = np.full(n_layers, -1, dtype=np.int64)
    pieces, buf_pieces, pos = [], [], 0
    for l, (w, b) in enumerate(zip(weights, biases)):
        dims[l + 1] = w.shape[0]
        off_w[l] = pos
        pos += w.size
        pieces.append(w.ravel())
        if use_buf:
            buf_pieces.append(weight_bufs[l].ravel())
        if b is not None:
            off_b[l] = pos
            pos += b.size
            pieces.append(b)
            if use_buf:
                buf_pieces.append(bias_bufs[l])
    theta = np.concatenate(pieces).astype(dtype, copy=False)
    bufs = np.concatenate(buf_pieces) if use_buf else np.zeros(1, dtype=dtype)
    return theta, bufs, dims, off_w, off_b


def _unpack(theta, bufs, off_w, off_b, weights, biases, weight_bufs, bias_bufs, use_buf):
    """The updated parameters (and buffers) back into the caller's arrays."""
    for l, (w, b) in enumerate(zip(weights, biases)):
        w.ravel()[:] = theta[off_w[l]:off_w[l] + w.size]
        if use_buf:
            weight_bufs[l].ravel()[:] = bufs[off_w[l]:off_w[l] + w.size]
        if b is not None:
            b[:] = theta[off_b[l]:off_b[l] + b.size]
            if use_buf:
                bias_bufs[l][:] = bufs[off_b[l]:off_b[l] + b.size]


@op("mlp_epoch")
def mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
              X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
              weight_decay, first, step_loss):
    dtype = X.dtype
    use_buf = momentum != 0
    theta, bufs, dims, off_w, off_b = _pack(weights, biases, weight_bufs, bias_bufs, use_buf,
                                            dtype)
    acts = np.array([ACTIVATION_CODES[a] for a in activations], dtype=np.int64)
    code = FUSED_LOSS_CODES[loss]
    if loss == "cross_entropy":
        labels, targets = y, np.zeros((1, 1), dtype=dtype)
    else:
        labels, targets = np.zeros(1, dtype=np.int64), y
    done = _epoch(theta, bufs, off_w, off_b, dims, acts, float(slope), code, reduction == "mean",
                  bool(half), X, labels, targets, perm, int(batch_size), int(first_step),
                  int(n_steps), float(lr), float(momentum), float(dampening), bool(nesterov),
                  float(weight_decay), bool(first), step_loss)
    _unpack(theta, bufs, off_w, off_b, weights, biases, weight_bufs, bias_bufs, use_buf)
    return int(done)

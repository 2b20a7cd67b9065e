"""The Numba backend: @njit kernels with explicit signatures and cache=True, matching
``ops_numpy``. Imported only when selected."""
from __future__ import annotations

import numba  # noqa: F401
import numpy as np  # noqa: F401


# ---- fused MLP epoch
# Same contract as ops_cpp.mlp_epoch. The parameters are packed into one flat vector so that the
# jitted epoch has a fixed, explicit signature whatever the depth of the network; the packing is
# one copy of the parameters per call, small next to an epoch of GEMMs (np.dot -> BLAS).

import numba as _nb  # noqa: E402

MLP_LOSSES = ("cross_entropy", "mse", "l1", "bce_with_logits")
_MLP_ACT_CODES = {"none": 0, "relu": 1, "leaky_relu": 2, "sigmoid": 3, "tanh": 4}


def _mlp_signature(t):
    vec, mat = t[::1], t[:, ::1]
    i64v = _nb.int64[::1]
    return _nb.int64(vec, vec, i64v, i64v, i64v, i64v, _nb.float64, _nb.int64, _nb.boolean,
                     _nb.boolean, mat, i64v, mat, i64v, _nb.int64, _nb.int64, _nb.int64,
                     _nb.float64, _nb.float64, _nb.float64, _nb.boolean, _nb.float64,
                     _nb.boolean, _nb.float64[::1])


@_nb.njit(cache=True, inline="always")
def _act_forward(z, code, slope):
    if code == 1:
        return z if z > 0 else z * 0
    if code == 2:
        return z if z > 0 else z * slope
    if code == 3:
        e = np.exp(-abs(z))
        return 1 / (1 + e) if z >= 0 else e / (1 + e)
    if code == 4:
        return np.tanh(z)
    return z


@_nb.njit(cache=True, inline="always")
def _act_grad(d, y, code, slope):
    if code == 1:
        return d if y > 0 else d * 0
    if code == 2:
        return d if y > 0 else d * slope
    if code == 3:
        return d * y * (1 - y)
    if code == 4:
        return d * (1 - y * y)
    return d


@_nb.njit([_mlp_signature(_nb.float32), _mlp_signature(_nb.float64)], cache=True)
def _mlp_epoch_flat(theta, bufs, off_w, off_b, dims, acts, slope, loss_code, mean, half, X,
                    labels, targets, perm, batch, first_step, n_steps, lr, momentum, dampening,
                    nesterov, weight_decay, first, step_loss):
    n_layers = dims.shape[0] - 1
    n_perm = perm.shape[0]
    n_out = dims[n_layers]
    grad = np.zeros_like(theta)
    xb = np.empty((batch, dims[0]), dtype=X.dtype)
    outs = [np.empty((batch, dims[l + 1]), dtype=X.dtype) for l in range(n_layers)]
    tb = np.empty((batch, n_out), dtype=X.dtype)
    lb = np.empty(batch, dtype=np.int64)
    for s in range(n_steps):
        start = (first_step + s) * batch
        m = min(batch, n_perm - start)
        for i in range(m):
            r = perm[start + i]
            xb[i, :] = X[r, :]
            if loss_code == 0:
                lb[i] = labels[r]
            else:
                tb[i, :] = targets[r, :]
        # forward
        inp = xb[:m]
        for l in range(n_layers):
            n_in, n_o = dims[l], dims[l + 1]
            w = theta[off_w[l]:off_w[l] + n_o * n_in].reshape((n_o, n_in))
            z = np.dot(inp, w.T)
            out = outs[l][:m]
            code = acts[l]
            for i in range(m):
                for j in range(n_o):
                    v = z[i, j]
                    if off_b[l] >= 0:
                        v += theta[off_b[l] + j]
                    out[i, j] = _act_forward(v, code, slope)
            inp = out
        # loss and its gradient
        y = outs[n_layers - 1][:m]
        dz = np.empty((m, n_out), dtype=X.dtype)
        total = 0.0
        if loss_code == 0:
            scale = 1.0 / m if mean else 1.0
            for i in range(m):
                zmax = y[i, 0]
                for j in range(1, n_out):
                    zmax = max(zmax, y[i, j])
                ssum = 0.0
                for j in range(n_out):
                    e = np.exp(y[i, j] - zmax)
                    dz[i, j] = e
                    ssum += e
                total += np.log(ssum) - (y[i, lb[i]] - zmax)
                for j in range(n_out):
                    dz[i, j] = dz[i, j] / ssum * scale
                dz[i, lb[i]] -= scale
            value = total / m if mean else total
        else:
            scale = 1.0 / (m * n_out) if mean else 1.0
            factor = 0.5 if half else 1.0
            for i in range(m):
                for j in range(n_out):
                    p = y[i, j]
                    t = tb[i, j]
                    if loss_code == 1:
                        diff = p - t
                        total += factor * diff * diff
                        dz[i, j] = diff * (2.0 * factor * scale)
                    elif loss_code == 2:
                        diff = p - t
                        total += abs(diff)
                        dz[i, j] = scale if diff > 0 else (-scale if diff < 0 else 0.0)
                    else:
                        e = np.exp(-abs(p))
                        total += max(p, 0) - t * p + np.log1p(e)
                        sig = 1 / (1 + e) if p >= 0 else e / (1 + e)
                        dz[i, j] = (sig - t) * scale
            value = total / (m * n_out) if mean else total
        step_loss[s] = value
        if not np.isfinite(value):
            return s
        code = acts[n_layers - 1]
        for i in range(m):
            for j in range(n_out):
                dz[i, j] = _act_grad(dz[i, j], y[i, j], code, slope)
        # backward
        for l in range(n_layers - 1, -1, -1):
            n_in, n_o = dims[l], dims[l + 1]
            w = theta[off_w[l]:off_w[l] + n_o * n_in].reshape((n_o, n_in))
            a_prev = outs[l - 1][:m] if l > 0 else xb[:m]
            grad[off_w[l]:off_w[l] + n_o * n_in] = np.dot(dz.T, a_prev).ravel()
            if off_b[l] >= 0:
                gb = grad[off_b[l]:off_b[l] + n_o]
                gb[:] = 0
                for i in range(m):
                    for j in range(n_o):
                        gb[j] += dz[i, j]
            if l > 0:
                dx = np.dot(dz, w)
                code = acts[l - 1]
                for i in range(m):
                    for j in range(n_in):
                        dx[i, j] = _act_grad(dx[i, j], a_prev[i, j], code, slope)
                dz = dx
        # SGD on the flat parameter vector
        for k in range(theta.shape[0]):
            g = grad[k]
            if weight_decay != 0:
                g = g + weight_decay * theta[k]
            if momentum != 0:
                b = g if first else momentum * bufs[k] + (1 - dampening) * g
                bufs[k] = b
                g = g + momentum * b if nesterov else b
            theta[k] -= lr * g
        first = False
    return n_steps


def mlp_epoch(weights, biases, weight_bufs, bias_bufs, activations, slope, loss, reduction, half,
              X, y, perm, batch_size, first_step, n_steps, lr, momentum, dampening, nesterov,
              weight_decay, first, step_loss):
    dtype = X.dtype
    n_layers = len(weights)
    dims = np.empty(n_layers + 1, dtype=np.int64)
    dims[0] = weights[0].shape[1]
    off_w = np.empty(n_layers, dtype=np.int64)
    off_b = np.full(n_layers, -1, dtype=np.int64)
    pieces, buf_pieces, pos = [], [], 0
    use_buf = momentum != 0
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
    acts = np.array([_MLP_ACT_CODES[a] for a in activations], dtype=np.int64)
    code = MLP_LOSSES.index(loss)
    if code == 0:
        labels, targets = y, np.zeros((1, 1), dtype=dtype)
    else:
        labels, targets = np.zeros(1, dtype=np.int64), y
    done = _mlp_epoch_flat(theta, bufs, off_w, off_b, dims, acts, float(slope), code,
                           reduction == "mean", bool(half), X, labels, targets, perm,
                           int(batch_size), int(first_step), int(n_steps), float(lr),
                           float(momentum), float(dampening), bool(nesterov),
                           float(weight_decay), bool(first), step_loss)
    # unpack the updated parameters (and buffers) into the caller's arrays
    for l, (w, b) in enumerate(zip(weights, biases)):
        w.ravel()[:] = theta[off_w[l]:off_w[l] + w.size]
        if use_buf:
            weight_bufs[l].ravel()[:] = bufs[off_w[l]:off_w[l] + w.size]
        if b is not None:
            b[:] = theta[off_b[l]:off_b[l] + b.size]
            if use_buf:
                bias_bufs[l][:] = bufs[off_b[l]:off_b[l] + b.size]
    return int(done)

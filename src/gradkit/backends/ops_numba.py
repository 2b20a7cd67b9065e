"""The Numba backend: @njit kernels with explicit signatures and cache=True, matching
``ops_numpy``. Imported only when selected.

Layout: each kernel works on a range [lo, hi) of a flat array; a serial driver walks the fixed
chunks in order and a ``parallel=True`` driver runs them with prange, storing one float64
partial per chunk that is then added in chunk order. The chunks never depend on the thread
count, so values are bitwise the same for any number of threads. Large inputs take the
parallel driver, small ones the serial driver (prange costs a thread wake-up).

error_model="numpy" everywhere: Numba's default ("python") puts a ZeroDivisionError check on
every float division, a branch that stops LLVM from vectorising the loop (10x slower here).

First call: with explicit signatures everything compiles (cold cache) or loads from Numba's
cache (``cache=True``) when this module is imported, so the first call itself is cheap.
Measured here (2 shared cores, load ~8): cold cache 47 s for the whole module (the prange
drivers dominate), warm cache 1.2 s (of which ``import numba`` 0.5 s); matmul/linear compile
lazily per array layout (about 1 s the first time, then cached).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from gradkit._validation import bce_pred_message

CHUNK = 32768        # elements per chunk: the unit of parallel work and of ordered partial sums
BLOCK = 1024         # losses staged per block before their float64 sum
PARALLEL_MIN = 1 << 18   # below this many elements, run on the calling thread

_L1, _MSE, _BCE, _BCE_LOGITS = 0, 1, 2, 3


def _sigs(template):
    """Explicit signatures for float32 and float64 from a template using F for the float type."""
    return [template.replace("F", "float32"), template.replace("F", "float64")]


# ------------------------------------------------------------------------- float32 exp / log
# np.exp/np.log are libm calls in Numba (no SVML here), which keeps every loop scalar. For
# float32 these polynomials (the same as csrc/kernels/fastmath.hpp, ~2 ulp) inline and let LLVM
# vectorise; float64 keeps np.exp/np.log. _exp/_log/_log1p pick by type at compile time.


@intrinsic
def _as_int32(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _as_float32(typingctx, i):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


@njit(cache=True, error_model="numpy")
def _exp32(x):
    hi = np.float32(88.7228)
    lo = np.float32(-87.33654)
    xc = min(max(x, lo), hi)
    big = np.float32(12582912.0)
    n = (xc * np.float32(1.44269504088896341) + big) - big
    r = n * np.float32(-0.693359375) + xc
    r = n * np.float32(2.12194440e-4) + r
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = (p * r) * r + r + np.float32(1.0)
    ni = np.int32(n)
    n1 = ni >> np.int32(1)
    s1 = _as_float32((n1 + np.int32(127)) << np.int32(23))
    s2 = _as_float32((ni - n1 + np.int32(127)) << np.int32(23))
    y = p * s1 * s2
    y = np.float32(0.0) if x < lo else y
    y = np.float32(np.inf) if x > hi else y
    return x if x != x else y


@njit(cache=True, error_model="numpy")
def _log32(x):
    tiny = x < np.float32(1.17549435e-38)
    xs = x * np.float32(8388608.0) if tiny else x
    bits = _as_int32(xs)
    e = ((bits >> np.int32(23)) & np.int32(0xFF)) - np.int32(126)
    m = _as_float32((bits & np.int32(0x007FFFFF)) | np.int32(0x3F000000))
    # Branch-free: `small` is a coin flip on random data, a branch would mispredict.
    small = np.float32(m < np.float32(0.707106781186547524))
    e = e - np.int32(small)
    f = m + m * small - np.float32(1.0)
    fe = np.float32(e) - (np.float32(23.0) if tiny else np.float32(0.0))
    z = f * f
    p = np.float32(7.0376836292e-2)
    p = p * f + np.float32(-1.1514610310e-1)
    p = p * f + np.float32(1.1676998740e-1)
    p = p * f + np.float32(-1.2420140846e-1)
    p = p * f + np.float32(1.4249322787e-1)
    p = p * f + np.float32(-1.6668057665e-1)
    p = p * f + np.float32(2.0000714765e-1)
    p = p * f + np.float32(-2.4999993993e-1)
    p = p * f + np.float32(3.3333331174e-1)
    y = p * f * z
    y = fe * np.float32(-2.12194440e-4) + y
    y = z * np.float32(-0.5) + y
    r = f + y
    r = fe * np.float32(0.693359375) + r
    r = np.float32(-np.inf) if x == np.float32(0.0) else r
    r = np.float32(np.inf) if x == np.float32(np.inf) else r
    return np.float32(np.nan) if (x < np.float32(0.0) or x != x) else r


@njit(cache=True, error_model="numpy")
def _log1p32(x):
    u = np.float32(1.0) + x
    d = u - np.float32(1.0)
    return x if d == np.float32(0.0) else _log32(u) * (x / d)


def _exp(x):
    return np.exp(x)


def _log(x):
    return np.log(x)


def _log1p(x):
    return np.log1p(x)


@overload(_exp)
def _exp_impl(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: np.exp(x)


@overload(_log)
def _log_impl(x):
    if x == types.float32:
        return lambda x: _log32(x)
    return lambda x: np.log(x)


@overload(_log1p)
def _log1p_impl(x):
    if x == types.float32:
        return lambda x: _log1p32(x)
    return lambda x: np.log1p(x)


# ----------------------------------------------------------------------------- GEMM and dense
# np.dot inside @njit calls BLAS on contiguous 2-D arrays; the layouts vary (transposed views),
# so these compile lazily per layout instead of from a fixed signature list.


@njit(cache=True, error_model="numpy")
def _dot(a, b):
    return np.dot(a, b)


def matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    result = _dot(a.T if trans_a else a, b.T if trans_b else b)
    if out is None:
        return result
    if accumulate:
        out += result
    else:
        out[...] = result
    return out


def linear(x, w, b, activation="none", slope=0.01):
    z = _dot(x, w.T)
    if b is not None:
        _add_bias(z, b)
    if activation == "none":
        return z
    if activation == "leaky_relu":
        return leaky_relu(z, slope)
    return {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}[activation](z)


@njit(_sigs("void(F[:, ::1], F[::1])"), cache=True, error_model="numpy")
def _add_bias(z, b):
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            z[i, j] += b[j]


@njit(_sigs("void(F[:, ::1], F[::1])"), cache=True, error_model="numpy")
def _sum_rows_into(dy, db):
    for i in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            db[j] += dy[i, j]


def linear_backward(dy, x, w, dw, db, need_dx=True):
    dw += _dot(dy.T, x)
    if db is not None:
        _sum_rows_into(dy, db)
    return _dot(dy, w) if need_dx else None


# ------------------------------------------------------------------------------- activations
# y[i] = f(x[i]) over a flat range; the forward and backward kernels share two drivers.

_ACT_RELU, _ACT_LEAKY, _ACT_SIGMOID, _ACT_TANH = 0, 1, 2, 3


@njit(_sigs("void(int64, F[::1], F[::1], F, int64, int64)"), cache=True, error_model="numpy")
def _act_range(op, y, x, slope, lo, hi):
    # Slices, then indices from 0: a range(lo, hi) index may be negative as far as Numba
    # knows, and its wraparound check keeps LLVM from vectorising (4x slower).
    y = y[lo:hi]
    x = x[lo:hi]
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    if op == _ACT_RELU:
        for i in range(hi - lo):
            y[i] = x[i] if x[i] > zero else zero
    elif op == _ACT_LEAKY:
        for i in range(hi - lo):
            y[i] = x[i] if x[i] > zero else x[i] * slope
    elif op == _ACT_SIGMOID:
        for i in range(hi - lo):
            e = _exp(-abs(x[i]))
            inv = one / (one + e)
            pos = x.dtype.type(x[i] >= zero)  # arithmetic, not a branch, on the sign
            y[i] = inv * (pos + (one - pos) * e)
    else:
        for i in range(hi - lo):
            y[i] = np.tanh(x[i])


@njit(_sigs("void(int64, F[::1], F[::1], F[::1], F, int64, int64)"), cache=True, error_model="numpy")
def _act_back_range(op, dx, dy, y, slope, lo, hi):
    dx = dx[lo:hi]
    dy = dy[lo:hi]
    y = y[lo:hi]
    zero = y.dtype.type(0)
    one = y.dtype.type(1)
    if op == _ACT_RELU:
        for i in range(hi - lo):
            dx[i] = dy[i] if y[i] > zero else zero
    elif op == _ACT_LEAKY:
        for i in range(hi - lo):
            dx[i] = dy[i] if y[i] > zero else dy[i] * slope
    elif op == _ACT_SIGMOID:
        for i in range(hi - lo):
            dx[i] = dy[i] * y[i] * (one - y[i])
    else:
        for i in range(hi - lo):
            dx[i] = dy[i] * (one - y[i] * y[i])


@njit(_sigs("void(int64, F[::1], F[::1], F)"), cache=True, error_model="numpy", parallel=True)
def _act_parallel(op, y, x, slope):
    n_chunks = (x.size + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        _act_range(op, y, x, slope, c * CHUNK, min(x.size, (c + 1) * CHUNK))


@njit(_sigs("void(int64, F[::1], F[::1], F[::1], F)"), cache=True, error_model="numpy", parallel=True)
def _act_back_parallel(op, dx, dy, y, slope):
    n_chunks = (y.size + CHUNK - 1) // CHUNK
    for c in prange(n_chunks):
        _act_back_range(op, dx, dy, y, slope, c * CHUNK, min(y.size, (c + 1) * CHUNK))


def _activate(op, x, slope=0.0):
    y = np.empty_like(x)
    flat_y, flat_x = y.reshape(-1), x.reshape(-1)
    s = x.dtype.type(slope)
    if x.size >= PARALLEL_MIN:
        _act_parallel(op, flat_y, flat_x, s)
    else:
        _act_range(op, flat_y, flat_x, s, 0, x.size)
    return y


def _activate_back(op, dy, y, slope=0.0):
    dx = np.empty_like(y)
    flat = (dx.reshape(-1), dy.reshape(-1), y.reshape(-1))
    s = y.dtype.type(slope)
    if y.size >= PARALLEL_MIN:
        _act_back_parallel(op, *flat, s)
    else:
        _act_back_range(op, *flat, s, 0, y.size)
    return dx


def relu(x):
    return _activate(_ACT_RELU, x)


def relu_backward(dy, y):
    return _activate_back(_ACT_RELU, dy, y)


def leaky_relu(x, slope):
    return _activate(_ACT_LEAKY, x, slope)


def leaky_relu_backward(dy, y, slope):
    return _activate_back(_ACT_LEAKY, dy, y, slope)


def sigmoid(x):
    return _activate(_ACT_SIGMOID, x)


def sigmoid_backward(dy, y):
    return _activate_back(_ACT_SIGMOID, dy, y)


def tanh(x):
    return _activate(_ACT_TANH, x)


def tanh_backward(dy, y):
    return _activate_back(_ACT_TANH, dy, y)


@njit(_sigs("void(F[:, ::1], F[:, ::1])"), cache=True, error_model="numpy")
def _softmax_rows(y, x):
    for r in range(x.shape[0]):
        mx = x[r, 0]
        for j in range(1, x.shape[1]):
            mx = max(mx, x[r, j])
        total = x.dtype.type(0)
        for j in range(x.shape[1]):
            e = np.exp(x[r, j] - mx)
            y[r, j] = e
            total += e
        inv = x.dtype.type(1) / total
        for j in range(x.shape[1]):
            y[r, j] *= inv


@njit(_sigs("void(F[:, ::1], F[:, ::1], F[:, ::1])"), cache=True, error_model="numpy")
def _softmax_back_rows(dx, dy, y):
    for r in range(y.shape[0]):
        dot = y.dtype.type(0)
        for j in range(y.shape[1]):
            dot += dy[r, j] * y[r, j]
        for j in range(y.shape[1]):
            dx[r, j] = y[r, j] * (dy[r, j] - dot)


def softmax(x):
    y = np.empty_like(x)
    if x.size:
        _softmax_rows(y, x)
    return y


def softmax_backward(dy, y):
    dx = np.empty_like(y)
    if y.size:
        _softmax_back_rows(dx, dy, y)
    return dx


# ------------------------------------------------------------------------------------ losses
# One fused pass per loss: the gradient goes to grad[i], the per-element loss either to
# per[i] ("none") or to a small block buffer whose float64 sum uses eight interleaved
# accumulators (a fixed order that LLVM can vectorise).


@njit(_sigs("float64(F[::1], int64)"), cache=True, error_model="numpy")
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


@njit(_sigs("void(int64, F[::1], F[::1], int64, F[::1], F[::1], int64, int64, F, F)"),
      cache=True, error_model="numpy")
def _pair_block(op, grad, out, off, p, t, lo, hi, scale, factor):
    """Losses of [lo, hi) into out[lo - off:hi - off], gradients into grad[lo:hi]."""
    grad = grad[lo:hi]
    out = out[lo - off:hi - off]
    p = p[lo:hi]
    t = t[lo:hi]
    zero = p.dtype.type(0)
    one = p.dtype.type(1)
    if op == _L1:
        for i in range(hi - lo):
            d = p[i] - t[i]
            grad[i] = (p.dtype.type(d > zero) - p.dtype.type(d < zero)) * scale
            out[i] = abs(d)
    elif op == _MSE:
        for i in range(hi - lo):
            d = p[i] - t[i]
            grad[i] = d * scale
            out[i] = factor * d * d
    elif op == _BCE:
        lo_clamp = p.dtype.type(-100)
        eps = p.dtype.type(1e-12)
        for i in range(hi - lo):
            q = p[i]
            y = t[i]
            log_p = max(_log(q), lo_clamp)
            log_1mq = max(_log1p(-q), lo_clamp)
            grad[i] = (q - y) / max(q * (one - q), eps) * scale
            out[i] = -(y * log_p + (one - y) * log_1mq)
    else:
        half = p.dtype.type(0.5)
        for i in range(hi - lo):
            z = p[i]
            y = t[i]
            e = _exp(-abs(z))
            inv = one / (one + e)
            pos = p.dtype.type(z >= zero)  # arithmetic, not a branch, on the sign of z
            sig = inv * (pos + (one - pos) * e)
            grad[i] = (sig - y) * scale
            out[i] = (z + abs(z)) * half - y * z + _log1p(e)


@njit(_sigs("float64(int64, F[::1], F[::1], F[::1], F[::1], int64, int64, F, F, boolean)"),
      cache=True, error_model="numpy")
def _pair_chunk(op, grad, per, p, t, lo, hi, scale, factor, want_per):
    if want_per:
        _pair_block(op, grad, per, 0, p, t, lo, hi, scale, factor)
        return 0.0
    buf = np.empty(BLOCK, dtype=p.dtype)
    total = 0.0
    for s in range(lo, hi, BLOCK):
        e = min(hi, s + BLOCK)
        _pair_block(op, grad, buf, s, p, t, s, e, scale, factor)
        total += _sum8(buf, e - s)
    return total


@njit(_sigs("int64(F[::1], int64, int64)"), cache=True, error_model="numpy")
def _count_not_probability(p, lo, hi):
    p = p[lo:hi]
    bad = 0
    for i in range(hi - lo):
        bad += not (p[i] >= 0 and p[i] <= 1)  # NaN counts too
    return bad


@njit(_sigs("float64(int64, F[::1], F[::1], F[::1], F[::1], F, F, boolean, int64[::1])"),
      cache=True, error_model="numpy")
def _pair_serial(op, grad, per, p, t, scale, factor, want_per, bad):
    n = p.size
    total = 0.0
    for c in range((n + CHUNK - 1) // CHUNK):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        if op == _BCE:
            bad[c] = _count_not_probability(p, lo, hi)
        total += _pair_chunk(op, grad, per, p, t, lo, hi, scale, factor, want_per)
    return total


@njit(_sigs("float64(int64, F[::1], F[::1], F[::1], F[::1], F, F, boolean, int64[::1])"),
      cache=True, error_model="numpy", parallel=True)
def _pair_parallel(op, grad, per, p, t, scale, factor, want_per, bad):
    n = p.size
    n_chunks = (n + CHUNK - 1) // CHUNK
    partial = np.empty(n_chunks)
    for c in prange(n_chunks):
        lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
        if op == _BCE:
            bad[c] = _count_not_probability(p, lo, hi)
        partial[c] = _pair_chunk(op, grad, per, p, t, lo, hi, scale, factor, want_per)
    total = 0.0
    for c in range(n_chunks):  # chunk order, whatever the thread count
        total += partial[c]
    return total


def _pair_loss(op, pred, target, reduction, grad_factor=1.0, value_factor=1.0):
    n = pred.size
    dtype = pred.dtype.type
    scale = dtype(grad_factor / n if reduction == "mean" else grad_factor)
    grad = np.empty_like(pred)
    want_per = reduction == "none"
    per = np.empty_like(pred) if want_per else np.empty(1, pred.dtype)
    bad = np.zeros((n + CHUNK - 1) // CHUNK if op == _BCE else 1, np.int64)
    run = _pair_parallel if n >= PARALLEL_MIN else _pair_serial
    total = run(op, grad.reshape(-1), per.reshape(-1), pred.reshape(-1), target.reshape(-1),
                scale, dtype(value_factor), want_per, bad)
    if op == _BCE:
        n_bad = int(bad.sum())
        if n_bad:
            raise ValueError(bce_pred_message(n_bad))
    if want_per:
        return per, grad
    return (total / n if reduction == "mean" else total), grad


def l1_loss(pred, target, reduction="mean"):
    return _pair_loss(_L1, pred, target, reduction)


def mse_loss(pred, target, reduction="mean", half=False):
    factor = 0.5 if half else 1.0
    return _pair_loss(_MSE, pred, target, reduction, 2.0 * factor, factor)


def bce_loss(pred, target, reduction="mean"):
    return _pair_loss(_BCE, pred, target, reduction)


def bce_with_logits_loss(logits, target, reduction="mean"):
    return _pair_loss(_BCE_LOGITS, logits, target, reduction)


FEW_CLASSES = 64     # up to here, cross-entropy works on transposed blocks of rows
CE_BLOCK = 256       # rows per transposed block


@njit(_sigs("float64(F[:, ::1], F[::1], F[:, ::1], int64[::1], int64, int64, F, boolean)"),
      cache=True, error_model="numpy")
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
                e = _exp(row[r] - mx[r])
                row[r] = e
                s[r] += e
        for r in range(m):
            k = labels[r0 + r]
            v[r] = _log(s[r]) - (zb[r, k] - mx[r])
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


@njit(_sigs("float64(F[:, ::1], F[::1], F[:, ::1], int64[::1], int64, int64, F, boolean)"),
      cache=True, error_model="numpy")
def _ce_rows(grad, per, z, labels, lo, hi, scale, want_per):
    total = 0.0
    n_classes = z.shape[1]
    for r in range(lo, hi):
        zr = z[r]
        gr = grad[r]
        mx = zr[0]
        for j in range(1, n_classes):
            mx = max(mx, zr[j])
        s = z.dtype.type(0)
        for j in range(n_classes):
            e = _exp(zr[j] - mx)
            gr[j] = e
            s += e
        k = labels[r]
        v = _log(s) - (zr[k] - mx)
        g = scale / s
        for j in range(n_classes):
            gr[j] *= g
        gr[k] -= scale
        if want_per:
            per[r] = v
        else:
            total += v
    return total


@njit(_sigs("float64(F[:, ::1], F[::1], F[:, ::1], int64[::1], int64, int64, F, boolean)"),
      cache=True, error_model="numpy")
def _ce_rows_any(grad, per, z, labels, lo, hi, scale, want_per):
    if z.shape[1] <= FEW_CLASSES:
        return _ce_rows_few(grad, per, z, labels, lo, hi, scale, want_per)
    return _ce_rows(grad, per, z, labels, lo, hi, scale, want_per)


@njit(_sigs("float64(F[:, ::1], F[::1], F[:, ::1], int64[::1], F, boolean, int64)"),
      cache=True, error_model="numpy", parallel=True)
def _ce_parallel(grad, per, z, labels, scale, want_per, rows):
    n = z.shape[0]
    n_chunks = (n + rows - 1) // rows
    partial = np.empty(n_chunks)
    for c in prange(n_chunks):
        partial[c] = _ce_rows_any(grad, per, z, labels, c * rows, min(n, (c + 1) * rows), scale,
                              want_per)
    total = 0.0
    for c in range(n_chunks):
        total += partial[c]
    return total


@njit(_sigs("float64(F[:, ::1], F[::1], F[:, ::1], int64[::1], F, boolean, int64)"),
      cache=True, error_model="numpy")
def _ce_serial(grad, per, z, labels, scale, want_per, rows):
    n = z.shape[0]
    total = 0.0
    for c in range((n + rows - 1) // rows):
        total += _ce_rows_any(grad, per, z, labels, c * rows, min(n, (c + 1) * rows), scale,
                          want_per)
    return total


def cross_entropy_loss(logits, labels, reduction="mean"):
    batch, n_classes = logits.shape
    scale = logits.dtype.type(1.0 / batch if reduction == "mean" else 1.0)
    grad = np.empty_like(logits)
    want_per = reduction == "none"
    per = np.empty(batch if want_per else 1, logits.dtype)
    rows = max(1, CHUNK // n_classes)
    run = _ce_parallel if logits.size >= PARALLEL_MIN else _ce_serial
    total = run(grad, per, logits, labels, scale, want_per, rows)
    if want_per:
        return per, grad
    return (total / batch if reduction == "mean" else total), grad


# --------------------------------------------------------------------------------- optimiser


@njit(_sigs("void(F[::1], F[::1], F[::1], F, F, F, boolean, F, boolean, boolean, int64, int64)"),
      cache=True, error_model="numpy")
def _sgd_range(param, grad, buf, lr, momentum, damp, nesterov, wd, first, use_buf, lo, hi):
    param = param[lo:hi]
    grad = grad[lo:hi]
    if use_buf:
        buf = buf[lo:hi]
    one = param.dtype.type(1)
    for i in range(hi - lo):
        g = grad[i] + wd * param[i] if wd != 0 else grad[i]
        if use_buf:
            v = g if first else momentum * buf[i] + (one - damp) * g
            buf[i] = v
            g = g + momentum * v if nesterov else v
        param[i] -= lr * g


@njit(_sigs("void(F[::1], F[::1], F[::1], F, F, F, boolean, F, boolean, boolean)"),
      cache=True, error_model="numpy", parallel=True)
def _sgd_parallel(param, grad, buf, lr, momentum, damp, nesterov, wd, first, use_buf):
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        _sgd_range(param, grad, buf, lr, momentum, damp, nesterov, wd, first, use_buf,
                   c * CHUNK, min(n, (c + 1) * CHUNK))


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    t = param.dtype.type
    use_buf = momentum != 0
    flat_buf = buf.reshape(-1) if use_buf else np.empty(1, param.dtype)
    args = (param.reshape(-1), grad.reshape(-1), flat_buf, t(lr), t(momentum), t(dampening),
            bool(nesterov), t(weight_decay), bool(first), use_buf)
    if param.size >= PARALLEL_MIN:
        _sgd_parallel(*args)
    else:
        _sgd_range(*args, 0, param.size)


__all__ = [
    "matmul", "linear", "linear_backward",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward", "softmax", "softmax_backward",
    "l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy_loss", "sgd_step",
]


# ---- k-means
# Same contract as ops_numpy's k-means section. Rows are split into fixed chunks (their number
# depends on n only) with per-chunk partials reduced in chunk order: results do not depend on
# the thread count. Empty-cluster relocation (rare) reuses the NumPy reference.
import numba as _nb  # noqa: E402

from gradkit.backends import ops_numpy as _ref  # noqa: E402

_KM_MAX_CHUNKS = 16
_KM_MIN_CHUNK_ROWS = 4096


def _km_chunks(n):
    return max(1, min(_KM_MAX_CHUNKS, -(-n // _KM_MIN_CHUNK_ROWS)))


def _km_sigs(body):
    sigs = []
    for t in ("float32", "float64"):
        sigs.append(body.replace("T", t))
    return sigs


_PASS_SIG = _km_sigs("void(T[:, ::1], T[::1], boolean, T[:, ::1], T[::1], int32[::1], boolean, "
                     "float64[:, :, ::1], float64[:, ::1], float64[:, ::1])")


@_nb.njit(_PASS_SIG, parallel=True, cache=True, nogil=True)
def _km_pass(X, w, has_w, centers, cnorm, labels, update, sums, weight, stats):
    # stats[c] = (inertia, n_changed) of chunk c; sums/weight per chunk when update.
    n, d = X.shape
    k = centers.shape[0]
    chunks = stats.shape[0]
    for c in _nb.prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            best = np.inf
            arg = 0
            for j in range(k):
                dot = centers[j, 0] * 0
                for p in range(d):
                    dot += X[i, p] * centers[j, p]
                dist = cnorm[j] - 2 * dot
                if dist < best:
                    best = dist
                    arg = j
            wi = np.float64(w[i]) if has_w else 1.0
            if labels[i] != arg:
                stats[c, 1] += 1
            labels[i] = arg
            xx = 0.0
            for p in range(d):
                xv = np.float64(X[i, p])
                xx += xv * xv
                if update:
                    sums[c, arg, p] += wi * xv
            if update:
                weight[c, arg] += wi
            stats[c, 0] += wi * max(0.0, xx + np.float64(best))


@_nb.njit(_km_sigs("float64(T[:, ::1], T[::1], boolean, T[:, ::1], int32[::1], int64)"),
          parallel=True, cache=True, nogil=True)
def _km_inertia(X, w, has_w, centers, labels, chunks):
    n, d = X.shape
    part = np.zeros(chunks)
    for c in _nb.prange(chunks):
        acc = 0.0
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            s = 0.0
            for p in range(d):
                diff = np.float64(X[i, p]) - np.float64(centers[labels[i], p])
                s += diff * diff
            acc += (np.float64(w[i]) if has_w else 1.0) * s
        part[c] = acc
    total = 0.0
    for c in range(chunks):
        total += part[c]
    return total


def _km_weights(X, sample_weight):
    if sample_weight is None:
        return np.empty(0, dtype=X.dtype), False
    return sample_weight, True


def _km_run_pass(X, sample_weight, centers, labels, update):
    n, d = X.shape
    k = centers.shape[0]
    chunks = _km_chunks(n)
    w, has_w = _km_weights(X, sample_weight)
    cnorm = np.einsum("ij,ij->i", centers, centers)
    sums = np.zeros((chunks, k, d) if update else (1, 1, 1))
    weight = np.zeros((chunks, k) if update else (1, 1))
    stats = np.zeros((chunks, 2))
    _km_pass(X, w, has_w, centers, cnorm, labels, update, sums, weight, stats)
    return sums, weight, stats


def _km_chunk_sum(parts):
    total = np.zeros(parts.shape[1:])
    for part in parts:  # chunk order
        total += part
    return total


def kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads=1):
    sums, weight, stats = _km_run_pass(X, sample_weight, centers, labels, True)
    sums, weight, stats = _km_chunk_sum(sums), _km_chunk_sum(weight), _km_chunk_sum(stats)
    w = _ref._kmeans_weights(sample_weight, X.shape[0])
    _ref._kmeans_relocate_empty(sums, weight, X, w, centers, labels)
    scale = np.where(weight > 0, 1.0 / np.where(weight > 0, weight, 1.0), 1.0)
    centers_new = (sums * scale[:, None]).astype(X.dtype)
    shift = float(np.sum((centers_new.astype(np.float64) - centers) ** 2))
    return centers_new, int(stats[1]), shift, float(stats[0])


def kmeans_assign(X, sample_weight, centers, n_threads=1):
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    _, _, stats = _km_run_pass(X, sample_weight, centers, labels, False)
    return labels, float(_km_chunk_sum(stats)[0])


def kmeans_inertia(X, sample_weight, centers, labels, n_threads=1):
    w, has_w = _km_weights(X, sample_weight)
    return float(_km_inertia(X, w, has_w, centers, labels, _km_chunks(X.shape[0])))


def kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads=1):
    return _ref.kmeans_lloyd_loop(kmeans_lloyd_step, kmeans_assign, kmeans_inertia, X,
                                  sample_weight, centers_init, max_iter, tol, n_threads)


@_nb.njit(_km_sigs("void(T[:, ::1], T[::1], T[::1], boolean, int64[::1], T[::1], T[::1], "
                   "boolean, float64[:, ::1])"), parallel=True, cache=True, nogil=True)
def _km_pp_sweep(X, sq, w, has_w, cand, closest, cnorm, update, pots):
    # pots[c, t] = sum over chunk c of w * min(closest, D^2(x, X[cand[t]])); when update,
    # closest takes that minimum (only called with one candidate then).
    n, d = X.shape
    chunks = pots.shape[0]
    for c in _nb.prange(chunks):
        for i in range(c * n // chunks, (c + 1) * n // chunks):
            wi = np.float64(w[i]) if has_w else 1.0
            for t in range(cand.shape[0]):
                dot = X[i, 0] * 0
                for p in range(d):
                    dot += X[i, p] * X[cand[t], p]
                dist = max(sq[i] + cnorm[t] - 2 * dot, 0)
                dist = min(dist, closest[i])
                if update:
                    closest[i] = dist
                pots[c, t] += wi * np.float64(dist)


# A few vectorised NumPy passes; nothing for a jitted loop to gain.
kmeans_mean_variance = _ref.kmeans_mean_variance


def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    n = X.shape[0]
    chunks = _km_chunks(n)
    w, has_w = _km_weights(X, sample_weight)
    wf = _ref._kmeans_weights(sample_weight, n)
    sq = np.einsum("ij,ij->i", X, X)

    def sweep(cand, closest, update):
        pots = np.zeros((chunks, cand.shape[0]))
        _km_pp_sweep(X, sq, w, has_w, cand, closest, sq[cand], update, pots)
        return _km_chunk_sum(pots)

    def draw(mass, targets):
        return np.minimum(np.searchsorted(np.cumsum(mass), targets, side="left"), n - 1)

    indices = np.empty(n_clusters, dtype=np.int64)
    indices[0] = draw(wf, uniforms[0] * wf.sum())
    closest = np.full(n, np.inf, dtype=X.dtype)
    current = float(sweep(indices[:1], closest, True)[0])
    for c in range(1, n_clusters):
        u = uniforms[1 + (c - 1) * n_local_trials: 1 + c * n_local_trials]
        cand = draw(wf * closest, u * current).astype(np.int64)
        pots = sweep(cand, closest, False)
        best = int(np.argmin(pots))
        current = float(pots[best])
        indices[c] = cand[best]
        sweep(cand[best:best + 1].copy(), closest, True)
    return indices


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


_SMALL_PRODUCT = 4096  # multiply-adds below which a product is looped here, not sent to BLAS

# The epoch keeps every array flat (parameters, activations, gradients) and indexes it with
# offsets: building a 2-D view costs reference counting and, for a slice, a call to Numba's
# reshape helper, which for a 2-3-1 network at batch 1 cost more than the arithmetic. Only the
# products large enough for BLAS build views. The small products below run each sum over k in
# order, starting from the first product, in the parameters' precision: the same bits as
# before the flat layout.


@_nb.njit(cache=True, inline="always")
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
                act[o0 + j] = _act_forward(acc, code, slope)
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
        if code == 0:  # a linear output: the bias alone, without the activation's branches
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
                act[o] = _act_forward(v, code, slope)


@_nb.njit(cache=True, inline="always")
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


@_nb.njit(cache=True, inline="always")
def _input_grad_small(d, dx_off, dz_off, theta, w_off, y, y_off, m, n_in, n_o, code, slope):
    """d[dx_off:] (m, n_in) = act_grad(d[dz_off:] (m, n_o) @ W (n_o, n_in)) at the layer's
    input y[y_off:]."""
    for i in range(m):
        for c in range(n_in):
            acc = d[dz_off + i * n_o] * theta[w_off + c]
            for p in range(1, n_o):
                acc += d[dz_off + i * n_o + p] * theta[w_off + p * n_in + c]
            d[dx_off + i * n_in + c] = _act_grad(acc, y[y_off + i * n_in + c], code, slope)


@_nb.njit(cache=True, inline="always")
def _act_backward_flat(d, y, y_off, n, code, slope):
    """d[:n] = act_grad(d, y[y_off:]), one loop per activation (no branch per element)."""
    if code == 1:
        for k in range(n):
            d[k] = _act_grad(d[k], y[y_off + k], 1, slope)
    elif code == 2:
        for k in range(n):
            d[k] = _act_grad(d[k], y[y_off + k], 2, slope)
    elif code == 3:
        for k in range(n):
            d[k] = _act_grad(d[k], y[y_off + k], 3, slope)
    elif code == 4:
        for k in range(n):
            d[k] = _act_grad(d[k], y[y_off + k], 4, slope)


@_nb.njit(cache=True, inline="always")
def _loss_flat(dz, y, y_off, labels, l_off, targets, t_off, m, n_out, loss_code, mean, half):
    """The batch's loss (float64) and dz[:m * n_out] = its gradient w.r.t. y[y_off:] (m, n_out)."""
    total = 0.0
    if loss_code == 0:
        scale = 1.0 / m if mean else 1.0
        for i in range(m):
            r = y_off + i * n_out
            g = i * n_out
            zmax = y[r]
            for j in range(1, n_out):
                zmax = max(zmax, y[r + j])
            ssum = 0.0
            for j in range(n_out):
                e = np.exp(y[r + j] - zmax)
                dz[g + j] = e
                ssum += e
            lab = labels[l_off + i]
            total += np.log(ssum) - (y[r + lab] - zmax)
            for j in range(n_out):
                dz[g + j] = dz[g + j] / ssum * scale
            dz[g + lab] -= scale
        return total / m if mean else total
    n = m * n_out
    scale = 1.0 / n if mean else 1.0
    if loss_code == 1:
        factor = 0.5 if half else 1.0
        gscale = 2.0 * factor * scale
        for k in range(n):
            diff = y[y_off + k] - targets[t_off + k]
            total += factor * diff * diff
            dz[k] = diff * gscale
    elif loss_code == 2:
        for k in range(n):
            diff = y[y_off + k] - targets[t_off + k]
            total += abs(diff)
            dz[k] = scale if diff > 0 else (-scale if diff < 0 else 0.0)
    else:
        for k in range(n):
            p = y[y_off + k]
            t = targets[t_off + k]
            e = np.exp(-abs(p))
            total += max(p, 0) - t * p + np.log1p(e)
            sig = 1 / (1 + e) if p >= 0 else e / (1 + e)
            dz[k] = (sig - t) * scale
    return total / n if mean else total


@_nb.njit([_mlp_signature(_nb.float32), _mlp_signature(_nb.float64)], cache=True)
def _mlp_epoch_flat(theta, bufs, off_w, off_b, dims, acts, slope, loss_code, mean, half, X,
                    labels, targets, perm, batch, first_step, n_steps, lr, momentum, dampening,
                    nesterov, weight_decay, first, step_loss):
    n_layers = dims.shape[0] - 1
    n_rows = X.shape[0]
    n_in0 = dims[0]
    n_out = dims[n_layers]
    steps_per_epoch = (n_rows + batch - 1) // batch
    # one epoch's order in perm serves every epoch of the call; several are taken in turn
    perm_stride = 0 if perm.shape[0] == n_rows else n_rows
    batch = min(batch, n_rows)  # a batch larger than the data is the whole data
    grad = np.zeros_like(theta)
    xf = X.reshape(n_rows * n_in0)
    tf = targets.reshape(targets.size)
    # Gathered rows are written through 2-D views (the column index is known to be
    # non-negative, so the copy vectorises) and read through the flat ones.
    xb2 = np.empty((batch, n_in0), dtype=X.dtype)
    xb = xb2.reshape(batch * n_in0)
    # Every layer's output in one flat buffer: layer l's (m, dims[l + 1]) rows at act_off[l].
    act_off = np.empty(n_layers, dtype=np.int64)
    width, pos = 1, 0
    for l in range(n_layers):
        act_off[l] = pos
        pos += batch * dims[l + 1]
    for l in range(n_layers + 1):
        width = max(width, dims[l])
    act = np.empty(pos, dtype=X.dtype)
    # The gradients w.r.t. a layer's output (dz) and input (dx) take turns in the two halves of
    # one buffer: swapping offsets, not arrays, costs no reference counting.
    d = np.empty(2 * batch * width, dtype=X.dtype)
    hyper = np.empty(5, dtype=X.dtype)  # the SGD constants rounded to the parameters' dtype
    hyper[0], hyper[1], hyper[2], hyper[3], hyper[4] = lr, momentum, 1 - dampening, weight_decay, 0
    lr_t, mom_t, damp_t, wd_t, zero_t = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
    tb2 = np.empty((batch, n_out), dtype=X.dtype)
    tb = tb2.reshape(batch * n_out)
    lb = np.empty(batch, dtype=np.int64)
    for s in range(n_steps):
        offset = ((first_step + s) % steps_per_epoch) * batch
        start = ((first_step + s) // steps_per_epoch) * perm_stride + offset
        m = min(batch, n_rows - offset)
        # The batch's rows: read in place when consecutive (no shuffle), else gathered with
        # element loops (a slice per row costs more than a short row). The check has no early
        # exit, so it vectorises.
        r0 = perm[start]
        gaps = 0
        if m > 1:
            rows = perm[start:start + m]
            for i in range(1, m):
                gaps |= rows[i] ^ (r0 + i)
        if gaps == 0:
            xin, x_off = xf, r0 * n_in0
            lab_a, l_off = labels, r0
            tgt_a, t_off = tf, r0 * n_out
        else:
            for i in range(m):
                r = perm[start + i]
                for j in range(n_in0):
                    xb2[i, j] = X[r, j]
                if loss_code == 0:
                    lb[i] = labels[r]
                else:
                    for j in range(n_out):
                        tb2[i, j] = targets[r, j]
            xin, x_off = xb, 0
            lab_a, l_off = lb, 0
            tgt_a, t_off = tb, 0
        # forward
        for l in range(n_layers):
            n_in, n_o = dims[l], dims[l + 1]
            src, s_off = (xin, x_off) if l == 0 else (act, act_off[l - 1])
            o_off = act_off[l]
            code = acts[l]
            if m * n_o * n_in > _SMALL_PRODUCT:
                a2 = src[s_off:s_off + m * n_in].reshape((m, n_in))
                w2 = theta[off_w[l]:off_w[l] + n_o * n_in].reshape((n_o, n_in))
                z = act[o_off:o_off + m * n_o].reshape((m, n_o))
                np.dot(a2, w2.T, z)
                b_off = off_b[l]
                for i in range(m):
                    for j in range(n_o):
                        v = z[i, j]
                        if b_off >= 0:
                            v += theta[b_off + j]
                        z[i, j] = _act_forward(v, code, slope)
            else:
                _forward_small(act, o_off, src, s_off, theta, off_w[l], off_b[l], m, n_in, n_o,
                               code, slope)
        # loss and its gradient
        y_off = act_off[n_layers - 1]
        value = _loss_flat(d, act, y_off, lab_a, l_off, tgt_a, t_off, m, n_out, loss_code,
                           mean, half)
        step_loss[s] = value
        if not np.isfinite(value):
            return s
        _act_backward_flat(d, act, y_off, m * n_out, acts[n_layers - 1], slope)
        # backward
        dz_off, dx_off = 0, batch * width
        for l in range(n_layers - 1, -1, -1):
            n_in, n_o = dims[l], dims[l + 1]
            w_off, b_off = off_w[l], off_b[l]
            src, s_off = (xin, x_off) if l == 0 else (act, act_off[l - 1])
            if m * n_o * n_in > _SMALL_PRODUCT:
                dz2 = d[dz_off:dz_off + m * n_o].reshape((m, n_o))
                a2 = src[s_off:s_off + m * n_in].reshape((m, n_in))
                np.dot(dz2.T, a2, grad[w_off:w_off + n_o * n_in].reshape((n_o, n_in)))
                if b_off >= 0:
                    gb = grad[b_off:b_off + n_o]
                    gb[:] = 0
                    for i in range(m):
                        for j in range(n_o):
                            gb[j] += dz2[i, j]
            else:
                _weight_grad_small(grad, w_off, b_off, d, dz_off, src, s_off, m, n_in, n_o,
                                   zero_t)
            if l > 0:
                code = acts[l - 1]
                if m * n_in * n_o > _SMALL_PRODUCT:
                    w2 = theta[w_off:w_off + n_o * n_in].reshape((n_o, n_in))
                    dx2 = d[dx_off:dx_off + m * n_in].reshape((m, n_in))
                    np.dot(d[dz_off:dz_off + m * n_o].reshape((m, n_o)), w2, dx2)
                    y2 = act[s_off:s_off + m * n_in].reshape((m, n_in))
                    for i in range(m):
                        for j in range(n_in):
                            dx2[i, j] = _act_grad(dx2[i, j], y2[i, j], code, slope)
                else:
                    _input_grad_small(d, dx_off, dz_off, theta, w_off, act, s_off, m, n_in, n_o,
                                      code, slope)
                dz_off, dx_off = dx_off, dz_off
        # SGD on the flat parameter vector, in the parameters' precision (as the C++ epoch);
        # plain momentum, the common case, gets a loop without branches.
        if momentum != 0 and weight_decay == 0 and not nesterov and not first:
            for k in range(theta.shape[0]):
                b = mom_t * bufs[k] + damp_t * grad[k]
                bufs[k] = b
                theta[k] -= lr_t * b
        else:
            for k in range(theta.shape[0]):
                g = grad[k]
                if weight_decay != 0:
                    g = g + wd_t * theta[k]
                if momentum != 0:
                    b = g if first else mom_t * bufs[k] + damp_t * g
                    bufs[k] = b
                    g = g + mom_t * b if nesterov else b
                theta[k] -= lr_t * g
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

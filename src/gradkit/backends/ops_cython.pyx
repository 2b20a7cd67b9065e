# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The Cython backend, the scikit-learn way: typed loops and GEMM through
scipy.linalg.cython_blas. Matches ``ops_numpy``; kernel core only.

Every function trusts its input (C-contiguous, one float dtype; see ``gradkit.backends``).

Determinism: elementwise work is split into fixed chunks of CHUNK elements (rows for the
row-wise ops), and ``prange`` hands out whole chunks, only above PARALLEL_MIN elements. Every
element therefore takes the same code path (vector body or scalar tail) for any thread count,
and loss values, summed in float64 per chunk with the chunk partials added in chunk order, are
bitwise the same for 1 or 2 threads.

Speed: the inner loops are written so that gcc vectorises them (no branches, no ordered float
reduction inside the elementwise pass). With glibc, exp/log/log1p/tanh get libmvec's SIMD
versions (declared below; math.h only declares them under -ffast-math, which would also break
NaN handling), accurate to a few ulp.
"""
cdef extern from *:
    """
    #include <math.h>
    #ifdef GRADKIT_HAVE_MVEC
    #define GK_SIMD __attribute__((__simd__("notinbranch")))
    GK_SIMD float expf(float);
    GK_SIMD double exp(double);
    GK_SIMD float logf(float);
    GK_SIMD double log(double);
    GK_SIMD float log1pf(float);
    GK_SIMD double log1p(double);
    GK_SIMD float tanhf(float);
    GK_SIMD double tanh(double);
    #endif
    """

from cython cimport floating
from cython.parallel cimport prange
from libc cimport math as cmath
from libc.math cimport exp, expf, isinf, log, logf, log1p, log1pf, sqrt, sqrtf, tanhf
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm
cimport openmp

import numpy as np

from gradkit._validation import bce_pred_message

cdef enum:
    # Below this many elements a loop stays on one thread: waking a team costs more than it saves.
    PARALLEL_MIN = 1 << 16
    # Elements per unit of parallel work and per float64 partial sum in the losses. Fixed, so
    # that the split (and hence the rounding) does not depend on the thread count.
    CHUNK = 1 << 13
    # Elements per pass of a loss kernel: per-element values wait in a stack buffer this long
    # before they are summed, so the elementwise loop has no ordered reduction in it.
    BLOCK = 256
    # Elements per block of rows in softmax and cross-entropy (or one row, if longer).
    ROW_BLOCK = 2048

cdef enum Activation:
    ACT_NONE, ACT_RELU, ACT_LEAKY_RELU, ACT_SIGMOID, ACT_TANH

_ACTIVATION_CODES = {"none": ACT_NONE, "relu": ACT_RELU, "leaky_relu": ACT_LEAKY_RELU,
                     "sigmoid": ACT_SIGMOID, "tanh": ACT_TANH}

cdef enum LossKind:
    LOSS_L1, LOSS_MSE, LOSS_BCE, LOSS_BCE_LOGITS


cdef inline bint _parallel(Py_ssize_t work) noexcept nogil:
    return work >= PARALLEL_MIN and openmp.omp_get_max_threads() > 1


cdef inline Py_ssize_t _chunks(Py_ssize_t n) noexcept nogil:
    return (n + CHUNK - 1) // CHUNK


cdef inline Py_ssize_t _chunk_length(Py_ssize_t n, Py_ssize_t start) noexcept nogil:
    return n - start if n - start < CHUNK else CHUNK


# ------------------------------------------------------------- scalar maths in the fused dtype

cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return cmath.tanh(x)


cdef inline floating _sigmoid(floating x) noexcept nogil:
    # e^-|x| never overflows; the two branches are the same function.
    cdef floating one = 1  # typed: a bare 1 is a C double and would promote the float maths
    cdef floating e = _exp(-x if x >= 0 else x)
    # one division with a selected numerator: a branch-free loop (a select between two
    # divisions makes gcc guard each with a test and a jump)
    return (one if x >= 0 else e) / (one + e)


cdef inline floating _activate(floating z, Activation act, floating slope) noexcept nogil:
    if act == ACT_RELU:
        return 0 if z < 0 else z  # NaN passes through, as np.maximum does
    if act == ACT_LEAKY_RELU:
        return z if z > 0 else z * slope
    if act == ACT_SIGMOID:
        return _sigmoid(z)
    if act == ACT_TANH:
        return _tanh(z)
    return z


def _flat(a):
    """A 1-D view of a C-contiguous array (no copy)."""
    return a.reshape(-1)


# ------------------------------------------------------------------------------ GEMM and dense

cdef void _gemm(bint trans_a, bint trans_b, int m, int n, int k, floating alpha,
                const floating* a, const floating* b, floating beta,
                floating* c) noexcept nogil:
    # Row-major c (m, n) = alpha op(a) op(b) + beta c. Column-major BLAS sees every row-major
    # array transposed, so it computes cᵀ = op(b)ᵀ op(a)ᵀ: b goes first, a second.
    # Caller guarantees m, n, k >= 1 (BLAS rejects leading dimensions of 0).
    cdef char op_b = b'T' if trans_b else b'N'
    cdef char op_a = b'T' if trans_a else b'N'
    cdef int ld_b = k if trans_b else n  # row length of b as stored
    cdef int ld_a = m if trans_a else k  # row length of a as stored
    cdef int ld_c = n
    if floating is float:
        sgemm(&op_b, &op_a, &n, &m, &k, &alpha, <float*>b, &ld_b, <float*>a, &ld_a,
              &beta, c, &ld_c)
    else:
        dgemm(&op_b, &op_a, &n, &m, &k, &alpha, <double*>b, &ld_b, <double*>a, &ld_a,
              &beta, c, &ld_c)


def _matmul(const floating[:, ::1] a, const floating[:, ::1] b, floating[:, ::1] out,
            bint trans_a, bint trans_b, bint accumulate):
    cdef int m = out.shape[0], n = out.shape[1]
    cdef int k = a.shape[0] if trans_a else a.shape[1]
    with nogil:
        _gemm(trans_a, trans_b, m, n, k, <floating>1, &a[0, 0], &b[0, 0],
              <floating>(1 if accumulate else 0), &out[0, 0])


def matmul(a, b, trans_a=False, trans_b=False, out=None, accumulate=False):
    m = a.shape[1] if trans_a else a.shape[0]
    k = a.shape[0] if trans_a else a.shape[1]
    n = b.shape[0] if trans_b else b.shape[1]
    if out is None:
        out = np.empty((m, n), dtype=a.dtype)
        accumulate = False
    if m == 0 or n == 0:
        return out
    if k == 0:  # an empty sum
        if not accumulate:
            out[...] = 0
        return out
    _matmul(a, b, out, bool(trans_a), bool(trans_b), bool(accumulate))
    return out


cdef void _activate_chunk(const floating* x, floating* y, Py_ssize_t n, Activation act,
                          floating slope) noexcept nogil:
    # y = act(x), x may be y. One plain loop per activation, so each one vectorises.
    cdef Py_ssize_t i
    if act == ACT_RELU:
        for i in range(n):
            y[i] = _activate(x[i], ACT_RELU, slope)
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            y[i] = _activate(x[i], ACT_LEAKY_RELU, slope)
    elif act == ACT_SIGMOID:
        for i in range(n):
            y[i] = _activate(x[i], ACT_SIGMOID, slope)
    elif act == ACT_TANH:
        for i in range(n):
            y[i] = _activate(x[i], ACT_TANH, slope)
    elif x != y:
        for i in range(n):
            y[i] = x[i]


def _bias_activate(floating[:, ::1] y, const floating[::1] bias, bint has_bias, int act,
                   floating slope):
    # The GEMM epilogue, row by row in place: y = act(y + bias).
    cdef Py_ssize_t rows = y.shape[0], cols = y.shape[1], i, j
    for i in prange(rows, nogil=True, schedule="static", use_threads_if=_parallel(rows * cols)):
        if has_bias:
            for j in range(cols):
                y[i, j] = y[i, j] + bias[j]
        _activate_chunk(&y[i, 0], &y[i, 0], cols, <Activation>act, slope)


def linear(x, w, b, activation="none", slope=0.01):
    y = matmul(x, w, trans_b=True)  # (B, IN) @ (IN, OUT)
    act = _ACTIVATION_CODES[activation]
    if y.size and (b is not None or act != ACT_NONE):
        bias = b if b is not None else np.empty(0, dtype=y.dtype)
        _bias_activate(y, bias, b is not None, act, slope)
    return y


def _column_sums_add(const floating[:, ::1] dy, floating[::1] db):
    # db += dy.sum(0), summed in float64 row after row (fixed order).
    cdef Py_ssize_t rows = dy.shape[0], cols = dy.shape[1], i, j
    cdef double[::1] acc = np.zeros(cols, dtype=np.float64)
    with nogil:
        for i in range(rows):
            for j in range(cols):
                acc[j] += dy[i, j]
        for j in range(cols):
            db[j] = <floating>(db[j] + acc[j])


def linear_backward(dy, x, w, dw, db, need_dx=True):
    matmul(dy, x, trans_a=True, out=dw, accumulate=True)  # (OUT, B) @ (B, IN)
    if db is not None and dy.size:
        _column_sums_add(dy, db)
    return matmul(dy, w) if need_dx else None  # (B, OUT) @ (OUT, IN)


# ------------------------------------------------------------------------------- activations

def _activate_all(const floating[::1] x, floating[::1] y, int act, floating slope):
    cdef Py_ssize_t n = x.shape[0], c, start
    for c in prange(_chunks(n), nogil=True, schedule="static", use_threads_if=_parallel(n)):
        start = c * CHUNK
        _activate_chunk(&x[start], &y[start], _chunk_length(n, start), <Activation>act, slope)


def _unary(x, int act, slope=0.0):
    y = np.empty_like(x)
    if x.size:
        _activate_all(_flat(x), _flat(y), act, slope)
    return y


def relu(x):
    return _unary(x, ACT_RELU)


def leaky_relu(x, slope):
    return _unary(x, ACT_LEAKY_RELU, slope)


def sigmoid(x):
    return _unary(x, ACT_SIGMOID)


def tanh(x):
    return _unary(x, ACT_TANH)


cdef void _derivative_chunk(const floating* dy, const floating* y, floating* dx, Py_ssize_t n,
                            Activation act, floating slope) noexcept nogil:
    # dx = dy * act'(z), written with the forward output y = act(z).
    cdef Py_ssize_t i
    cdef floating one = 1  # typed, see _sigmoid
    if act == ACT_RELU:
        for i in range(n):
            dx[i] = dy[i] if y[i] > 0 else 0
    elif act == ACT_LEAKY_RELU:
        for i in range(n):
            dx[i] = dy[i] if y[i] > 0 else dy[i] * slope
    elif act == ACT_SIGMOID:
        for i in range(n):
            dx[i] = dy[i] * y[i] * (one - y[i])
    else:  # tanh
        for i in range(n):
            dx[i] = dy[i] * (one - y[i] * y[i])


def _derivative_all(const floating[::1] dy, const floating[::1] y, floating[::1] dx, int act,
                    floating slope):
    cdef Py_ssize_t n = y.shape[0], c, start
    for c in prange(_chunks(n), nogil=True, schedule="static", use_threads_if=_parallel(n)):
        start = c * CHUNK
        _derivative_chunk(&dy[start], &y[start], &dx[start], _chunk_length(n, start),
                          <Activation>act, slope)


def _derivative(dy, y, int act, slope=0.0):
    dx = np.empty_like(dy)
    if dy.size:
        _derivative_all(_flat(dy), _flat(y), _flat(dx), act, slope)
    return dx


def relu_backward(dy, y):
    return _derivative(dy, y, ACT_RELU)


def leaky_relu_backward(dy, y, slope):
    return _derivative(dy, y, ACT_LEAKY_RELU, slope)


def sigmoid_backward(dy, y):
    return _derivative(dy, y, ACT_SIGMOID)


def tanh_backward(dy, y):
    return _derivative(dy, y, ACT_TANH)


cdef inline Py_ssize_t _rows_per_block(Py_ssize_t cols) noexcept nogil:
    return ROW_BLOCK // cols if cols < ROW_BLOCK else 1


cdef void _exp_rows(const floating* z, floating* e, floating* top, double* total,
                    Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    # For each row r of z (rows, cols), rows <= ROW_BLOCK: top[r] = max, e = exp(z - top[r]),
    # total[r] = float64 sum of e. The exp is one flat loop over rows * cols elements, so that
    # short rows (10 classes) still run in full vectors instead of vector + scalar tail per row.
    cdef Py_ssize_t r, j, k
    cdef floating m
    cdef double acc
    for r in range(rows):
        m = z[r * cols]
        for j in range(1, cols):
            m = z[r * cols + j] if z[r * cols + j] > m else m
        top[r] = m
        for j in range(cols):
            e[r * cols + j] = z[r * cols + j] - m
    for k in range(rows * cols):
        e[k] = _exp(e[k])
    for r in range(rows):
        acc = 0
        for j in range(cols):
            acc += e[r * cols + j]
        total[r] = acc


cdef void _softmax_block(const floating* x, floating* y, Py_ssize_t rows,
                         Py_ssize_t cols) noexcept nogil:
    cdef floating top[ROW_BLOCK]
    cdef double total[ROW_BLOCK]
    cdef floating s
    cdef Py_ssize_t r, j
    _exp_rows(x, y, top, total, rows, cols)
    for r in range(rows):
        s = <floating>total[r]
        for j in range(cols):
            y[r * cols + j] = y[r * cols + j] / s


def _softmax_rows(const floating[:, ::1] x, floating[:, ::1] y):
    # Fixed blocks of rows (their size depends on the row length only), one block per task.
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1], per = _rows_per_block(cols), b, r0
    for b in prange((rows + per - 1) // per, nogil=True, schedule="static",
                    use_threads_if=_parallel(rows * cols)):
        r0 = b * per
        _softmax_block(&x[r0, 0], &y[r0, 0], rows - r0 if rows - r0 < per else per, cols)


def softmax(x):
    y = np.empty_like(x)
    if x.size:
        _softmax_rows(x, y)
    return y


def _softmax_backward_rows(const floating[:, ::1] dy, const floating[:, ::1] y,
                           floating[:, ::1] dx):
    cdef Py_ssize_t rows = y.shape[0], cols = y.shape[1], i, j
    cdef double dot
    cdef floating s
    for i in prange(rows, nogil=True, schedule="static", use_threads_if=_parallel(rows * cols)):
        dot = 0
        for j in range(cols):
            dot = dot + dy[i, j] * y[i, j]
        s = <floating>dot
        for j in range(cols):
            dx[i, j] = y[i, j] * (dy[i, j] - s)


def softmax_backward(dy, y):
    dx = np.empty_like(dy)
    if dy.size:
        _softmax_backward_rows(dy, y, dx)
    return dx


# ------------------------------------------------------------------------------------ losses
# Each chunk kernel makes one pass over n elements (n <= CHUNK): writes the gradient g (already
# scaled), writes the per-element loss into `per` when it is not NULL (reduction "none"), and
# returns the float64 sum of the per-element losses. The elementwise loop of each BLOCK writes
# its values to memory and _sum_block adds them afterwards: an ordered float64 sum inside the
# loop would keep gcc from vectorising it.

cdef double _sum_block(const floating* v, Py_ssize_t n) noexcept nogil:
    # Float64 sum in a fixed order with 8 independent lanes (two vector registers).
    cdef double acc[8]
    cdef Py_ssize_t i, lane, full = n - n % 8
    for lane in range(8):
        acc[lane] = 0
    for i in range(0, full, 8):
        for lane in range(8):
            acc[lane] += v[i + lane]
    for i in range(full, n):
        acc[0] += v[i]
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef double _l1_chunk(const floating* p, const floating* t, floating* g, floating* per,
                      floating scale, Py_ssize_t n) noexcept nogil:
    cdef floating block[BLOCK]
    cdef floating* v
    cdef floating d
    cdef double total = 0
    cdef Py_ssize_t blk, start, m, i
    for blk in range((n + BLOCK - 1) // BLOCK):
        start = blk * BLOCK
        m = n - start if n - start < BLOCK else BLOCK
        v = per + start if per != NULL else block
        for i in range(m):
            d = p[start + i] - t[start + i]
            v[i] = d if d >= 0 else -d
            # sign(d) * scale; sign(0) = 0 and NaN stays NaN, as np.sign
            g[start + i] = scale if d > 0 else (-scale if d < 0 else d * scale)
        total += _sum_block(v, m)
    return total


cdef double _mse_chunk(const floating* p, const floating* t, floating* g, floating* per,
                       floating factor, floating grad_scale, Py_ssize_t n) noexcept nogil:
    cdef floating block[BLOCK]
    cdef floating* v
    cdef floating d
    cdef double total = 0
    cdef Py_ssize_t blk, start, m, i
    for blk in range((n + BLOCK - 1) // BLOCK):
        start = blk * BLOCK
        m = n - start if n - start < BLOCK else BLOCK
        v = per + start if per != NULL else block
        for i in range(m):
            d = p[start + i] - t[start + i]
            v[i] = factor * d * d
            g[start + i] = d * grad_scale
        total += _sum_block(v, m)
    return total


cdef double _bce_chunk(const floating* p, const floating* t, floating* g, floating* per,
                       floating scale, Py_ssize_t n, int* bad) noexcept nogil:
    # -(y log p + (1 - y) log(1 - p)), each log clamped at -100 as PyTorch does;
    # d/dp = (p - y) / max(p (1 - p), 1e-12). Counts in *bad the p outside [0, 1] or NaN.
    cdef floating block[BLOCK]
    cdef floating* v
    cdef floating q, y, log_p, log_1mp, denom
    cdef floating zero = 0, one = 1, floor = -100, tiny = 1e-12  # typed, see _sigmoid
    cdef double total = 0
    cdef int invalid = 0  # at most CHUNK
    cdef Py_ssize_t blk, start, m, i
    for blk in range((n + BLOCK - 1) // BLOCK):
        start = blk * BLOCK
        m = n - start if n - start < BLOCK else BLOCK
        v = per + start if per != NULL else block
        for i in range(m):
            q = p[start + i]
            y = t[start + i]
            invalid += (q < zero) | (q > one) | (q != q)
            log_p = _log(q)
            log_p = log_p if log_p > floor else floor
            log_1mp = _log1p(-q)
            log_1mp = log_1mp if log_1mp > floor else floor
            v[i] = -(y * log_p + (one - y) * log_1mp)
            denom = q * (one - q)
            denom = denom if denom > tiny else tiny
            g[start + i] = (q - y) / denom * scale
        total += _sum_block(v, m)
    bad[0] = invalid
    return total


cdef inline floating _bce_logits_linear(floating z, floating y) noexcept nogil:
    # max(z, 0) - y z. At z = ±inf that is inf - inf or 0 * inf, so there it is the limit:
    # (1 - y) z for z > 0, -y z for z < 0, and 0 where that coefficient is exactly 0
    # (ops_numpy._bce_logits_linear). Finite z keep the spec's rounding.
    cdef floating zero = 0, one = 1  # typed, see _sigmoid
    cdef floating coef
    if isinf(z):
        coef = one - y if z > zero else -y
        return zero if coef == zero else coef * z
    return (z if z > zero else zero) - y * z  # a NaN z gives NaN through y * z


cdef double _bce_logits_chunk(const floating* z, const floating* t, floating* g, floating* per,
                              floating scale, Py_ssize_t n) noexcept nogil:
    # log(1 + e^z) - y z = max(z, 0) - y z + log1p(e^-|z|): no overflow for any z;
    # d/dz = sigmoid(z) - y, from the same e^-|z|.
    cdef floating block[BLOCK]
    cdef floating* v
    cdef floating x, y, e, s
    cdef floating zero = 0, one = 1  # typed, see _sigmoid
    cdef double total = 0
    cdef Py_ssize_t blk, start, m, i
    for blk in range((n + BLOCK - 1) // BLOCK):
        start = blk * BLOCK
        m = n - start if n - start < BLOCK else BLOCK
        v = per + start if per != NULL else block
        for i in range(m):
            x = z[start + i]
            y = t[start + i]
            e = _exp(-x if x >= 0 else x)
            v[i] = _bce_logits_linear(x, y) + _log1p(e)
            s = (one if x >= zero else e) / (one + e)  # sigmoid(x), see _sigmoid
            g[start + i] = (s - y) * scale
        total += _sum_block(v, m)
    return total


cdef double _elementwise_loss(LossKind kind, const floating* p, const floating* t, floating* g,
                              floating* per, floating a, floating b, Py_ssize_t n,
                              double* partial, int* bad, Py_ssize_t* invalid) noexcept nogil:
    # Runs the chunk kernel of `kind` over fixed chunks (in parallel when large) and adds the
    # chunk partials in chunk order. a, b: the kernel's scalars (scale; or factor, grad scale).
    # partial and bad have one slot per chunk.
    cdef Py_ssize_t chunks = _chunks(n), c, start, length
    cdef floating* per_c
    cdef double total = 0
    for c in prange(chunks, schedule="static", use_threads_if=_parallel(n)):
        start = c * CHUNK
        length = _chunk_length(n, start)
        per_c = per + start if per != NULL else NULL
        bad[c] = 0
        if kind == LOSS_L1:
            partial[c] = _l1_chunk(p + start, t + start, g + start, per_c, a, length)
        elif kind == LOSS_MSE:
            partial[c] = _mse_chunk(p + start, t + start, g + start, per_c, a, b, length)
        elif kind == LOSS_BCE:
            partial[c] = _bce_chunk(p + start, t + start, g + start, per_c, a, length, &bad[c])
        else:
            partial[c] = _bce_logits_chunk(p + start, t + start, g + start, per_c, a, length)
    invalid[0] = 0
    for c in range(chunks):
        total += partial[c]
        invalid[0] += bad[c]
    return total


def _run_loss(int kind, const floating[::1] p, const floating[::1] t, floating[::1] g,
              floating[::1] per, bint want_per, floating a, floating b):
    cdef Py_ssize_t invalid, n = p.shape[0]
    cdef double total
    cdef double[::1] partial = np.empty(_chunks(n), dtype=np.float64)
    cdef int[::1] bad = np.empty(_chunks(n), dtype=np.intc)
    with nogil:
        total = _elementwise_loss(<LossKind>kind, &p[0], &t[0], &g[0],
                                  &per[0] if want_per else NULL, a, b, n, &partial[0], &bad[0],
                                  &invalid)
    if invalid:
        raise ValueError(bce_pred_message(invalid))  # counted in the fused pass
    return total


def _loss(int kind, pred, target, reduction, a, b=0.0):
    grad = np.empty_like(pred)
    per = np.empty_like(pred) if reduction == "none" else grad  # grad: a placeholder, unused
    total = _run_loss(kind, _flat(pred), _flat(target), _flat(grad), _flat(per),
                      reduction == "none", a, b)
    if reduction == "none":
        return per, grad
    return (total / pred.size if reduction == "mean" else total), grad


def _scale(reduction, count):
    return 1.0 / count if reduction == "mean" else 1.0


def l1_loss(pred, target, reduction="mean"):
    return _loss(LOSS_L1, pred, target, reduction, _scale(reduction, pred.size))


def mse_loss(pred, target, reduction="mean", half=False):
    factor = 0.5 if half else 1.0
    return _loss(LOSS_MSE, pred, target, reduction, factor,
                 2.0 * factor * _scale(reduction, pred.size))


def bce_loss(pred, target, reduction="mean"):
    return _loss(LOSS_BCE, pred, target, reduction, _scale(reduction, pred.size))


def bce_with_logits_loss(logits, target, reduction="mean"):
    return _loss(LOSS_BCE_LOGITS, logits, target, reduction, _scale(reduction, logits.size))


cdef void _cross_entropy_block(const floating* z, const int64_t* labels, floating* g,
                               double* per_row, floating scale, Py_ssize_t rows,
                               Py_ssize_t cols) noexcept nogil:
    # Per row: loss = logsumexp(z) - z[label], grad = (softmax(z) - onehot(label)) * scale.
    cdef floating top[ROW_BLOCK]
    cdef double total[ROW_BLOCK]
    cdef floating factor
    cdef Py_ssize_t r, j, label
    _exp_rows(z, g, top, total, rows, cols)  # g = e^(z - max) for now
    for r in range(rows):
        per_row[r] = log(total[r])  # its own loop, so that the logs run in vectors
    for r in range(rows):
        label = labels[r]
        per_row[r] = per_row[r] - (z[r * cols + label] - top[r])
        factor = <floating>(scale / total[r])
        for j in range(cols):
            g[r * cols + j] = g[r * cols + j] * factor
        g[r * cols + label] = g[r * cols + label] - scale


def _cross_entropy_rows(const floating[:, ::1] z, const int64_t[::1] labels,
                        floating[:, ::1] g, double[::1] per_row, floating scale):
    # Row losses land in per_row (float64); the caller sums them in row order.
    cdef Py_ssize_t rows = z.shape[0], cols = z.shape[1], per = _rows_per_block(cols), b, r0
    for b in prange((rows + per - 1) // per, nogil=True, schedule="static",
                    use_threads_if=_parallel(rows * cols)):
        r0 = b * per
        _cross_entropy_block(&z[r0, 0], &labels[r0], &g[r0, 0], &per_row[r0], scale,
                             rows - r0 if rows - r0 < per else per, cols)


def cross_entropy_loss(logits, labels, reduction="mean"):
    batch = logits.shape[0]
    grad = np.empty_like(logits)
    per_row = np.empty(batch, dtype=np.float64)
    _cross_entropy_rows(logits, labels, grad, per_row, _scale(reduction, batch))
    if reduction == "none":
        return per_row.astype(logits.dtype), grad
    total = float(np.add.reduce(per_row))  # fixed order: independent of the thread count
    return (total / batch if reduction == "mean" else total), grad


# --------------------------------------------------------------------------------- optimiser

cdef void _sgd_chunk(floating* param, const floating* grad, floating* buf, Py_ssize_t n,
                     floating lr, floating momentum, floating keep, bint nesterov,
                     floating weight_decay, bint first) noexcept nogil:
    # keep = 1 - dampening; buf is NULL without momentum. The same operations, in the same
    # dtype, as ops_numpy.sgd_step.
    cdef Py_ssize_t i
    cdef floating g, v
    if buf == NULL:
        for i in range(n):
            g = grad[i] + weight_decay * param[i] if weight_decay != 0 else grad[i]
            param[i] = param[i] - lr * g
        return
    for i in range(n):
        g = grad[i] + weight_decay * param[i] if weight_decay != 0 else grad[i]
        v = g if first else momentum * buf[i] + keep * g
        buf[i] = v
        g = g + momentum * v if nesterov else v
        param[i] = param[i] - lr * g


def _sgd(floating[::1] param, const floating[::1] grad, floating[::1] buf, bint has_buf,
         floating lr, floating momentum, floating keep, bint nesterov, floating weight_decay,
         bint first):
    cdef Py_ssize_t n = param.shape[0], c, start
    for c in prange(_chunks(n), nogil=True, schedule="static", use_threads_if=_parallel(n)):
        start = c * CHUNK
        _sgd_chunk(&param[start], &grad[start], &buf[start] if has_buf else NULL,
                   _chunk_length(n, start), lr, momentum, keep, nesterov, weight_decay, first)


def sgd_step(param, grad, buf, lr, momentum, dampening, nesterov, weight_decay, first):
    if param.size == 0:
        return None
    has_buf = momentum != 0
    _sgd(_flat(param), _flat(grad), _flat(buf if has_buf else param), has_buf, lr, momentum,
         1.0 - dampening, bool(nesterov), weight_decay, bool(first))
    return None


# ---------------------------------------------------------------------- optimiser: Adam / AdamW

cdef struct AdamCoeffs:
    # The step's scalars in float64; each chunk rounds them once to its dtype.
    double beta1, keep1, beta2, keep2, step_size, bc2_sqrt, eps, weight_decay, decay_factor
    bint coupled, decoupled


cdef inline floating _root(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void _adam_chunk(floating* param, const floating* grad, floating* m, floating* v,
                      floating* vmax, Py_ssize_t n, AdamCoeffs c) noexcept nogil:
    # vmax is NULL without amsgrad. The same operations, in the same dtype, as
    # ops_numpy.adam_step.
    cdef floating beta1 = <floating>c.beta1, keep1 = <floating>c.keep1
    cdef floating beta2 = <floating>c.beta2, keep2 = <floating>c.keep2
    cdef floating step_size = <floating>c.step_size, bc2_sqrt = <floating>c.bc2_sqrt
    cdef floating eps = <floating>c.eps, wd = <floating>c.weight_decay
    cdef floating decay = <floating>c.decay_factor
    cdef floating g, mi, vi
    cdef Py_ssize_t i
    for i in range(n):
        if c.decoupled:
            param[i] = param[i] * decay
        g = grad[i] + wd * param[i] if c.coupled else grad[i]
        mi = beta1 * m[i] + keep1 * g
        vi = beta2 * v[i] + keep2 * (g * g)
        m[i] = mi
        v[i] = vi
        if vmax != NULL:
            if vmax[i] > vi:
                vi = vmax[i]
            vmax[i] = vi
        param[i] = param[i] - step_size * mi / (_root(vi) / bc2_sqrt + eps)


def _adam(floating[::1] param, const floating[::1] grad, floating[::1] m, floating[::1] v,
          floating[::1] vmax, bint amsgrad, double lr, double beta1, double beta2, double eps,
          double weight_decay, double step, bint decoupled):
    cdef AdamCoeffs c
    c.beta1, c.keep1 = beta1, 1.0 - beta1
    c.beta2, c.keep2 = beta2, 1.0 - beta2
    c.step_size = lr / (1.0 - beta1 ** step)
    c.bc2_sqrt = sqrt(1.0 - beta2 ** step)
    c.eps, c.weight_decay, c.decay_factor = eps, weight_decay, 1.0 - lr * weight_decay
    c.coupled = not decoupled and weight_decay != 0
    c.decoupled = decoupled and weight_decay != 0
    cdef Py_ssize_t n = param.shape[0], ch, start
    for ch in prange(_chunks(n), nogil=True, schedule="static", use_threads_if=_parallel(n)):
        start = ch * CHUNK
        _adam_chunk(&param[start], &grad[start], &m[start], &v[start],
                    &vmax[start] if amsgrad else NULL, _chunk_length(n, start), c)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, decoupled):
    if param.size == 0:
        return None
    _adam(_flat(param), _flat(grad), _flat(exp_avg), _flat(exp_avg_sq),
          _flat(max_exp_avg_sq if amsgrad else param), bool(amsgrad), lr, beta1, beta2, eps,
          weight_decay, float(step), bool(decoupled))
    return None

# ------------------------------------------------------------------------- k-means (Lloyd)
# scikit-learn's way (_k_means_lloyd.pyx): for blocks of KM_BLOCK rows one GEMM gives X_b Cᵀ,
# then per row the first argmin of ||c||² - 2 x.c and the weighted sums. The rows are cut into
# KM_PARTS fixed parts (fewer for small n), each with its own float64 sums, added in part order
# by numpy afterwards: bitwise the same for any thread count. k-means++, the variance and the
# inertia from the differences are the NumPy reference's (gradkit.backends.ops_numpy).

from libc.stdlib cimport malloc, free
from gradkit.backends import ops_numpy as _kmeans_ref

cdef enum:
    KM_BLOCK = 256   # rows per GEMM: the (KM_BLOCK, k) products stay in L2, as in scikit-learn
    KM_PARTS = 16    # fixed parts of the rows, each with its own partial sums


cdef void _kmeans_block(const floating* X, const floating* w, bint has_w, const floating* C,
                        const floating* cnorm, Py_ssize_t start, Py_ssize_t rows, Py_ssize_t d,
                        Py_ssize_t k, floating* dots, int* labels, bint update, double* sums,
                        double* weight, double* stats) noexcept nogil:
    # stats (2,) INOUT: [inertia, changed labels]
    cdef Py_ssize_t r, j, p, i, arg
    cdef floating best, v
    cdef double wi, xx
    _gemm(False, True, <int>rows, <int>k, <int>d, <floating>1.0, X + start * d, C,
          <floating>0.0, dots)
    for r in range(rows):
        best = cmath.INFINITY
        arg = 0
        for j in range(k):
            v = cnorm[j] - 2 * dots[r * k + j]
            if v < best:
                best = v
                arg = j
        i = start + r
        if labels[i] != arg:
            stats[1] += 1
        labels[i] = <int>arg
        wi = w[i] if has_w else 1.0
        xx = 0
        for p in range(d):
            xx = xx + <double>X[i * d + p] * X[i * d + p]
        stats[0] += wi * (xx + best if xx + best > 0 else 0.0)
        if update:
            weight[arg] += wi
            for p in range(d):
                sums[arg * d + p] += wi * X[i * d + p]


def _kmeans_pass(const floating[:, ::1] X, const floating[::1] w, bint has_w,
                 const floating[:, ::1] C, const floating[::1] cnorm, int[::1] labels,
                 double[:, :, ::1] sums,
                 double[:, ::1] weight, double[:, ::1] stats, bint update, int n_threads):
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = C.shape[0]
    cdef Py_ssize_t parts = stats.shape[0], part, lo, hi, s
    cdef floating* dots
    for part in prange(parts, nogil=True, schedule="static", num_threads=n_threads,
                       use_threads_if=_parallel(n * k)):
        lo = part * n // parts
        hi = (part + 1) * n // parts
        dots = <floating*>malloc(KM_BLOCK * k * sizeof(floating))
        s = lo
        while s < hi:
            _kmeans_block(&X[0, 0], &w[0], has_w, &C[0, 0], &cnorm[0], s,
                          min(<Py_ssize_t>KM_BLOCK, hi - s), d, k, dots, &labels[0], update,
                          &sums[part, 0, 0], &weight[part, 0], &stats[part, 0])
            s = s + KM_BLOCK
        free(dots)


def _kmeans_run(X, sample_weight, centers, labels, update, n_threads):
    n, d = X.shape
    k = centers.shape[0]
    parts = max(1, min(KM_PARTS, n // KM_BLOCK))
    has_w = sample_weight is not None
    w = sample_weight if has_w else np.ones(1, dtype=X.dtype)
    sums = np.zeros((parts, k, d) if update else (parts, 1, 1))
    weight = np.zeros((parts, k) if update else (parts, 1))
    stats = np.zeros((parts, 2))
    C = np.ascontiguousarray(centers, dtype=X.dtype)
    _kmeans_pass(X, w, has_w, C, np.einsum("ij,ij->i", C, C), labels, sums, weight, stats,
                 update, max(1, int(n_threads)))
    total = np.zeros_like(sums[0])
    wtotal = np.zeros_like(weight[0])
    for part in range(parts):  # in part order
        total += sums[part]
        wtotal += weight[part]
    return total, wtotal, float(stats[:, 0].sum()), int(stats[:, 1].sum())


def kmeans_lloyd_step(X, sample_weight, centers, labels, n_threads=1):
    sums, weight, inertia, n_changed = _kmeans_run(X, sample_weight, centers, labels, True,
                                                   n_threads)
    w = _kmeans_ref._kmeans_weights(sample_weight, X.shape[0])
    _kmeans_ref._kmeans_relocate_empty(sums, weight, X, w, centers, labels)
    centers_new, shift = _kmeans_ref._kmeans_centers_from_sums(sums, weight, centers)
    return centers_new, n_changed, shift, inertia


def kmeans_assign(X, sample_weight, centers, n_threads=1):
    labels = np.full(X.shape[0], -1, dtype=np.int32)
    _, _, inertia, _ = _kmeans_run(X, sample_weight, centers, labels, False, n_threads)
    return labels, inertia


def kmeans_inertia(X, sample_weight, centers, labels, n_threads=1):
    return _kmeans_ref.kmeans_inertia(X, sample_weight, centers, labels, n_threads)


def kmeans_lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads=1):
    return _kmeans_ref.kmeans_lloyd_loop(kmeans_lloyd_step, kmeans_assign, kmeans_inertia, X,
                                         sample_weight, centers_init, max_iter, tol, n_threads)


def kmeans_mean_variance(X, n_threads=1):
    return _kmeans_ref.kmeans_mean_variance(X, n_threads)


def kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms, n_threads=1):
    return _kmeans_ref.kmeans_plusplus(X, sample_weight, n_clusters, n_local_trials, uniforms,
                                       n_threads)

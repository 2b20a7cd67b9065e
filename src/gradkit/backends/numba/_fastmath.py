"""exp, log and log1p for the kernels: float32 polynomials, float64 from libm.

np.exp/np.log are libm calls in Numba (no SVML here), which keeps every loop scalar. For float32
these polynomials (the same as csrc/kernels/fastmath.hpp, ~2 ulp) inline and let LLVM
vectorise; float64 keeps np.exp/np.log. ``exp``/``log``/``log1p`` pick by type at compile time.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from gradkit.backends.numba._jit import kernel


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


@kernel
def _exp32(x):
    hi = np.float32(88.7228)
    lo = np.float32(-87.33654)
    xc = min(max(x, lo), hi)
    big = np.float32(12582912.0)  # 1.5 * 2^23: adding it rounds to an integer
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
    # 2^n as two factors, so that n = 128 (x near the top of the range) does not overflow
    ni = np.int32(n)
    n1 = ni >> np.int32(1)
    s1 = _as_float32((n1 + np.int32(127)) << np.int32(23))
    s2 = _as_float32((ni - n1 + np.int32(127)) << np.int32(23))
    y = p * s1 * s2
    y = np.float32(0.0) if x < lo else y
    y = np.float32(np.inf) if x > hi else y
    return x if x != x else y


@kernel
def _log32(x):
    tiny = x < np.float32(1.17549435e-38)  # denormal: scale by 2^23 first
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


@kernel
def _log1p32(x):
    u = np.float32(1.0) + x
    d = u - np.float32(1.0)
    return x if d == np.float32(0.0) else _log32(u) * (x / d)


def exp(x):
    return np.exp(x)


def log(x):
    return np.log(x)


def log1p(x):
    return np.log1p(x)


@overload(exp)
def _exp_impl(x):
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: np.exp(x)


@overload(log)
def _log_impl(x):
    if x == types.float32:
        return lambda x: _log32(x)
    return lambda x: np.log(x)


@overload(log1p)
def _log1p_impl(x):
    if x == types.float32:
        return lambda x: _log1p32(x)
    return lambda x: np.log1p(x)

"""gradkit's GEMM (gk::gemm through _core) and the dense layer built on it.

The packed kernels are checked against float64 NumPy products with an error bound that scales
with K (a summation-order bound, so a wrong tile or a dropped K slice fails it), for every
micro-kernel this machine can run (forced with _core.force_isa), both dtypes and all layouts.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradkit import _core, backends
from gradkit.backends import ops_numpy

ISAS = ["avx512", "avx2", "portable"]
RANK = {name: i for i, name in enumerate(reversed(ISAS))}
LAYOUTS = {"NN": (False, False), "NT": (False, True), "TN": (True, False), "TT": (True, True)}
# (M, N, K): ones, odd edges, K = 1, vectors, non-square, sizes crossing the K, M and N blocks.
SHAPES = [(1, 1, 1), (1, 7, 33), (7, 1, 33), (7, 33, 257), (33, 7, 5), (16, 16, 16), (64, 64, 1),
          (1, 300, 257), (300, 1, 257), (3, 600, 70), (257, 129, 300), (97, 4500, 40),
          (1024, 1024, 260)]
EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}
ACTS = ["none", "relu", "leaky_relu", "sigmoid", "tanh"]


@pytest.fixture(params=ISAS)
def isa(request):
    """Run on one micro-kernel; restore the ISA in use afterwards."""
    name = request.param
    if RANK[name] > RANK[_core.detected_isa()]:
        pytest.skip(f"this CPU/build has no {name}")
    before = _core.active_isa()
    _core.force_isa(name)
    assert _core.active_isa() == name
    yield name
    _core.force_isa(before)


@pytest.fixture
def threads():
    """Restore the thread count a test changes."""
    before = gk.get_num_threads()
    yield
    gk.set_num_threads(before)


def _operands(rng, dtype, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    return a, b


def _ref(a, b, trans_a, trans_b):
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    return (a64.T if trans_a else a64), (b64.T if trans_b else b64)


def _assert_close(got, ref, abs_product, k, dtype):
    # Each element is a sum of k products: its rounding error is at most ~k eps sum|a||b|.
    bound = 2 * max(k, 1) * EPS[dtype] * abs_product + np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - ref)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert np.all(err <= bound), f"error {err[worst]} > bound {bound[worst]} at {worst}"


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matmul_matches_float64_reference(isa, dtype, layout, shape, rng):
    m, n, k = shape
    trans_a, trans_b = LAYOUTS[layout]
    a, b = _operands(rng, dtype, m, n, k, trans_a, trans_b)
    out = np.full((m, n), np.nan, dtype=dtype)  # every element must be written
    got = _core.matmul(a, b, trans_a, trans_b, out, False)
    assert got is out or np.shares_memory(got, out)
    opa, opb = _ref(a, b, trans_a, trans_b)
    _assert_close(out, opa @ opb, np.abs(opa) @ np.abs(opb), k, dtype)


@pytest.mark.parametrize("layout", ["NN", "NT", "TN"])
def test_matmul_1024_cube(dtype, layout, rng):
    """The largest case once per layout, on the ISA in use (the grid above covers every ISA)."""
    trans_a, trans_b = LAYOUTS[layout]
    a, b = _operands(rng, dtype, 1024, 1024, 1024, trans_a, trans_b)
    out = np.empty((1024, 1024), dtype=dtype)
    _core.matmul(a, b, trans_a, trans_b, out, False)
    opa, opb = _ref(a, b, trans_a, trans_b)
    _assert_close(out, opa @ opb, np.abs(opa) @ np.abs(opb), 1024, dtype)


@pytest.mark.parametrize("shape", [(5, 9, 3), (33, 47, 300), (200, 70, 600)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["NN", "TN"])
def test_matmul_accumulate_adds_to_out(isa, dtype, layout, shape, rng):
    m, n, k = shape
    trans_a, trans_b = LAYOUTS[layout]
    a, b = _operands(rng, dtype, m, n, k, trans_a, trans_b)
    start = rng.standard_normal((m, n)).astype(dtype)
    out = start.copy()
    _core.matmul(a, b, trans_a, trans_b, out, True)
    opa, opb = _ref(a, b, trans_a, trans_b)
    ref = opa @ opb + start.astype(np.float64)
    _assert_close(out, ref, np.abs(opa) @ np.abs(opb) + np.abs(start), k + 1, dtype)


def _linear_ref(x, w, bias, activation, slope):
    z = x.astype(np.float64) @ w.astype(np.float64).T
    if bias is not None:
        z += bias
    return ops_numpy._activate(z, activation, slope)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("shape", [(1, 10, 784), (7, 33, 5), (64, 128, 300), (130, 65, 33)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_linear_fused_epilogue(isa, dtype, activation, shape, with_bias, rng):
    batch, out_f, in_f = shape
    x = rng.standard_normal((batch, in_f)).astype(dtype)
    w = (rng.standard_normal((out_f, in_f)) / np.sqrt(in_f)).astype(dtype)
    bias = rng.standard_normal(out_f).astype(dtype) if with_bias else None
    slope = 0.2
    y = _core.linear(x, w, bias, activation, slope)
    assert y.dtype == dtype and y.shape == (batch, out_f)
    ref = _linear_ref(x, w, bias, activation, slope)
    # Every activation here is 1-Lipschitz (slope < 1), so the GEMM bound carries over.
    bound_src = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T
    if bias is not None:
        bound_src += np.abs(bias)
    _assert_close(y, ref, bound_src + np.abs(ref), in_f + 2, dtype)


def test_linear_leaky_slope_above_one(rng):
    x = rng.standard_normal((40, 50)).astype(np.float32)
    w = rng.standard_normal((64, 50)).astype(np.float32)
    y = _core.linear(x, w, None, "leaky_relu", 3.0)
    ref = _linear_ref(x, w, None, "leaky_relu", 3.0)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


# Threads split N (first three), M (700x40) or the columns of the few-rows path (2x3000).
THREAD_SHAPES = [(300, 517, 260), (1024, 1024, 1024), (8, 2000, 700), (700, 40, 300),
                 (2, 3000, 900)]


@pytest.mark.parametrize("shape", THREAD_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", ["NN", "NT", "TN"])
def test_same_bits_for_one_and_two_threads(threads, dtype, layout, shape, rng):
    m, n, k = shape
    trans_a, trans_b = LAYOUTS[layout]
    a, b = _operands(rng, dtype, m, n, k, trans_a, trans_b)
    bias = rng.standard_normal(n).astype(dtype)
    results = []
    for n_threads in (1, 2):
        gk.set_num_threads(n_threads)
        out = np.empty((m, n), dtype=dtype)
        _core.matmul(a, b, trans_a, trans_b, out, False)
        results.append(out)
        if layout == "NT":
            results.append(_core.linear(a, b, bias, "tanh", 0.01))
    for one, two in zip(results[: len(results) // 2], results[len(results) // 2:]):
        assert np.array_equal(one.view(np.uint8), two.view(np.uint8))


def test_core_refuses_silent_copies(rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    b = rng.standard_normal((5, 6)).astype(np.float32)
    with pytest.raises(TypeError):  # out of another dtype would be a converted copy
        _core.matmul(a, b, False, False, np.empty((4, 6), np.float64), False)
    with pytest.raises(TypeError):  # a non-contiguous out would be a copy
        _core.matmul(a, b, False, False, np.empty((6, 4), np.float32).T, False)
    with pytest.raises(ValueError, match="rows of out"):
        _core.matmul(a, b, False, False, np.empty((3, 6), np.float32), False)
    with pytest.raises(ValueError, match="inner dimension"):
        _core.matmul(a, b, False, True, np.empty((4, 5), np.float32), False)
    with pytest.raises(ValueError, match="activation must be one of"):
        _core.linear(a, b.T.copy(), None, "gelu", 0.01)


# ---- public API through the selected backend ---------------------------------------------------


def _backend_or_skip(backend, name="linear"):
    if not hasattr(backends.load(backend), name):
        pytest.skip(f"backend {backend!r} has no {name} yet")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_functional_matmul_every_backend(backend, dtype, layout, rng):
    _backend_or_skip(backend, "matmul")
    trans_a, trans_b = LAYOUTS[layout]
    a, b = _operands(rng, dtype, 37, 29, 41, trans_a, trans_b)
    got = gk.functional.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    opa, opb = _ref(a, b, trans_a, trans_b)
    assert got.dtype == dtype
    _assert_close(got, opa @ opb, np.abs(opa) @ np.abs(opb), 41, dtype)


def test_functional_linear_and_backward_every_backend(backend, dtype, rng):
    _backend_or_skip(backend)
    x = rng.standard_normal((19, 23)).astype(dtype)
    w = rng.standard_normal((11, 23)).astype(dtype)
    bias = rng.standard_normal(11).astype(dtype)
    dy = rng.standard_normal((19, 11)).astype(dtype)
    y = gk.functional.linear(x, w, bias, activation="relu")
    np.testing.assert_allclose(y, _linear_ref(x, w, bias, "relu", 0.01), rtol=1e-4, atol=1e-4)
    dx, dw, db = gk.functional.linear_backward(dy, x, w)
    x64, w64, dy64 = (v.astype(np.float64) for v in (x, w, dy))
    np.testing.assert_allclose(dx, dy64 @ w64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, dy64.T @ x64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, dy64.sum(0), rtol=1e-4, atol=1e-4)
    none_dx, _, none_db = gk.functional.linear_backward(dy, x, w, bias=False, need_dx=False)
    assert none_dx is None and none_db is None


def test_backend_linear_backward_accumulates(backend, rng):
    _backend_or_skip(backend)
    ops = backends.load(backend)
    x = rng.standard_normal((6, 4))
    w = rng.standard_normal((3, 4))
    dy = rng.standard_normal((6, 3))
    dw = np.ones((3, 4))
    db = np.full(3, 2.0)
    dx = ops.linear_backward(dy, x, w, dw, db, True)
    np.testing.assert_allclose(dw, 1 + dy.T @ x, rtol=1e-12)
    np.testing.assert_allclose(db, 2 + dy.sum(0), rtol=1e-12)
    np.testing.assert_allclose(dx, dy @ w, rtol=1e-12)
    assert ops.linear_backward(dy, x, w, dw, None, False) is None


@pytest.mark.parametrize("activation", ["none", "tanh"])
def test_linear_backward_gradient_check(backend, activation, rng):
    """dx, dW, db of L = sum(g * act(x Wᵀ + b)) against float64 central differences."""
    _backend_or_skip(backend)
    x = rng.standard_normal((5, 4))
    w = rng.standard_normal((3, 4))
    bias = rng.standard_normal(3)
    g = rng.standard_normal((5, 3))  # dL/dy

    def loss(x_, w_, b_):
        return float(np.sum(g * gk.functional.linear(x_, w_, b_, activation=activation)))

    y = gk.functional.linear(x, w, bias, activation=activation)
    dz = g * (1 - y * y) if activation == "tanh" else g  # through the activation
    dx, dw, db = gk.functional.linear_backward(dz, x, w)

    def numeric(which):
        args = [x, w, bias]
        base = args[which]
        grad = np.zeros_like(base)
        h = 1e-6
        for idx in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += h
            minus[idx] -= h
            args_p = list(args)
            args_m = list(args)
            args_p[which], args_m[which] = plus, minus
            grad[idx] = (loss(*args_p) - loss(*args_m)) / (2 * h)
        return grad

    np.testing.assert_allclose(dx, numeric(0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dw, numeric(1), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, numeric(2), rtol=1e-6, atol=1e-8)


BAD_DTYPES = [np.int64, np.bool_, np.complex128, object]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_functional_rejects_non_float_dtypes(bad):
    good = np.ones((3, 4))
    bad_arr = np.ones((3, 4), dtype=bad)
    with pytest.raises(TypeError, match="^a must have dtype float32 or float64"):
        gk.functional.matmul(bad_arr, good.T)
    with pytest.raises(TypeError, match="^b must have dtype float32 or float64"):
        gk.functional.matmul(good, bad_arr.T)
    with pytest.raises(TypeError, match="^x must have dtype"):
        gk.functional.linear(bad_arr, good)
    with pytest.raises(TypeError, match="^weight must have dtype"):
        gk.functional.linear(good, bad_arr)
    with pytest.raises(TypeError, match="^bias must have dtype"):
        gk.functional.linear(good, good, np.ones(3, dtype=bad))
    with pytest.raises(TypeError, match="^dy must have dtype"):
        gk.functional.linear_backward(bad_arr[:, :3], good, good)


def test_functional_rejects_bad_shapes():
    m = np.ones((3, 4))
    with pytest.raises(ValueError, match="^a must be 2-D"):
        gk.functional.matmul(np.ones(4), m)
    with pytest.raises(ValueError, match="^b must be 2-D"):
        gk.functional.matmul(m, np.ones((4, 2, 1)))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gk.functional.matmul(m, np.ones((3, 2)))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        gk.functional.matmul(m, np.ones((4, 2)), trans_a=True)
    with pytest.raises(ValueError, match="^x must be 2-D"):
        gk.functional.linear(np.ones(4), m)
    with pytest.raises(ValueError, match="^x has 5 features but weight expects 4"):
        gk.functional.linear(np.ones((2, 5)), m)
    with pytest.raises(ValueError, match="^bias has 2 entries"):
        gk.functional.linear(np.ones((2, 4)), m, np.ones(2))
    with pytest.raises(ValueError, match="^bias must be 1-D"):
        gk.functional.linear(np.ones((2, 4)), m, np.ones((3, 1)))
    with pytest.raises(ValueError, match="^activation='gelu' must be one of"):
        gk.functional.linear(np.ones((2, 4)), m, activation="gelu")
    with pytest.raises(ValueError, match="^slope=-1.0 must be >= 0"):
        gk.functional.linear(np.ones((2, 4)), m, activation="leaky_relu", slope=-1.0)
    with pytest.raises(ValueError, match="^dy must have shape"):
        gk.functional.linear_backward(np.ones((2, 4)), np.ones((2, 4)), m)
    with pytest.raises(ValueError, match="^dy must be 2-D"):
        gk.functional.linear_backward(np.ones(3), np.ones((2, 4)), m)
    with pytest.raises(TypeError, match="^x must be a numpy array"):
        gk.functional.linear("not an array", m)


def _sysfs_cache(level, kind):
    from pathlib import Path
    for d in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if int((d / "level").read_text()) == level and (d / "type").read_text().strip() in kind:
                size = (d / "size").read_text().strip()
                return int(size[:-1]) * (1024 if size.endswith("K") else 1 << 20)
        except (OSError, ValueError):
            return None
    return None


def test_cpu_info_reads_the_caches_of_this_machine():
    """The blocking of the GEMM comes from these sizes: they must be the machine's, not assumed."""
    from gradkit import _core
    info = _core.cpu_info()
    assert 0 < info["l1d_bytes"] <= info["l2_bytes"]
    assert info["l3_bytes"] == 0 or info["l2_bytes"] <= info["l3_bytes"]
    assert info["vector_bits"] == {"avx512": 512, "avx2": 256, "portable": 128}[_core.active_isa()]
    l1, l2 = _sysfs_cache(1, ("Data",)), _sysfs_cache(2, ("Unified", "Data"))
    if l1 is None or l2 is None:
        pytest.skip("no cache description in sysfs to compare with")
    assert info["cache_source"] in ("cpuid", "sysfs")
    assert (info["l1d_bytes"], info["l2_bytes"]) == (l1, l2)


def test_show_config_prints_the_caches(capsys):
    gk.show_config()
    out = capsys.readouterr().out
    info = gk.config()
    for key in ("l1d_cache", "l2_cache", "l3_cache", "vector_bits"):
        assert key in info and key in out

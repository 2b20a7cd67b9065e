"""Fused losses: every backend against ops_numpy for all reductions, gradients against central
differences, PyTorch as an oracle, thread-count determinism, and entry-point validation."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradcheck import central_differences
from gradkit import backends
from gradkit._validation import ConversionWarning
from gradkit.backends import ops_numpy
from tests.conftest import TOL

F = gk.functional
SIZES = [1, 7, 33, 257, 1024]
REDUCTIONS = ["mean", "sum", "none"]
PAIR_LOSSES = ["l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss"]


def _need(backend, name):
    if not hasattr(backends.load(backend), name):
        pytest.skip(f"backend {backend!r} has no {name} yet")


def _inputs(name, rng, shape, dtype):
    """(pred, target) in the domain of each loss."""
    if name == "bce_loss":
        pred = rng.uniform(0.001, 0.999, shape)
        target = rng.uniform(0, 1, shape)
    elif name == "bce_with_logits_loss":
        pred = rng.standard_normal(shape) * 4
        target = rng.uniform(0, 1, shape)
    else:
        pred = rng.standard_normal(shape)
        target = rng.standard_normal(shape)
    return pred.astype(dtype), target.astype(dtype)


def _assert_value(value, ref, reduction, dtype):
    if reduction == "none":
        assert isinstance(value, np.ndarray) and value.dtype == dtype
        np.testing.assert_allclose(value, ref, **TOL[dtype])
    else:
        assert isinstance(value, float)
        np.testing.assert_allclose(value, ref, **TOL[dtype])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", PAIR_LOSSES)
@pytest.mark.parametrize("n", SIZES)
def test_pair_losses_match_numpy(backend, dtype, rng, name, n, reduction):
    _need(backend, name)
    pred, target = _inputs(name, rng, (n, 2), dtype)
    value, grad = getattr(F, name)(pred, target, reduction=reduction)
    ref_value, ref_grad = getattr(ops_numpy, name)(pred, target, reduction)
    _assert_value(value, ref_value, reduction, dtype)
    assert grad.dtype == dtype and grad.shape == pred.shape
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("batch,classes", [(1, 1), (1, 7), (33, 10), (257, 3), (7, 1024),
                                           (40, 32), (40, 33)])
def test_cross_entropy_matches_numpy(backend, dtype, rng, batch, classes, reduction):
    _need(backend, "cross_entropy_loss")
    logits = (rng.standard_normal((batch, classes)) * 3).astype(dtype)
    labels = rng.integers(0, classes, batch)
    value, grad = F.cross_entropy_loss(logits, labels, reduction=reduction)
    ref_value, ref_grad = ops_numpy.cross_entropy_loss(logits, labels, reduction)
    _assert_value(value, ref_value, reduction, dtype)
    if reduction == "none":
        assert value.shape == (batch,)
    np.testing.assert_allclose(grad, ref_grad, **TOL[dtype])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_half_mse_is_half_of_mse(backend, dtype, rng, reduction):
    _need(backend, "mse_loss")
    pred, target = _inputs("mse_loss", rng, (257,), dtype)
    value, grad = F.mse_loss(pred, target, reduction=reduction)
    half_value, half_grad = F.mse_loss(pred, target, reduction=reduction, half=True)
    np.testing.assert_allclose(half_value, 0.5 * np.asarray(value), **TOL[dtype])
    np.testing.assert_allclose(half_grad, 0.5 * grad, **TOL[dtype])
    ref_value, ref_grad = ops_numpy.mse_loss(pred, target, reduction, True)
    _assert_value(half_value, ref_value, reduction, dtype)
    # the course's 1/(2m) form: gradient (p - y) / m
    if reduction == "mean":
        np.testing.assert_allclose(half_grad, (pred - target) / pred.size, **TOL[dtype])


def test_bce_at_zero_and_one_is_finite(backend, dtype):
    _need(backend, "bce_loss")
    pred = np.array([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    target = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    per, grad = F.bce_loss(pred, target, reduction="none")
    assert np.all(np.isfinite(per)) and np.all(np.isfinite(grad))
    # right answers cost nothing, wrong ones hit the clamp: -log(0) -> 100
    np.testing.assert_allclose(per, [0.0, 0.0, 100.0, 100.0], atol=1e-6)
    value, _ = F.bce_loss(pred, target, reduction="mean")
    assert value == pytest.approx(50.0)


def test_bce_with_logits_at_200_is_finite_and_right(backend, dtype):
    _need(backend, "bce_with_logits_loss")
    z = np.array([200.0, -200.0, 200.0, -200.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    per, grad = F.bce_with_logits_loss(z, y, reduction="none")
    np.testing.assert_allclose(per, [0.0, 0.0, 200.0, 200.0], atol=1e-6)
    np.testing.assert_allclose(grad, [0.0, 0.0, 1.0, -1.0], atol=1e-12)


# z = ±inf with y = 0, 1/2, 1: the loss is its limit, (1 - y) z or -y z with a zero coefficient
# giving 0 (never inf - inf = NaN), and the gradient sigmoid(z) - y.
INF_Z = [np.inf, np.inf, np.inf, -np.inf, -np.inf, -np.inf]
INF_Y = [0.0, 0.5, 1.0, 0.0, 0.5, 1.0]
INF_LOSS = [np.inf, np.inf, 0.0, 0.0, np.inf, np.inf]
INF_GRAD = [1.0, 0.5, 0.0, 0.0, -0.5, -1.0]


def _check_bce_with_logits_at_inf(dtype):
    # 7 copies of the 6 cases: 42 elements fill whole SIMD vectors and leave a ragged tail.
    copies = 7
    z = np.tile(np.array(INF_Z, dtype), copies)
    y = np.tile(np.array(INF_Y, dtype), copies)
    per, grad = F.bce_with_logits_loss(z, y, reduction="none")
    np.testing.assert_array_equal(per, np.tile(INF_LOSS, copies))
    np.testing.assert_array_equal(grad, np.tile(INF_GRAD, copies))
    value, grad = F.bce_with_logits_loss(z, y, reduction="mean")
    assert value == np.inf
    np.testing.assert_array_equal(grad, np.tile(INF_GRAD, copies) * dtype(1 / z.size))
    # the two cases whose limit is 0, alone: the mean is exactly 0
    value, _ = F.bce_with_logits_loss(z[2:4].copy(), y[2:4].copy(), reduction="mean")
    assert value == 0.0
    # NaN in either input stays NaN, also at z = ±inf
    z = np.array([np.nan, np.nan, np.inf, -np.inf, 1.0], dtype)
    y = np.array([0.5, 1.0, np.nan, np.nan, np.nan], dtype)
    per, grad = F.bce_with_logits_loss(z, y, reduction="none")
    assert np.isnan(per).all() and np.isnan(grad).all()
    value, grad = F.bce_with_logits_loss(z, y, reduction="mean")
    assert np.isnan(value) and np.isnan(grad).all()


def test_bce_with_logits_at_inf_is_its_limit(backend, dtype):
    _need(backend, "bce_with_logits_loss")
    _check_bce_with_logits_at_inf(dtype)


def test_bce_with_logits_at_inf_on_each_isa(forced_isa, dtype):
    with gk.use_backend("cpp"):
        _check_bce_with_logits_at_inf(dtype)


def test_cross_entropy_with_large_logits(backend, dtype):
    _need(backend, "cross_entropy_loss")
    logits = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]], dtype=dtype)
    labels = np.array([1, 0])
    per, grad = F.cross_entropy_loss(logits, labels, reduction="none")
    assert np.all(np.isfinite(per)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(per, [1e4, np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0], [-0.5, 0.5, 0.0]], atol=1e-6)


# ------------------------------------------------------------------------ gradient checks




def _total(value):
    return float(np.sum(value))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_pair_loss_gradient_matches_central_differences(backend, rng, name, reduction):
    _need(backend, name)
    pred, target = _inputs(name, rng, (3, 4), np.float64)
    if name == "l1_loss":
        pred[np.abs(pred - target) < 1e-3] += 0.01  # stay off the kink
    loss = getattr(F, name)
    _, grad = loss(pred, target, reduction=reduction)
    numeric = central_differences(lambda p: _total(loss(p, target, reduction=reduction)[0]),
                              pred.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("half", [False, True])
def test_half_mse_gradient_matches_central_differences(backend, rng, half):
    _need(backend, "mse_loss")
    pred, target = _inputs("mse_loss", rng, (5,), np.float64)
    _, grad = F.mse_loss(pred, target, half=half)
    numeric = central_differences(lambda p: F.mse_loss(p, target, half=half)[0], pred.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradient_matches_central_differences(backend, rng, reduction):
    _need(backend, "cross_entropy_loss")
    logits = rng.standard_normal((4, 5)) * 2
    labels = rng.integers(0, 5, 4)
    _, grad = F.cross_entropy_loss(logits, labels, reduction=reduction)
    numeric = central_differences(
        lambda z: _total(F.cross_entropy_loss(z, labels, reduction=reduction)[0]), logits.copy())
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- torch oracle


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", PAIR_LOSSES + ["cross_entropy_loss"])
def test_against_torch(backend, dtype, rng, name, reduction):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    _need(backend, name)
    if name == "cross_entropy_loss":
        pred = (rng.standard_normal((33, 10)) * 3).astype(dtype)
        target = rng.integers(0, 10, 33)
        t_target = torch.tensor(target)
        fn = tf.cross_entropy
    else:
        pred, target = _inputs(name, rng, (33, 7), dtype)
        t_target = torch.tensor(target)
        fn = {"l1_loss": tf.l1_loss, "mse_loss": tf.mse_loss,
              "bce_loss": tf.binary_cross_entropy,
              "bce_with_logits_loss": tf.binary_cross_entropy_with_logits}[name]
    tp = torch.tensor(pred, requires_grad=True)
    t_value = fn(tp, t_target, reduction=reduction)
    t_value.sum().backward()
    value, grad = getattr(F, name)(pred, target, reduction=reduction)
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(np.asarray(value), t_value.detach().numpy(), **tol)
    np.testing.assert_allclose(grad, tp.grad.numpy(), **tol)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("name", PAIR_LOSSES + ["cross_entropy_loss"])
@pytest.mark.parametrize("which", ["cpp", "numba"])
def test_bitwise_identical_for_one_and_two_threads(which, rng, name, reduction):
    try:
        backends.load(which)
    except ImportError:
        pytest.skip(f"backend {which!r} does not import here")
    n = 1 << 20
    if name == "cross_entropy_loss":
        pred = rng.standard_normal((n // 8, 8)).astype(np.float32)
        target = rng.integers(0, 8, n // 8)
    else:
        pred, target = _inputs(name, rng, (n,), np.float32)
    before = gk.get_num_threads()
    results = []
    try:
        with gk.use_backend(which):
            for threads in (1, 2):
                gk.set_num_threads(threads)
                results.append(getattr(F, name)(pred, target, reduction=reduction))
    finally:
        gk.set_num_threads(before)
    (v1, g1), (v2, g2) = results
    assert np.array_equal(np.asarray(v1), np.asarray(v2))
    assert np.array_equal(g1, g2)


# ---------------------------------------------------------------------------- validation


def test_bce_out_of_range_raises_the_same_message_everywhere(backend, dtype):
    _need(backend, "bce_loss")
    pred = np.array([0.5, 1.5, np.nan, -0.1, 0.2], dtype=dtype)
    target = np.zeros(5, dtype)
    with pytest.raises(ValueError) as info:
        F.bce_loss(pred, target)
    assert str(info.value) == ("pred must hold probabilities in [0, 1], but 3 value(s) are "
                               "outside or NaN (use bce_with_logits_loss for raw scores)")


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_mismatched_shapes_name_both_arguments(backend, name):
    first = "logits" if name == "bce_with_logits_loss" else "pred"
    with pytest.raises(ValueError, match=f"{first} has shape \\(3,\\) but target has shape"):
        getattr(F, name)(np.full(3, 0.5), np.full(4, 0.5))


@pytest.mark.parametrize("bad", [np.arange(3), np.ones(3, bool), np.ones(3, complex),
                                 np.array([0.5, None, 0.5], dtype=object)])
@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_non_float_dtypes_are_type_errors(backend, name, bad):
    first = "logits" if name == "bce_with_logits_loss" else "pred"
    with pytest.raises(TypeError, match=f"{first} must have dtype float32 or float64"):
        getattr(F, name)(bad, np.full(3, 0.5))
    with pytest.raises(TypeError, match="target must have dtype float32 or float64"):
        getattr(F, name)(np.full(3, 0.5), bad)


def test_empty_and_bad_reduction(backend):
    with pytest.raises(ValueError, match="pred is empty"):
        F.mse_loss(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match="reduction='avg' must be one of"):
        F.l1_loss(np.ones(3), np.ones(3), reduction="avg")


def test_cross_entropy_validation(backend):
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match="logits must be 2-D"):
        F.cross_entropy_loss(np.zeros(4), [0])
    with pytest.raises(ValueError, match="labels contains 4; labels must be in \\[0, 4\\)"):
        F.cross_entropy_loss(logits, [0, 1, 4])
    with pytest.raises(ValueError, match="labels contains -1"):
        F.cross_entropy_loss(logits, [0, -1, 2])
    with pytest.raises(TypeError, match="labels must hold integer class labels"):
        F.cross_entropy_loss(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="labels has 2 labels but the input has 3 rows"):
        F.cross_entropy_loss(logits, [0, 1])
    with pytest.raises(ValueError, match="labels must be 1-D"):
        F.cross_entropy_loss(logits, [[0, 1, 2]])


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_non_contiguous_and_float64_inputs_work(backend, rng, name):
    _need(backend, name)
    pred, target = _inputs(name, rng, (6, 8), np.float64)
    with pytest.warns(ConversionWarning, match="copied to a C-contiguous"):
        value, grad = getattr(F, name)(pred[:, ::2], target[:, ::2])
    ref_value, ref_grad = getattr(ops_numpy, name)(np.ascontiguousarray(pred[:, ::2]),
                                                   np.ascontiguousarray(target[:, ::2]), "mean")
    np.testing.assert_allclose(value, ref_value, **TOL[np.float64])
    np.testing.assert_allclose(grad, ref_grad, **TOL[np.float64])


@pytest.mark.parametrize("isa", ["portable", "avx2", "avx512"])
@pytest.mark.parametrize("name", PAIR_LOSSES + ["cross_entropy_loss"])
def test_cpp_every_isa_path_matches_numpy(rng, isa, name):
    from gradkit import _core

    order = ["portable", "avx2", "avx512"]
    if order.index(isa) > order.index(_core.detected_isa()):
        pytest.skip(f"this CPU has no {isa}")
    if name == "cross_entropy_loss":
        pred = (rng.standard_normal((1000, 10)) * 3).astype(np.float32)
        target = rng.integers(0, 10, 1000)
    else:
        pred, target = _inputs(name, rng, (10_001,), np.float32)
    before = _core.active_isa()
    try:
        _core.force_isa(isa)
        with gk.use_backend("cpp"):
            results = [getattr(F, name)(pred, target, reduction=r) for r in ("mean", "none")]
    finally:
        _core.force_isa(before)
    for (value, grad), reduction in zip(results, ("mean", "none")):
        ref_value, ref_grad = getattr(ops_numpy, name)(pred, target, reduction)
        np.testing.assert_allclose(value, ref_value, **TOL[np.float32])
        np.testing.assert_allclose(grad, ref_grad, **TOL[np.float32])

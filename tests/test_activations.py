"""Activations: every backend against ops_numpy, backward against central differences, PyTorch
as an independent oracle, and the validation at gradkit.functional."""
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
ELEMENTWISE = ["relu", "leaky_relu", "sigmoid", "tanh"]


def _need(backend, name):
    if not hasattr(backends.load(backend), name):
        pytest.skip(f"backend {backend!r} has no {name} yet")


def _args(name):
    return (0.1,) if name == "leaky_relu" else ()


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("n", SIZES)
def test_elementwise_forward_backward_match_numpy(backend, dtype, rng, name, n):
    _need(backend, name)
    x = (rng.standard_normal((n, 3)) * 4).astype(dtype)
    y = getattr(F, name)(x, *_args(name))
    ref = getattr(ops_numpy, name)(x, *_args(name))
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, ref, **TOL[dtype])

    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = getattr(F, name + "_backward")(dy, ref, *_args(name))
    ref_dx = getattr(ops_numpy, name + "_backward")(dy, ref, *_args(name))
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref_dx, **TOL[dtype])


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (33, 10), (257, 3), (4, 1024)])
def test_softmax_matches_numpy_and_rows_sum_to_one(backend, dtype, rng, shape):
    _need(backend, "softmax")
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    y = F.softmax(x)
    np.testing.assert_allclose(y, ops_numpy.softmax(x), **TOL[dtype])
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    dy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_allclose(F.softmax_backward(dy, y), ops_numpy.softmax_backward(dy, y),
                               **TOL[dtype])


def test_extreme_inputs_stay_finite(backend, dtype):
    _need(backend, "sigmoid")
    x = np.array([-1000.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0], dtype=dtype)
    s = F.sigmoid(x)
    t = F.tanh(x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(t))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert t[0] == -1.0 and t[-1] == 1.0 and t[3] == 0.0
    big = np.array([[1000.0, 0.0, -1000.0]], dtype=dtype)
    np.testing.assert_array_equal(F.softmax(big), [[1.0, 0.0, 0.0]])


def test_tanh_small_inputs_keep_relative_accuracy(backend, dtype):
    # 1 - 2/(e^2x + 1) cancels near 0; the kernels must use a form that does not.
    _need(backend, "tanh")
    x = np.array([1e-8, -3e-5, 1e-3, 0.3, 0.6, 0.7], dtype=dtype)
    np.testing.assert_allclose(F.tanh(x), np.tanh(x.astype(np.float64)), rtol=2e-7 if
                               dtype == np.float32 else 1e-15)




@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_backward_matches_central_differences(backend, rng, name):
    _need(backend, name)
    x = rng.standard_normal((4, 5))
    if name in ("relu", "leaky_relu"):
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    dy = rng.standard_normal(x.shape)
    forward = getattr(F, name)
    y = forward(x, *_args(name))
    analytic = getattr(F, name + "_backward")(dy, y, *_args(name))
    numeric = central_differences(lambda v: float(np.sum(dy * forward(v, *_args(name)))), x.copy())
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ELEMENTWISE + ["softmax"])
def test_against_torch(backend, dtype, rng, name):
    torch = pytest.importorskip("torch")
    _need(backend, name)
    x = (rng.standard_normal((33, 7)) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    fn = {
        "relu": torch.relu,
        "leaky_relu": lambda v: torch.nn.functional.leaky_relu(v, 0.1),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "softmax": lambda v: torch.softmax(v, dim=1),
    }[name]
    ty = fn(tx)
    ty.backward(torch.tensor(dy))
    y = getattr(F, name)(x, *_args(name))
    np.testing.assert_allclose(y, ty.detach().numpy(), **TOL[dtype])
    dx = getattr(F, name + "_backward")(dy, y, *_args(name))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **TOL[dtype])


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize("bad", [np.arange(4), np.ones(3, bool), np.ones(2, complex),
                                 np.array([1.0, "a"], dtype=object)])
def test_non_float_input_is_a_type_error_naming_x(backend, bad):
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        F.relu(bad)


def test_backward_shape_mismatch_names_both(backend):
    with pytest.raises(ValueError, match="dy has shape .* but y has shape"):
        F.sigmoid_backward(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="y must be 2-D"):
        F.softmax_backward(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="x must be 2-D"):
        F.softmax(np.ones(3))


def test_negative_slope_is_refused(backend):
    with pytest.raises(ValueError, match="slope=-0.1 must be >= 0"):
        F.leaky_relu(np.ones(3), -0.1)
    with pytest.raises(TypeError, match="slope must be a real number"):
        F.leaky_relu(np.ones(3), "0.1")


def test_non_contiguous_input_is_copied_with_a_warning(backend, dtype, rng):
    _need(backend, "tanh")
    x = rng.standard_normal((8, 6)).astype(dtype)
    with pytest.warns(ConversionWarning, match="x copied to a C-contiguous"):
        y = F.tanh(x[:, ::2])
    np.testing.assert_allclose(y, np.tanh(x[:, ::2]), **TOL[dtype])


SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -1.5, 30.0, -30.0]


def _special_values(dtype, n=37):
    """The special values spread over a vector body and a ragged tail (n is not a multiple of 8/16)."""
    x = np.linspace(-3, 3, n).astype(dtype)
    x[:: max(1, n // len(SPECIAL))][: len(SPECIAL)] = SPECIAL
    x[-1] = np.nan  # in the tail too
    return x


@pytest.mark.parametrize("name", ELEMENTWISE)
# numba is left out until its relu keeps NaN (another branch fixes that backend).
@pytest.mark.parametrize("backend_name", ["cpp", "cython", "numpy"])
def test_activations_propagate_nan_and_inf_as_numpy(backend_name, name, dtype):
    """NaN stays NaN (np.maximum keeps it: relu(nan) is nan, not 0) and +-inf map as in numpy, on
    every backend and in the vector body as well as the tail."""
    if backend_name not in backends.available():
        pytest.skip(f"backend {backend_name!r} is not available here")
    ops = backends.load(backend_name)
    if not hasattr(ops, name):
        pytest.skip(f"backend {backend_name!r} has no {name}")
    x = _special_values(dtype)
    ref = getattr(ops_numpy, name)(x, *_args(name))
    with np.errstate(invalid="ignore", over="ignore"):
        y = getattr(ops, name)(x, *_args(name))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_allclose(y, ref, **TOL[dtype])  # NaN == NaN here; infinities must match


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_linear_epilogue_keeps_nan_like_the_activation(activation, dtype):
    """The GEMM's fused bias+activation epilogue uses the same formula: NaN in, NaN out."""
    from gradkit import _core

    x = np.ones((9, 40), dtype=dtype)
    x[3, 5] = np.nan
    w = np.full((20, 40), -1.0, dtype=dtype)  # every finite output is negative -> 0 under relu
    y = _core.linear(x, w, None, activation, 0.1)
    assert np.isnan(y[3]).all() and not np.isnan(np.delete(y, 3, axis=0)).any()

"""gk.descent: gradient descent on user functions, numerical gradients, divergence reporting."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradkit as gk
from gradkit.descent import minimize, numerical_gradient


def parabola(x):
    return 2 * x**2 - 12 * x + 20


def parabola_grad(x):
    return 4 * x - 12


def saddle(v):
    x, y = v
    return 2 * x**2 + 2 * y + 4 * x * y


def saddle_grad(v):
    x, y = v
    return np.array([4 * x + 4 * y, 2 + 4 * x])


@pytest.mark.parametrize("x0", [-50.0, -3.0, 0.0, 2.999, 3.0, 7.5, 1e3])
@pytest.mark.parametrize("analytic", [True, False], ids=["grad", "numerical"])
def test_parabola_reaches_minimum_from_any_start(x0, analytic):
    res = minimize(parabola, x0, grad=parabola_grad if analytic else None, lr=0.1)
    assert res.converged and not res.diverged
    assert res.x == pytest.approx(3.0, abs=1e-6)
    assert res.fun == pytest.approx(2.0, abs=1e-10)
    assert isinstance(res.x, float)
    assert res.path.shape == (res.n_iter + 1,)
    assert res.path[0] == x0 and res.path[-1] == res.x
    assert res.values.shape == res.path.shape
    # A stable step on a convex parabola never goes uphill.
    assert np.all(np.diff(res.values) <= 1e-12)


def test_parabola_first_step_is_the_update_rule():
    res = minimize(parabola, 0.0, grad=parabola_grad, lr=0.1, max_iter=1)
    # x1 = x0 - lr * f'(x0) = 0 - 0.1 * (-12) = 1.2
    assert res.path.tolist() == pytest.approx([0.0, 1.2])
    assert res.n_iter == 1 and not res.converged and not res.diverged
    assert "max_iter" in res.message


def test_parabola_with_too_large_lr_diverges_loudly():
    # |1 - 4 lr| > 1 for lr > 0.5: each step overshoots further.
    with pytest.warns(RuntimeWarning, match="too large"):
        res = minimize(parabola, 0.0, grad=parabola_grad, lr=0.6)
    assert res.diverged and not res.converged
    assert "lr=0.6" in res.message


def test_numerical_gradient_of_parabola_and_saddle():
    for x in (-2.0, 0.0, 3.0, 10.0):
        assert numerical_gradient(parabola, x) == pytest.approx(parabola_grad(x), abs=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.normal(size=2) * 3
        # The course's partial derivatives: df/dx = 4x + 4y, df/dy = 2 + 4x.
        np.testing.assert_allclose(numerical_gradient(saddle, v), saddle_grad(v), atol=1e-6)
        np.testing.assert_allclose(saddle_grad(v), [4 * v[0] + 4 * v[1], 2 + 4 * v[0]])


def test_numerical_gradient_keeps_shape_and_does_not_modify_input():
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    g = numerical_gradient(lambda a: float((a**2).sum()), x)
    assert g.shape == (2, 3)
    np.testing.assert_allclose(g, 2 * before, atol=1e-6)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("analytic", [True, False], ids=["grad", "numerical"])
@pytest.mark.parametrize("x0", [[0.0, 0.0], [1.0, -1.0], [-2.0, 3.0]])
def test_saddle_descent_is_reported_as_diverging(x0, analytic):
    with pytest.warns(RuntimeWarning, match="unbounded below"):
        res = minimize(saddle, x0, grad=saddle_grad if analytic else None, lr=0.05)
    assert res.diverged and not res.converged
    assert res.fun < -1e10
    assert res.path.shape == (res.n_iter + 1, 2)
    assert "diverged" in res.message


def test_endless_slope_is_divergence_even_when_x_stays_moderate():
    # f(x) = -x falls by lr per step forever: x only reaches 100 in 1000 steps.
    with pytest.warns(RuntimeWarning, match="unbounded below"):
        res = minimize(lambda x: -x, 0.0, lr=0.1)
    assert res.diverged and res.n_iter == 1000 and res.x == pytest.approx(100.0)
    with pytest.warns(RuntimeWarning, match="unbounded below"):
        res = minimize(lambda v: v[0] - 2 * v[1], [0.0, 0.0], lr=0.01, max_iter=100)
    assert res.diverged


def test_slow_progress_towards_a_minimum_is_not_divergence():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = minimize(parabola, 0.0, grad=parabola_grad, lr=0.001, max_iter=50)
        assert not res.converged and not res.diverged
        assert "max_iter=50" in res.message
        # An ill-conditioned bowl: the walk keeps going downhill but slows down.
        res = minimize(lambda v: v[0] ** 2 + 1e-3 * v[1] ** 2, [1.0, 100.0], lr=0.4,
                       max_iter=200)
        assert not res.converged and not res.diverged


def test_non_finite_value_is_divergence():
    with pytest.warns(RuntimeWarning, match="non-finite"), np.errstate(over="ignore"):
        res = minimize(lambda x: -np.exp(x), 700.0, grad=lambda x: -np.exp(x), lr=1.0)
    assert res.diverged


def test_vector_problem_converges_to_known_point():
    target = np.array([1.0, -2.0, 0.5])
    res = minimize(lambda v: float(((v - target) ** 2).sum()), np.zeros(3), lr=0.25)
    assert res.converged
    np.testing.assert_allclose(res.x, target, atol=1e-6)


def test_public_attribute_path():
    assert gk.descent.minimize is minimize
    assert gk.descent.numerical_gradient is numerical_gradient


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(f=1, x0=0.0), TypeError, "f must be callable"),
    (dict(f=parabola, x0="a"), TypeError, "x0"),
    (dict(f=parabola, x0=[]), ValueError, "x0 must not be empty"),
    (dict(f=parabola, x0=float("nan")), ValueError, "x0 must be finite"),
    (dict(f=parabola, x0=0.0, lr=0.0), ValueError, "lr=0.0 must be > 0"),
    (dict(f=parabola, x0=0.0, lr=-1), ValueError, "lr"),
    (dict(f=parabola, x0=0.0, max_iter=-1), ValueError, "max_iter=-1"),
    (dict(f=parabola, x0=0.0, max_iter=2.5), TypeError, "max_iter must be an int"),
    (dict(f=parabola, x0=0.0, tol=-1.0), ValueError, "tol"),
    (dict(f=parabola, x0=0.0, grad=3), TypeError, "grad must be callable"),
    (dict(f=lambda x: "a", x0=0.0), TypeError, "f must return a real number"),
    (dict(f=lambda x: float("inf"), x0=0.0), ValueError, "f\\(x0\\)"),
    (dict(f=saddle, x0=[0.0, 0.0], grad=lambda v: np.zeros(3)), ValueError, "grad returned shape"),
])
def test_minimize_validates_arguments(kwargs, exc, match):
    f = kwargs.pop("f")
    x0 = kwargs.pop("x0")
    with pytest.raises(exc, match=match):
        minimize(f, x0, **kwargs)


def test_numerical_gradient_validates_arguments():
    with pytest.raises(ValueError, match="eps"):
        numerical_gradient(parabola, 1.0, eps=0.0)
    with pytest.raises(TypeError, match="f must be callable"):
        numerical_gradient(None, 1.0)


def test_converged_run_issues_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        minimize(parabola, 10.0)

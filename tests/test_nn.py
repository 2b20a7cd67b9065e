"""gk.nn layers and gk.losses: float64 central-difference gradient checks, the Module API,
backends against the NumPy reference, the 2-3-1 network of the course, and bad inputs."""
from __future__ import annotations

import numpy as np
import pytest

import gradkit as gk
from gradcheck import central_differences
from gradkit import _config, losses, nn
from conftest import TOL

LAYER_OPS = ("linear", "linear_backward", "relu", "relu_backward", "leaky_relu",
             "leaky_relu_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
             "softmax", "softmax_backward")
LOSS_OPS = ("l1_loss", "mse_loss", "bce_loss", "bce_with_logits_loss", "cross_entropy_loss")


def require_ops(*names):
    """Skip when the selected backend does not implement these ops yet (built in parallel)."""
    missing = [n for n in names if not hasattr(_config.ops(), n)]
    if missing:
        pytest.skip(f"backend {gk.get_backend()!r} lacks {', '.join(missing)}")


@pytest.fixture(autouse=True)
def _complete_default_backend():
    """Tests without the backend fixture run on the default backend, or on the NumPy reference
    while the default one is still missing layer ops."""
    if all(hasattr(_config.ops(), n) for n in LAYER_OPS + LOSS_OPS + ("sgd_step",)):
        yield
    else:
        with gk.use_backend("numpy"):
            yield




def every_layer_model():
    f64 = np.float64
    return nn.Sequential(
        nn.Linear(4, 6, dtype=f64, seed=1), nn.ReLU(),
        nn.Linear(6, 5, dtype=f64, seed=2), nn.LeakyReLU(0.1),
        nn.Linear(5, 5, dtype=f64, seed=3), nn.Tanh(),
        nn.Linear(5, 4, dtype=f64, seed=4), nn.Sigmoid(), nn.Identity(),
        nn.Linear(4, 3, bias=False, dtype=f64, seed=5), nn.Softmax(),
    )


def test_gradients_through_every_layer_type_match_central_differences(backend):
    require_ops(*LAYER_OPS, "mse_loss")
    rng = np.random.default_rng(0)
    model = every_layer_model()
    x = rng.normal(size=(7, 4))
    target = rng.random((7, 3))
    loss_fn = losses.MSELoss(reduction="sum")

    def f():
        return loss_fn(model(x), target)

    model.zero_grad()
    f()
    dx = model.backward(loss_fn.backward())
    for p in model.parameters():
        np.testing.assert_allclose(p.grad, central_differences(lambda _: f(), p.value),
                                   rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, central_differences(lambda _: f(), x), rtol=1e-6, atol=1e-8)


LOSS_CASES = [
    (lambda: losses.L1Loss(), "float"),
    (lambda: losses.L1Loss(reduction="sum"), "float"),
    (lambda: losses.MSELoss(), "float"),
    (lambda: losses.MSELoss(half=True), "float"),
    (lambda: losses.MSELoss(reduction="sum"), "float"),
    (lambda: losses.BCELoss(), "prob"),
    (lambda: losses.BCEWithLogitsLoss(reduction="sum"), "float01"),
    (lambda: losses.BCEWithLogitsLoss(), "float01"),
    (lambda: losses.CrossEntropyLoss(), "labels"),
    (lambda: losses.CrossEntropyLoss(reduction="sum"), "labels"),
]


@pytest.mark.parametrize("make, kind", LOSS_CASES)
def test_loss_module_gradient_matches_central_differences(backend, make, kind):
    require_ops(*LOSS_OPS)
    rng = np.random.default_rng(1)
    loss_fn = make()
    if kind == "labels":
        pred, target = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    elif kind == "prob":
        pred, target = rng.uniform(0.05, 0.95, (6, 3)), rng.integers(0, 2, (6, 3)).astype(float)
    else:
        pred = rng.normal(size=(6, 3))
        target = rng.random((6, 3)) if kind == "float01" else rng.normal(size=(6, 3))
    value = loss_fn(pred, target)
    grad = loss_fn.backward().copy()
    num = central_differences(lambda _: loss_fn(pred, target), pred)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)
    with gk.use_backend("numpy"):
        ref = make()(pred, target)
    assert value == pytest.approx(ref, rel=1e-12)


def test_loss_reduction_none_returns_per_element_and_grad_of_sum():
    rng = np.random.default_rng(2)
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    per = losses.MSELoss(reduction="none")(pred, target)
    np.testing.assert_allclose(per, (pred - target) ** 2)
    per_row = losses.CrossEntropyLoss(reduction="none")(pred, np.array([0, 1, 2, 0]))
    assert per_row.shape == (4,)


def test_bce_is_minus_y_log_p_not_swapped():
    p, y = np.array([[0.9]]), np.array([[1.0]])
    assert losses.BCELoss()(p, y) == pytest.approx(-np.log(0.9))


def test_layers_match_numpy_reference(backend, dtype):
    require_ops(*LAYER_OPS)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 4)).astype(dtype)
    dy = rng.normal(size=(9, 3)).astype(dtype)
    results = {}
    for name in (backend, "numpy"):
        with gk.use_backend(name):
            model = nn.Sequential(nn.Linear(4, 5, dtype=dtype, seed=7), nn.Tanh(),
                                  nn.Linear(5, 3, dtype=dtype, seed=8), nn.LeakyReLU(0.2))
            y = model(x)
            dx = model.backward(dy)
            results[name] = [y, dx] + [p.grad for p in model.parameters()]
    for got, want in zip(results[backend], results["numpy"]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_module_api_parameters_zero_grad_and_accumulation():
    model = nn.Sequential(nn.Linear(3, 4, seed=0, dtype=np.float64), nn.ReLU(),
                          nn.Linear(4, 2, seed=1, dtype=np.float64))
    params = model.parameters()
    assert [p.shape for p in params] == [(4, 3), (4,), (2, 4), (2,)]
    assert model[0].weight.value.shape == (4, 3)  # (out, in), as in PyTorch
    with gk.use_backend("numpy"):
        x = np.random.default_rng(0).normal(size=(5, 3))
        dy = np.ones((5, 2))
        model(x)
        model.backward(dy)
        once = [p.grad.copy() for p in params]
        model(x)
        model.backward(dy)
        for p, g in zip(params, once):
            np.testing.assert_allclose(p.grad, 2 * g)  # gradients accumulate
        model.zero_grad()
        assert all(not p.grad.any() for p in params)
    assert nn.ReLU().parameters() == []
    assert model.eval().training is False and model[0].training is False
    assert model.train().training is True


def test_linear_init_is_pytorch_style_and_seeded():
    a, b = nn.Linear(100, 50, seed=3), nn.Linear(100, 50, seed=3)
    np.testing.assert_array_equal(a.weight.value, b.weight.value)
    assert a.weight.value.dtype == np.float32
    bound = 1 / np.sqrt(100)
    assert np.abs(a.weight.value).max() <= bound and np.abs(a.bias.value).max() <= bound
    assert np.abs(a.weight.value).max() > 0.9 * bound  # uses the whole range
    assert not np.array_equal(nn.Linear(100, 50, seed=4).weight.value, a.weight.value)


def test_two_three_one_network_equals_its_expanded_formula():
    """The course's 2-3-1 network: h_j = sigmoid(w1_j1 x1 + w1_j2 x2 + b1_j), y = Σ_j w2_j h_j + b2."""
    f64 = np.float64
    model = nn.Sequential(nn.Linear(2, 3, dtype=f64, seed=11), nn.Sigmoid(),
                          nn.Linear(3, 1, dtype=f64, seed=12))
    W1, b1 = model[0].weight.value, model[0].bias.value
    W2, b2 = model[2].weight.value, model[2].bias.value
    x = np.random.default_rng(5).normal(size=(10, 2))
    with gk.use_backend("numpy"):
        y = model(x)
    for row, (x1, x2) in enumerate(x):
        expanded = b2[0]
        for j in range(3):
            z = W1[j, 0] * x1 + W1[j, 1] * x2 + b1[j]
            expanded += W2[0, j] * (1 / (1 + np.exp(-z)))
        assert y[row, 0] == pytest.approx(expanded, rel=1e-12)


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Linear(2, 2).backward(np.zeros((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="before the loss"):
        losses.MSELoss().backward()


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.Linear(0, 3), ValueError, "in_features=0 must be >= 1"),
    (lambda: nn.Linear(3, -1), ValueError, "out_features=-1 must be >= 1"),
    (lambda: nn.Linear(2.5, 3), TypeError, "in_features must be an int"),
    (lambda: nn.Linear(2, 3, dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda: nn.Linear(2, 3, bias="yes"), TypeError, "bias must be a bool"),
    (lambda: nn.Linear(2, 3, seed=1.5), TypeError, "seed must be an int"),
    (lambda: nn.LeakyReLU(-0.1), ValueError, "slope=-0.1 must be >= 0"),
    (lambda: nn.LeakyReLU(float("nan")), ValueError, "slope=nan must be finite"),
    (lambda: nn.Sequential(), ValueError, "at least one layer"),
    (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, r"layers\[1\] must be"),
    (lambda: losses.MSELoss(reduction="avg"), ValueError, "reduction='avg' must be one of"),
    (lambda: losses.CrossEntropyLoss(reduction=None), ValueError, "reduction=None must be"),
    (lambda: losses.MSELoss(half=1), TypeError, "half must be a bool"),
])
def test_bad_constructor_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_call_inputs_name_the_argument():
    layer = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="x has 4 features but this Linear layer expects "
                                         "in_features=3"):
        layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="x must be 2-D"):
        layer(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        layer(np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match="labels contains 5; labels must be in"):
        losses.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match="pred has shape"):
        losses.MSELoss()(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="pred must hold probabilities"):
        losses.BCELoss()(np.array([1.5]), np.array([1.0]))

"""gk.fit / predict / evaluate: mini-batching, shuffling, History, early stopping, divergence,
the fused whole-epoch path against the layer-by-layer path and PyTorch, and accuracy on real data."""
from __future__ import annotations

import contextlib

import os

import numpy as np
import pytest

import gradkit as gk
from gradkit import backends as _backends
from gradkit import _config, losses, nn, optim
from gradkit.train import TrainingDivergedError

FUSED_BACKENDS = ("cpp", "numba")
FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True)
def _complete_default_backend():
    """The default backend, or the NumPy reference while the default one lacks layer ops."""
    if all(hasattr(_config.ops(), n) for n in ("linear", "linear_backward", "sgd_step", "relu")):
        yield
    else:
        with gk.use_backend("numpy"):
            yield


def mlp(sizes, acts, dtype=np.float64, seed=0):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, dtype=dtype, seed=seed + i))
        if i < len(acts) and acts[i] is not None:
            layers.append(acts[i]())
    return nn.Sequential(*layers)


def blobs(n=200, d=5, k=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3, size=(k, d))
    y = rng.integers(0, k, n)
    return (centers[y] + rng.normal(size=(n, d))).astype(dtype), y


def params_of(model):
    return [p.value.copy() for p in model.parameters()]


# ------------------------------------------------------------------ fused vs layer by layer

CASES = {
    "ce-relu": (lambda dt: mlp([5, 8, 3], [nn.ReLU], dt), lambda: losses.CrossEntropyLoss(),
                dict(momentum=0.9)),
    "ce-sum-leaky-nesterov": (lambda dt: mlp([5, 7, 6, 3], [lambda: nn.LeakyReLU(0.1), nn.Tanh], dt),
                              lambda: losses.CrossEntropyLoss(reduction="sum"),
                              dict(lr=0.002, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "mse-sigmoid-out": (lambda dt: mlp([5, 6, 2], [nn.Tanh, nn.Sigmoid], dt),
                        lambda: losses.MSELoss(half=True), dict(momentum=0.5, dampening=0.2)),
    "l1": (lambda dt: mlp([5, 4, 2], [nn.ReLU], dt), lambda: losses.L1Loss(), dict()),
    "bce-logits": (lambda dt: mlp([5, 6, 2], [nn.Sigmoid], dt),
                   lambda: losses.BCEWithLogitsLoss(), dict(momentum=0.9)),
}


def _targets(loss_fn, X, y, dtype):
    if isinstance(loss_fn, losses.CrossEntropyLoss):
        return y
    onehot = np.eye(3)[y][:, :2].astype(dtype)
    return onehot if not isinstance(loss_fn, losses.L1Loss) else X[:, :2] * 0.3


@pytest.mark.parametrize("shuffle", [True, False])  # gathered batches / rows read in place
@pytest.mark.parametrize("fused_backend", FUSED_BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_epoch_equals_layer_by_layer(case, fused_backend, dtype, shuffle):
    make_model, make_loss, sgd = CASES[case]
    X, y = blobs(203, dtype=dtype)  # 203 = 6 full batches of 32 and a partial one of 11
    target = _targets(make_loss(), X, y, dtype)
    results = {}
    for name, fused in ((fused_backend, True), ("numpy", False)):
        with gk.use_backend(name):
            model = make_model(dtype)
            opt = optim.SGD(model.parameters(), **{"lr": 0.05, **sgd})
            hist = gk.fit(model, make_loss(), opt, X, target, epochs=3, batch_size=32, seed=4,
                          shuffle=shuffle, progress=False, fused=fused)
            assert hist.fused is fused
            results[name] = (params_of(model), hist.loss)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for got, want in zip(results[fused_backend][0], results["numpy"][0]):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(results[fused_backend][1], results["numpy"][1], **tol)


def test_fused_momentum_buffers_carry_over_to_layer_path():
    """Epoch 1 fused then epoch 2 layer by layer equals two layer-by-layer epochs."""
    X, y = blobs(100)
    runs = []
    for first_fused in (True, False):
        model = mlp([5, 6, 3], [nn.ReLU])
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with gk.use_backend("cpp" if first_fused else "numpy"):
            gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=1, batch_size=16,
                   shuffle=False, progress=False, fused=first_fused)
        with gk.use_backend("numpy"):
            gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=1, batch_size=16,
                   shuffle=False, progress=False, fused=False)
        runs.append(params_of(model))
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@contextlib.contextmanager
def kernels_parallel_from_tiny_sizes():
    """Lowers every threading threshold of the compiled kernels (a test-only hook), so that the
    small problems of these tests really run on several threads."""
    from gradkit import _core
    _core._set_thread_grain_scale(1e-9)
    try:
        yield
    finally:
        _core._set_thread_grain_scale(1.0)


def assert_all_equal(runs):
    """Every run's parameters are the same bits as the first run's."""
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def assert_same_bits_for_thread_counts(backend, X, y, sizes, batch_size, counts=(1, 2, 3, 4),
                                       sparse_input="auto"):
    """Fused fits of the same ReLU MLP on each thread count end with identical bits. For the cpp
    backend the thresholds are lowered and the team size that really ran is asserted."""
    from gradkit import _core
    before = gk.get_num_threads()
    out = []
    try:
        with kernels_parallel_from_tiny_sizes():
            for n in counts:
                gk.set_num_threads(n)
                _core._reset_max_team()
                with gk.use_backend(backend):
                    model = mlp(sizes, [nn.ReLU], X.dtype)
                    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
                    extra = {"sparse_input": sparse_input} if backend == "cpp" else {}
                    gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=2,
                           batch_size=batch_size, seed=1, progress=False, fused=True, **extra)
                if backend == "cpp":
                    assert _core._max_team_since_reset() == n, f"{n} threads were asked for"
                out.append(params_of(model))
    finally:
        gk.set_num_threads(before)
    assert_all_equal(out)


@pytest.mark.parametrize("fused_backend", FUSED_BACKENDS)
def test_fused_is_bitwise_identical_for_1_to_4_threads(fused_backend, dtype):
    X, y = blobs(300, d=64, dtype=dtype)
    counts = (1, 2, 3, 4) if fused_backend == "cpp" else (1, 2)
    assert_same_bits_for_thread_counts(fused_backend, X, y, [64, 128, 3], 64, counts)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_fused_bits_do_not_depend_on_threads_with_partial_batches_and_narrow_layers(loss, dtype):
    """203 rows in batches of 32 (a partial last batch), 3 layers with widths that leave vector
    tails, on 1-4 threads with every kernel split: the same bits."""
    X, y = blobs(203, d=37, dtype=dtype)
    from gradkit import _core
    before = gk.get_num_threads()
    out = []
    try:
        with kernels_parallel_from_tiny_sizes():
            for n in (1, 2, 3, 4):
                gk.set_num_threads(n)
                _core._reset_max_team()
                model = mlp([37, 45, 19, 3], [nn.Tanh, nn.ReLU], dtype)
                opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
                loss_fn = losses.CrossEntropyLoss() if loss == "cross_entropy" else losses.MSELoss()
                target = y if loss == "cross_entropy" else np.eye(3, dtype=dtype)[y]
                with gk.use_backend("cpp"):
                    gk.fit(model, loss_fn, opt, X, target, epochs=2, batch_size=32, seed=3,
                           progress=False, fused=True)
                assert _core._max_team_since_reset() == n
                out.append(params_of(model))
    finally:
        gk.set_num_threads(before)
    assert_all_equal(out)


def test_sparse_input_is_validated_and_auto_keeps_dense_batches_dense():
    from gradkit import _core
    X, y = blobs(64, d=20)
    model = mlp([20, 8, 3], [nn.ReLU])
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="sparse_input must be 'auto', True or False"):
        gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, progress=False, sparse_input="yes")
    with gk.use_backend("numpy"), pytest.raises(ValueError, match="sparse_input=True needs"):
        gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, progress=False, sparse_input=True)
    with gk.use_backend("cpp"):
        gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, progress=False, batch_size=512)
    assert _core._mlp_last_first_layer() == 0  # no zeros at all: the dense layer, no row sort


def test_unsupported_models_fall_back_and_fused_true_explains():
    X, y = blobs(64)
    model = nn.Sequential(nn.Linear(5, 3, dtype=np.float64, seed=0), nn.Softmax())
    with gk.use_backend("cpp"):
        with pytest.raises(ValueError, match="fused=True but this model cannot run fused: "
                                             "layer Softmax"):
            gk.fit(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X,
                   np.eye(3)[y], progress=False, fused=True)
    with gk.use_backend("numpy"):
        hist = gk.fit(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X,
                      np.eye(3)[y], progress=False)
    assert hist.fused is False


def load_fashion(kind):
    if not os.path.isdir(FASHION):
        pytest.skip(f"Fashion-MNIST not found in {FASHION}")
    X, y = gk.datasets.load_mnist(FASHION, kind=kind)  # float32 (n, 784) in [0, 1], int64
    return X, y


def test_fused_matches_pytorch_on_784_256_10_subset():
    torch = pytest.importorskip("torch")
    X, y = load_fashion("test")
    X, y = X[:512].astype(np.float64), y[:512]
    model = nn.Sequential(nn.Linear(784, 256, dtype=np.float64, seed=0), nn.ReLU(),
                          nn.Linear(256, 10, dtype=np.float64, seed=1))
    tmodel = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 10)).double()
    with torch.no_grad():
        for tp, p in zip(tmodel.parameters(), model.parameters()):
            tp.copy_(torch.from_numpy(p.value))
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(3):
        for s in range(0, 512, 64):
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tX[s:s + 64]), ty[s:s + 64]).backward()
            topt.step()
    with gk.use_backend("cpp"):
        hist = gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1,
                      momentum=0.9), X, y, epochs=3, batch_size=64, shuffle=False,
                      progress=False)
    assert hist.fused
    for p, tp in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-7, atol=1e-9)


# -------------------------------------------------------------------------- fit behaviour


def test_partial_last_batch_equals_manual_loop():
    X, y = blobs(70)  # batches of 32, 32 and 6
    with gk.use_backend("numpy"):
        model = mlp([5, 4, 3], [nn.Tanh])
        manual = mlp([5, 4, 3], [nn.Tanh])
        gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.3), X, y,
               batch_size=32, shuffle=False, progress=False)
        loss_fn, opt = losses.CrossEntropyLoss(), optim.SGD(manual.parameters(), lr=0.3)
        sizes = []
        for s in range(0, 70, 32):
            opt.zero_grad()
            sizes.append(len(X[s:s + 32]))
            loss_fn(manual(X[s:s + 32]), y[s:s + 32])
            manual.backward(loss_fn.backward())
            opt.step()
    assert sizes == [32, 32, 6]
    for a, b in zip(params_of(model), params_of(manual)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("name", ["numpy", "cpp"])
def test_shuffle_is_reproducible_with_seed(name):
    X, y = blobs(120)

    def run(seed, shuffle=True):
        with gk.use_backend(name):
            model = mlp([5, 6, 3], [nn.ReLU])
            gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y,
                   epochs=2, batch_size=10, seed=seed, shuffle=shuffle, progress=False)
        return np.concatenate([p.ravel() for p in params_of(model)])

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.allclose(run(7), run(8))
    np.testing.assert_array_equal(run(1, shuffle=False), run(2, shuffle=False))


def test_history_contents_and_loss_decreases():
    X, y = blobs(300, seed=1)
    Xv, yv = blobs(100, seed=1)
    model = mlp([5, 16, 3], [nn.ReLU])
    hist = gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05,
                  momentum=0.9), X, y, epochs=4, batch_size=32, seed=0, validation_data=(Xv, yv),
                  progress=False)
    assert hist.epochs == 4 and len(hist.val_loss) == 4 and len(hist.val_accuracy) == 4
    assert hist.loss[-1] < hist.loss[0]
    assert hist.val_accuracy[-1] > 0.9
    assert hist.stopped_epoch is None
    ev = gk.evaluate(model, losses.CrossEntropyLoss(), Xv, yv)
    assert ev.loss == pytest.approx(hist.val_loss[-1]) and ev.accuracy == hist.val_accuracy[-1]
    pred = gk.predict(model, Xv, batch_size=7)
    assert pred.shape == (100, 3)
    np.testing.assert_allclose(pred, gk.predict(model, Xv), rtol=1e-12)


def test_regression_history_has_nan_accuracy_and_accepts_1d_targets():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = nn.Linear(3, 1, dtype=np.float64, seed=0)
    hist = gk.fit(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X, y,
                  epochs=200, batch_size=64, validation_data=(X, y), progress=False)
    assert np.isnan(hist.val_accuracy[-1])
    np.testing.assert_allclose(model.weight.value[0], [1.0, -2.0, 0.5], atol=1e-3)


def test_early_stopping_on_validation_loss():
    X, y = blobs(200, seed=2)
    wrong = (y + 1) % 3  # validation labels the training pushes away from
    model = mlp([5, 16, 3], [nn.ReLU])
    hist = gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05),
                  X, y, epochs=50, batch_size=20, seed=0, validation_data=(X, wrong), patience=2,
                  progress=False)
    assert hist.stopped_epoch is not None and hist.stopped_epoch < 50
    assert hist.epochs == hist.stopped_epoch
    assert hist.val_loss[-1] >= min(hist.val_loss[:-2])


def test_scheduler_is_stepped_each_epoch():
    X, y = blobs(40)
    model = mlp([5, 3], [])
    opt = optim.SGD(model.parameters(), lr=1.0)
    gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=4, batch_size=40,
           scheduler=optim.StepLR(opt, step_size=2, gamma=0.1), progress=False)
    assert opt.lr == pytest.approx(0.01)


@pytest.mark.parametrize("name, fused", [("numpy", False), ("cpp", True), ("numba", True)])
def test_nan_loss_stops_with_epoch_and_step_and_keeps_finite_params(name, fused):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4)) * 10
    y = rng.normal(size=(256, 1)) * 1e3
    with gk.use_backend(name):
        model = mlp([4, 32, 1], [nn.ReLU])
        opt = optim.SGD(model.parameters(), lr=10.0, momentum=0.9)
        with pytest.raises(TrainingDivergedError, match=r"at epoch 1, step \d+ of 16.*smaller"):
            gk.fit(model, losses.MSELoss(), opt, X, y, epochs=3, batch_size=16, progress=False,
                   fused=fused)
    assert all(np.isfinite(p.value).all() for p in model.parameters())


def test_progress_false_prints_nothing(capsys):
    X, y = blobs(50)
    model = mlp([5, 3], [])
    gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y,
           epochs=2, progress=False)
    gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y,
           epochs=1, progress=True)  # stderr is not a terminal under pytest: no bar either
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_bar_in_a_terminal_runs_in_chunks(monkeypatch):
    import gradkit.train as train

    X, y = blobs(500)
    calls = []
    monkeypatch.setattr(train.sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(train, "PROGRESS_CHUNK", 7)
    real = train._fused_chunk

    def spy(*args, **kwargs):
        calls.append(len(args[8]))  # step_loss
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "_fused_chunk", spy)
    with gk.use_backend("cpp"):
        model = mlp([5, 3], [])
        gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y,
               batch_size=10, progress=True)
    assert calls == [7] * 7 + [1]


def _fit_args():
    model = mlp([5, 4, 3], [nn.ReLU])
    X, y = blobs(20)
    return model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), X, y


@pytest.mark.parametrize("change, exc, match", [
    (lambda a, k: a.__setitem__(4, a[4][:10]), ValueError, "X has 20 rows but y has 10"),
    (lambda a, k: a.__setitem__(3, np.ascontiguousarray(a[3][:, :4])), ValueError,
     "X has 4 features but the model's first layer expects in_features=5"),
    (lambda a, k: a.__setitem__(4, a[4] + 3), ValueError, r"y contains \d; labels must be in \[0, 3\)"),
    (lambda a, k: a.__setitem__(4, a[4].astype(float)), TypeError, "y must hold integer class labels"),
    (lambda a, k: k.update(batch_size=0), ValueError, "batch_size=0 must be >= 1"),
    (lambda a, k: k.update(epochs=0), ValueError, "epochs=0 must be >= 1"),
    (lambda a, k: k.update(epochs=1.5), TypeError, "epochs must be an int"),
    (lambda a, k: k.update(patience=2), ValueError, "patience needs validation_data"),
    (lambda a, k: k.update(seed="x"), TypeError, "seed must be an int or None"),
    (lambda a, k: k.update(validation_data=np.zeros(3)), TypeError, "validation_data must be a pair"),
    (lambda a, k: a.__setitem__(0, "model"), TypeError, "model must be a gradkit.nn.Module"),
    (lambda a, k: a.__setitem__(1, "mse"), TypeError, "loss_fn must be a gradkit.losses loss"),
    (lambda a, k: a.__setitem__(2, None), TypeError, "optimizer must be a gradkit.optim.SGD"),
    (lambda a, k: a.__setitem__(1, losses.CrossEntropyLoss(reduction="none")), ValueError,
     "reduction='none' cannot drive training"),
    (lambda a, k: a.__setitem__(3, np.zeros((20, 5), dtype=np.int32)), TypeError,
     "X must have dtype float32 or float64"),
])
def test_fit_rejects_bad_inputs(change, exc, match):
    args, kwargs = list(_fit_args()), dict(progress=False)
    change(args, kwargs)
    with pytest.raises(exc, match=match):
        gk.fit(*args, **kwargs)


def test_fit_rejects_wrong_target_shape_for_regression():
    model = mlp([5, 2], [])
    X, _ = blobs(20)
    with pytest.raises(ValueError, match=r"y must have shape \(20, 2\)"):
        gk.fit(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=0.1), X,
               np.zeros((20, 3)), progress=False)


# ------------------------------------------------------------------------- real data


def _fashion_standardized():
    X, y = load_fashion("train")
    Xt, yt = load_fashion("test")
    mean, scale = X.mean(axis=0), X.std()
    return ((X - mean) / scale).astype(np.float32), y, ((Xt - mean) / scale).astype(np.float32), yt


# Settings of the accuracy target: 784-256-10, ReLU, softmax cross-entropy, batch 128, 2 epochs,
# standardised pixels, SGD lr 0.02 momentum 0.9 (raw [0, 1] pixels with lr 0.1 land at 0.84-0.86
# depending on the seed, in PyTorch too).
FASHION_LR, FASHION_MOMENTUM = 0.02, 0.9


def _fashion_model():
    return nn.Sequential(nn.Linear(784, 256, seed=0), nn.ReLU(), nn.Linear(256, 10, seed=1))


def test_fashion_mnist_two_epochs_reaches_85_percent():
    X, y, Xt, yt = _fashion_standardized()
    model = _fashion_model()
    opt = optim.SGD(model.parameters(), lr=FASHION_LR, momentum=FASHION_MOMENTUM)
    with gk.use_backend("cpp"):
        hist = gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=2, batch_size=128,
                      seed=0, progress=False)
    acc = gk.evaluate(model, losses.CrossEntropyLoss(), Xt, yt).accuracy
    assert hist.fused and hist.loss[1] < hist.loss[0]
    assert acc >= 0.85


def test_fashion_mnist_accuracy_within_one_point_of_pytorch():
    """Same initial weights, same mini-batch order, PyTorch's own float32 training."""
    torch = pytest.importorskip("torch")
    X, y, Xt, yt = _fashion_standardized()
    model = _fashion_model()
    tmodel = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 10))
    with torch.no_grad():
        for tp, p in zip(tmodel.parameters(), model.parameters()):
            tp.copy_(torch.from_numpy(p.value))
    topt = torch.optim.SGD(tmodel.parameters(), lr=FASHION_LR, momentum=FASHION_MOMENTUM)
    rng = np.random.default_rng(0)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(2):
        perm = torch.from_numpy(rng.permutation(len(y)))
        for s in range(0, len(y), 128):
            idx = perm[s:s + 128]
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tmodel(tX[idx]), ty[idx]).backward()
            topt.step()
    with torch.no_grad():
        torch_acc = float((tmodel(torch.from_numpy(Xt)).argmax(1).numpy() == yt).mean())
    opt = optim.SGD(model.parameters(), lr=FASHION_LR, momentum=FASHION_MOMENTUM)
    with gk.use_backend("cpp"):
        gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=2, batch_size=128, seed=0,
               progress=False)
    acc = gk.evaluate(model, losses.CrossEntropyLoss(), Xt, yt).accuracy
    assert abs(acc - torch_acc) <= 0.01


def test_digits_reaches_95_percent():
    try:
        from gradkit.datasets import load_digits
    except ImportError:
        from sklearn.datasets import load_digits
    data = load_digits()
    X, y = (data[0], data[1]) if isinstance(data, tuple) else (data.data, data.target)
    X = np.asarray(X, dtype=np.float32).reshape(len(y), -1)
    X /= X.max()
    y = np.asarray(y, dtype=np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    cut = int(0.8 * len(y))
    tr, te = order[:cut], order[cut:]
    model = nn.Sequential(nn.Linear(X.shape[1], 64, seed=0), nn.ReLU(), nn.Linear(64, 10, seed=1))
    with gk.use_backend("cpp"):
        gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1,
               momentum=0.9), X[tr], y[tr], epochs=30, batch_size=32, seed=0, progress=False)
    acc = gk.evaluate(model, losses.CrossEntropyLoss(), X[te], y[te]).accuracy
    assert acc >= 0.95


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("fused_backend", FUSED_BACKENDS)
def test_several_epochs_per_call_equal_one_epoch_per_call(fused_backend, shuffle):
    """Without validation/bar/schedule fit runs epochs in blocks (unshuffled, every epoch of a
    block reads one order); with validation_data it runs one epoch per call. The parameters and
    per-epoch losses must not depend on that."""
    X, y = blobs(90)  # 90 rows, batch 20: 4 full batches and one of 10 per epoch
    runs = []
    for validate in (False, True):
        with gk.use_backend(fused_backend):
            model = mlp([5, 6, 3], [nn.ReLU])
            hist = gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1,
                          momentum=0.9), X, y, epochs=5, batch_size=20, seed=3, progress=False,
                          shuffle=shuffle, validation_data=(X, y) if validate else None)
        runs.append((params_of(model), hist.loss))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1] and len(runs[0][1]) == 5


@pytest.mark.parametrize("fused_backend", FUSED_BACKENDS)
def test_one_epoch_perm_serves_every_epoch_of_a_call(fused_backend):
    """A perm of exactly one epoch is read by every epoch of the call: the same bits as that
    order repeated, steps beyond the first epoch included; a longer perm must hold whole epochs
    and the steps asked for."""
    X, y = blobs(90)
    order = np.random.default_rng(5).permutation(90).astype(np.int64)
    results = []
    for perm in (order, np.tile(order, 3)):
        model = mlp([5, 6, 3], [nn.ReLU])
        ws = [lin.weight.value for lin in model if isinstance(lin, nn.Linear)]
        bs = [lin.bias.value for lin in model if isinstance(lin, nn.Linear)]
        bufs_w = [np.zeros_like(w) for w in ws]
        bufs_b = [np.zeros_like(b) for b in bs]
        step_loss = np.zeros(15)  # 3 epochs of 5 steps (batch 20)
        ops = _backends.load(fused_backend)
        done = ops.mlp_epoch(ws, bs, bufs_w, bufs_b, ["relu", "none"], 0.01, "cross_entropy",
                             "mean", False, X, y, perm, 20, 0, 15, 0.1, 0.9, 0.0, False, 0.0,
                             True, step_loss)
        assert done == 15
        results.append((ws + bs + bufs_w + bufs_b, step_loss))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(results[0][1], results[1][1])
    if fused_backend == "cpp":
        model = mlp([5, 6, 3], [nn.ReLU])
        args = ([lin.weight.value for lin in model if isinstance(lin, nn.Linear)],
                [lin.bias.value for lin in model if isinstance(lin, nn.Linear)], [None, None],
                [None, None], ["relu", "none"], 0.01, "cross_entropy", "mean", False, X, y)
        with pytest.raises(ValueError, match="steps out of range"):
            _backends.load("cpp").mlp_epoch(*args, np.tile(order, 2), 20, 0, 11, 0.1, 0.0, 0.0,
                                              False, 0.0, True, np.zeros(11))
        with pytest.raises(ValueError, match="whole epochs"):
            _backends.load("cpp").mlp_epoch(*args, order[:50], 20, 0, 1, 0.1, 0.0, 0.0, False,
                                              0.0, True, np.zeros(1))


def test_divergence_in_a_later_epoch_of_a_block_names_that_epoch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X.sum(axis=1, keepdims=True)
    with gk.use_backend("cpp"):
        model = nn.Linear(2, 1, dtype=np.float64, seed=0)
        # lr slightly above the stability limit: the loss grows geometrically for many epochs
        with pytest.raises(TrainingDivergedError, match=r"at epoch (\d\d+), step 1 of 1"):
            gk.fit(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=1.2), X, y,
                   epochs=5000, batch_size=40, progress=False)
    assert np.isfinite(model.weight.value).all()


@pytest.mark.parametrize("fused", [True, False])
def test_fit_raises_when_the_last_update_overflows(fused):
    # The loss is finite at every step; only the final update overflows the weights.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 3)).astype(np.float32)
    model = nn.Sequential(nn.Linear(3, 1, seed=0))
    before = [p.value.copy() for p in model.parameters()]
    with pytest.raises(gk.train.TrainingDivergedError,
                       match=r"parameters .*non-finite .*epoch 1, step 1 of 1.*learning rate"):
        gk.fit(model, losses.MSELoss(), optim.SGD(model.parameters(), lr=1e36), X,
               1e3 * X[:, :1], epochs=1, batch_size=10, progress=False, fused=fused)
    for p, b in zip(model.parameters(), before):
        assert np.isfinite(p.value).all()
        np.testing.assert_array_equal(p.value, b)


# ---------------------------------------- fused first layer: transposed weight, sparse input
# With AVX-512 the fused epoch holds the first layer's weight transposed and skips exact zeros
# of the input when a batch has enough of them (csrc/kernels/mlp_first.hpp). Skipping a zero
# term leaves every sum bitwise unchanged, so sparse and dense modes must agree exactly.

def _sparse_blobs(n, d, k=3, zero_fraction=0.5, seed=0, dtype=np.float64):
    """Blobs whose features are exact zeros with the given probability (like image pixels)."""
    X, y = blobs(n, d=d, k=k, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    X[rng.random(X.shape) < zero_fraction] = 0
    return X, y


FIRST_LAYER_CASES = {
    # in/out not multiples of the vector width: masked tails in both directions
    "relu-momentum": (100, 45, lambda: nn.ReLU(), True, dict(momentum=0.9)),
    "tanh-nobias-nesterov-wd": (70, 67, lambda: nn.Tanh(), False,
                                dict(momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "sigmoid-plain-sgd": (64, 96, lambda: nn.Sigmoid(), True, dict()),
    "leaky-dampening": (96, 48, lambda: nn.LeakyReLU(0.1), True,
                        dict(momentum=0.5, dampening=0.2)),
    # 260 outputs: full 16-vector tiles (the small-batch gradient path) plus a masked tail
    "wide-relu": (40, 260, lambda: nn.ReLU(), True, dict(momentum=0.9)),
}


def _first_layer_model(case, dtype):
    d, h, act, bias, _ = FIRST_LAYER_CASES[case]
    return nn.Sequential(nn.Linear(d, h, bias=bias, dtype=dtype, seed=0), act(),
                         nn.Linear(h, 3, dtype=dtype, seed=1))


def _fit_first_layer(case, dtype, X, y, *, backend="cpp", fused=True, batch=13, epochs=2,
                     sparse_input="auto"):
    with gk.use_backend(backend):
        model = _first_layer_model(case, dtype)
        opt = optim.SGD(model.parameters(), **{"lr": 0.05, **FIRST_LAYER_CASES[case][4]})
        hist = gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=epochs,
                      batch_size=batch, seed=2, progress=False, fused=fused,
                      sparse_input=sparse_input)
    assert hist.fused is fused
    buffers = [b.copy() for b in opt.buffers if b is not None]  # the first layer's momentum too
    return params_of(model) + buffers, hist.loss


@pytest.fixture
def sparse_threshold():
    """Sets the zero fraction from which the sparse first layer skips zeros (a test-only hook of
    the compiled module; the public choice is fit(sparse_input=...)); restores it."""
    from gradkit import _core
    before = _core._mlp_sparse_skip_threshold()
    yield _core._set_mlp_sparse_skip_threshold
    _core._set_mlp_sparse_skip_threshold(before)


@pytest.mark.parametrize("zero_fraction", [0.0, 0.6])
@pytest.mark.parametrize("case", sorted(FIRST_LAYER_CASES))
def test_first_layer_sparse_and_dense_modes_give_the_same_bits(case, zero_fraction, dtype,
                                                               sparse_threshold):
    X, y = _sparse_blobs(120, FIRST_LAYER_CASES[case][0], zero_fraction=zero_fraction,
                         dtype=dtype)
    runs = []
    for threshold in (0.0, 2.0):  # the sparse layer always skips zeros / never skips them
        sparse_threshold(threshold)
        runs.append(_fit_first_layer(case, dtype, X, y, sparse_input=True))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("zero_fraction", [0.0, 0.6])
@pytest.mark.parametrize("case", sorted(FIRST_LAYER_CASES))
@pytest.mark.parametrize("sparse_input", [True, False, "auto"])
def test_first_layer_fused_equals_layer_by_layer(case, zero_fraction, dtype, sparse_input):
    """Every first-layer implementation (zero-skipping, dense, the cost model's choice) against
    the NumPy reference, on dense and sparse data."""
    X, y = _sparse_blobs(120, FIRST_LAYER_CASES[case][0], zero_fraction=zero_fraction,
                         dtype=dtype)
    got, got_loss = _fit_first_layer(case, dtype, X, y, sparse_input=sparse_input)
    want, want_loss = _fit_first_layer(case, dtype, X, y, backend="numpy", fused=False)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for a, b in zip(got, want):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(got_loss, want_loss, **tol)


@pytest.mark.parametrize("batch", [33, 129, 300, 600])
def test_first_layer_large_batches(batch, dtype, sparse_threshold):
    """Batches past the gradient's bit-loop size (32 rows), past the forward product's 128-row
    chunks (an odd one leaves a row without a partner), past the size where the gradient walks
    dz one column block at a time (300 rows of 260 outputs) and past its 512-row lists: the same
    bits in both modes, and the NumPy reference's result."""
    X, y = _sparse_blobs(1200, 40, zero_fraction=0.5, dtype=dtype)
    runs = []
    for threshold in (0.0, 2.0):
        sparse_threshold(threshold)
        runs.append(_fit_first_layer("wide-relu", dtype, X, y, batch=batch, sparse_input=True))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    want, want_loss = _fit_first_layer("wide-relu", dtype, X, y, backend="numpy", fused=False,
                                       batch=batch)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for a, b in zip(runs[0][0], want):
        np.testing.assert_allclose(a, b, **tol)
    np.testing.assert_allclose(runs[0][1], want_loss, **tol)


def test_first_layer_on_other_isas_matches_avx512():
    """Without AVX-512 the fused epoch keeps the weight as it is and uses the GEMM: same result
    within tolerance."""
    from gradkit import _core
    if _core.detected_isa() != "avx512":
        pytest.skip("no AVX-512 on this machine: only the GEMM path exists")
    X, y = _sparse_blobs(120, 100, zero_fraction=0.5)
    fast = _fit_first_layer("relu-momentum", np.float64, X, y)
    before = _core.active_isa()
    _core.force_isa("avx2")
    try:
        other = _fit_first_layer("relu-momentum", np.float64, X, y)
    finally:
        _core.force_isa(before)
    for a, b in zip(fast[0], other[0]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("n, d, hidden, batch", [
    (600, 200, 64, 300),   # 150 rows and 100 k per thread: every row has its partner
    (602, 201, 130, 301),  # 151 and 101: pairs fall differently than on one thread
])
def test_first_layer_is_bitwise_identical_for_1_and_2_threads(n, d, hidden, batch, dtype,
                                                              sparse_threshold):
    """Batches big enough that the first layer's products split over two threads (rows in the
    forward product, k in the gradient), in both modes. With odd halves each thread leaves a
    row (forward) and a row of Wᵀ (gradient) without a partner; 130 outputs reach the paired
    gradient tiles in both dtypes."""
    X, y = _sparse_blobs(n, d, zero_fraction=0.5, dtype=dtype)
    for threshold in (0.0, 2.0):
        sparse_threshold(threshold)
        for sparse_input in (True, False):
            assert_same_bits_for_thread_counts("cpp", X, y, [d, hidden, 3], batch,
                                               sparse_input=sparse_input)


def test_first_layer_divergence_restores_the_callers_weights():
    """A non-finite loss mid-epoch: the transposed weight is written back, and the model is
    restored to the start of the block (its three epochs run in one call, so fit's start)."""
    X, y = _sparse_blobs(64, 100, zero_fraction=0.5)
    with gk.use_backend("cpp"):
        model = _first_layer_model("relu-momentum", np.float64)
        start = params_of(model)
        opt = optim.SGD(model.parameters(), lr=1e6, momentum=0.9)
        with pytest.raises(TrainingDivergedError):
            gk.fit(model, losses.CrossEntropyLoss(), opt, 1e3 * X, y, epochs=3, batch_size=8,
                   progress=False)
    for p, s in zip(params_of(model), start):
        np.testing.assert_array_equal(p, s)


@pytest.mark.parametrize("fused_backend", FUSED_BACKENDS)
def test_batch_larger_than_data_is_one_full_batch(fused_backend):
    """batch_size above n_rows trains exactly as batch_size = n_rows (one step per epoch)."""
    X, y = blobs(300, d=100, dtype=np.float32)
    runs = []
    for batch in (300, 10**6):
        model = mlp([100, 64, 3], [nn.ReLU], np.float32)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        with gk.use_backend(fused_backend):
            hist = gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=3,
                          batch_size=batch, seed=1, progress=False)
        assert hist.fused
        runs.append((params_of(model), hist.loss))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


# ------------------------------------------- fused epoch: tiny products, mixed with BLAS ones
# The Numba epoch runs products below 4096 multiply-adds in its own loops: row by row for
# fewer than 4 rows, one output column over all rows (weights taken 4 at a time) otherwise, and
# weight gradients 4 columns at a time with the indices past the last column clamped. These
# shapes reach every edge of that: widths 1, 4, 5 and 9, batches of 1, 3, 4 and 29 (37 rows:
# every batch size leaves a partial last batch), and networks where one layer goes to BLAS
# and the next does not.
TINY_SHAPES = {
    "1-4-1": [1, 4, 1],
    "9-5-4": [9, 5, 4],
    "4-9-2": [4, 9, 2],
    "40-120-2": [40, 120, 2],  # layer 1 to BLAS from batch 1 on, layer 2 only at batch 29
}


@pytest.mark.parametrize("batch", [1, 3, 4, 29])
@pytest.mark.parametrize("shape", sorted(TINY_SHAPES))
@pytest.mark.parametrize("fused_backend", FUSED_BACKENDS)
def test_fused_tiny_products_equal_layer_by_layer(shape, batch, fused_backend, dtype):
    sizes = TINY_SHAPES[shape]
    rng = np.random.default_rng(7)
    X = (rng.standard_normal((37, sizes[0])) / np.sqrt(sizes[0])).astype(dtype)
    target = np.tanh(X[:, :1] + X[:, -1:]) * np.ones(sizes[-1], dtype=dtype)
    results = {}
    for name, fused in ((fused_backend, True), ("numpy", False)):
        with gk.use_backend(name):
            model = mlp(sizes, [nn.Tanh], dtype)
            opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
            hist = gk.fit(model, losses.MSELoss(), opt, X, target, epochs=2, batch_size=batch,
                          seed=3, progress=False, fused=fused)
            assert hist.fused is fused
            results[name] = (params_of(model), hist.loss)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for got, want in zip(results[fused_backend][0], results["numpy"][0]):
        np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(results[fused_backend][1], results["numpy"][1], **tol)


# -------------------------------------------- fused epoch with Adam / AdamW (cpp backend only)
# The epoch calls adam.hpp's adam_update, the formula the standalone adam_step uses; the
# reference is the NumPy backend's layer-by-layer fit (its own adam_step).

ADAM_FUSED = {
    "adam": (optim.Adam, dict(lr=0.01)),
    "adam-decay": (optim.Adam, dict(lr=0.01, weight_decay=0.05)),
    "adam-amsgrad": (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    "adamw": (optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    "adamw-amsgrad": (optim.AdamW, dict(lr=0.005, amsgrad=True)),
}

# Hidden activation x loss: every hidden activation the issue names and every fused loss.
ADAM_MODELS = {
    "relu-ce": (nn.ReLU, lambda: losses.CrossEntropyLoss()),
    "sigmoid-mse": (nn.Sigmoid, lambda: losses.MSELoss(half=True)),
    "tanh-l1-sum": (nn.Tanh, lambda: losses.L1Loss(reduction="sum")),
    "relu-bce-logits": (nn.ReLU, lambda: losses.BCEWithLogitsLoss()),
    "tanh-ce-sum": (nn.Tanh, lambda: losses.CrossEntropyLoss(reduction="sum")),
}


def _adam_fit(backend, fused, setting, model_case, dtype, X, y, batch_size, epochs=3,
              shuffle=True):
    cls, kw = ADAM_FUSED[setting]
    act, make_loss = ADAM_MODELS[model_case]
    loss_fn = make_loss()
    n_out = 3 if isinstance(loss_fn, losses.CrossEntropyLoss) else 2  # as _targets gives
    with gk.use_backend(backend):
        model = mlp([5, 8, n_out], [act], dtype)
        opt = cls(model.parameters(), **kw)
        hist = gk.fit(model, loss_fn, opt, X, _targets(loss_fn, X, y, dtype), epochs=epochs,
                      batch_size=batch_size, seed=4, shuffle=shuffle, progress=False,
                      fused=fused)
    assert hist.fused is fused
    return model, opt, hist


def _assert_same_state(got, want, tol):
    """Two optimizers' state_dicts: the same hyperparameters, keys and step counts exactly, the
    arrays within tol."""
    a, b = got.state_dict(), want.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert a["state"].keys() == b["state"].keys() and a["state"]
    for i in a["state"]:
        assert a["state"][i].keys() == b["state"][i].keys()
        assert a["state"][i]["step"] == b["state"][i]["step"]
        for key in a["state"][i]:
            if key != "step":
                np.testing.assert_allclose(a["state"][i][key], b["state"][i][key], **tol)


@pytest.mark.parametrize("batch_size", [32, 29])  # 203 rows: a partial last batch / 7 whole ones
@pytest.mark.parametrize("model_case", sorted(ADAM_MODELS))
@pytest.mark.parametrize("setting", sorted(ADAM_FUSED))
def test_fused_adam_equals_layer_by_layer(setting, model_case, batch_size, dtype):
    X, y = blobs(203, dtype=dtype)
    fused = _adam_fit("cpp", True, setting, model_case, dtype, X, y, batch_size)
    ref = _adam_fit("numpy", False, setting, model_case, dtype, X, y, batch_size)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    for got, want in zip(params_of(fused[0]), params_of(ref[0])):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    np.testing.assert_allclose(fused[2].loss, ref[2].loss, **tol)
    _assert_same_state(fused[1], ref[1], tol)
    assert fused[1].state_dict()["state"][0]["step"] == 3 * -(-203 // batch_size)
    # The parameters moved (a fused epoch that skipped the update cannot pass).
    assert not np.array_equal(params_of(fused[0])[0], params_of(mlp([5, 8], [], dtype))[0])


def test_fused_adam_state_dict_equals_cpp_layer_by_layer():
    """The same backend's two paths: same step counts and keys, moments within float64
    rounding (the gradients come from different loops, the update is the same function)."""
    X, y = blobs(150)
    runs = [_adam_fit("cpp", fused, "adam-amsgrad", "relu-ce", np.float64, X, y, 16)
            for fused in (True, False)]
    _assert_same_state(runs[0][1], runs[1][1], dict(rtol=1e-10, atol=1e-13))
    for got, want in zip(params_of(runs[0][0]), params_of(runs[1][0])):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("setting", ["adam-amsgrad", "adamw"])
def test_fused_adam_is_bitwise_identical_for_1_and_2_threads(setting, dtype):
    from gradkit import _core
    X, y = blobs(203, d=37, dtype=dtype)
    cls, kw = ADAM_FUSED[setting]
    before = gk.get_num_threads()
    out = []
    try:
        with kernels_parallel_from_tiny_sizes():
            for n in (1, 2):
                gk.set_num_threads(n)
                _core._reset_max_team()
                with gk.use_backend("cpp"):
                    model = mlp([37, 45, 19, 3], [nn.Tanh, nn.ReLU], dtype)
                    opt = cls(model.parameters(), **kw)
                    hist = gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=2,
                                  batch_size=32, seed=3, progress=False, fused=True)
                assert hist.fused and _core._max_team_since_reset() == n
                out.append(params_of(model) + [m.copy() for m in opt.exp_avg_sq])
    finally:
        gk.set_num_threads(before)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("setting", [
    (optim.Adam, dict()), (optim.Adam, dict(weight_decay=0.05, amsgrad=True)),
    (optim.AdamW, dict(weight_decay=0.1)), (optim.AdamW, dict(amsgrad=True))],
    ids=["adam", "adam-decay-amsgrad", "adamw", "adamw-amsgrad"])
def test_fused_adam_matches_torch_over_50_steps(setting):
    """gk.fit (fused, shuffle=False: batches in row order) against torch.optim on the same
    model, data and batches: 50 steps of 16 rows."""
    torch = pytest.importorskip("torch")
    cls, kw = setting
    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(800, 6)), rng.integers(0, 3, size=800)
    model = mlp([6, 10, 3], [nn.Tanh])
    w0 = params_of(model)
    tmodel = torch.nn.Sequential(torch.nn.Linear(6, 10).double(), torch.nn.Tanh(),
                                 torch.nn.Linear(10, 3).double())
    with torch.no_grad():
        for t, p in zip(tmodel.parameters(), model.parameters()):
            t.copy_(torch.from_numpy(p.value))
    opt = cls(model.parameters(), lr=0.01, **kw)
    with gk.use_backend("cpp"):
        hist = gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=1, batch_size=16,
                      shuffle=False, progress=False, fused=True)
    assert hist.fused
    topt = getattr(torch.optim, cls.__name__)(tmodel.parameters(), lr=0.01, **kw)
    for s in range(50):
        xb, yb = torch.from_numpy(X[s * 16:(s + 1) * 16]), torch.from_numpy(y[s * 16:(s + 1) * 16])
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(xb), yb).backward()
        topt.step()
    for mine, theirs, start in zip(model.parameters(), tmodel.parameters(), w0):
        np.testing.assert_allclose(mine.value, theirs.detach().numpy(), rtol=1e-9, atol=1e-11)
    assert max(np.abs(p.value - s).max() for p, s in zip(model.parameters(), w0)) > 0.05
    assert opt.state_dict()["state"][0]["step"] == topt.state_dict()["state"][0]["step"] == 50


@pytest.mark.parametrize("setting", ["adam-amsgrad", "adamw"])
def test_fused_adam_save_load_resume_gives_the_bits_of_one_fit(tmp_path, setting):
    X, y = blobs(130)
    cls, kw = ADAM_FUSED[setting]
    loss = losses.CrossEntropyLoss()

    def run(model, opt, **kwargs):
        with gk.use_backend("cpp"):
            hist = gk.fit(model, loss, opt, X, y, batch_size=16, seed=5, progress=False,
                          fused=True, **kwargs)
        assert hist.fused
        return hist

    straight = mlp([5, 7, 3], [nn.ReLU])
    straight_opt = cls(straight.parameters(), **kw)
    h4 = run(straight, straight_opt, epochs=4)
    first = mlp([5, 7, 3], [nn.ReLU])
    opt = cls(first.parameters(), **kw)
    h2 = run(first, opt, epochs=2)
    gk.save(first, tmp_path / "ckpt.npz", optimizer=opt)
    resumed, opt2 = gk.load(tmp_path / "ckpt.npz", optimizer=True)
    h_rest = run(resumed, opt2, epochs=4, initial_epoch=2)
    assert h2.loss + h_rest.loss == h4.loss
    for a, b in zip(resumed.parameters(), straight.parameters()):
        np.testing.assert_array_equal(a.value, b.value)
    a, b = opt2.state_dict(), straight_opt.state_dict()
    for i in b["state"]:
        assert a["state"][i]["step"] == b["state"][i]["step"] == 4 * 9
        for key in b["state"][i]:
            np.testing.assert_array_equal(a["state"][i][key], b["state"][i][key])


def test_fused_adam_with_sparse_input_runs_the_dense_first_layer():
    """The zero-skipping first layer fuses SGD's rule; with Adam the dense one runs, even when
    sparse_input=True asks for zero skipping, and the result is the layer-by-layer one."""
    from gradkit import _core
    X, y = _sparse_blobs(120, 40, zero_fraction=0.6, dtype=np.float32)
    runs = []
    for backend, fused, extra in (("cpp", True, dict(sparse_input=True)),
                                  ("numpy", False, {})):
        with gk.use_backend(backend):
            model = mlp([40, 30, 3], [nn.ReLU], np.float32)
            opt = optim.Adam(model.parameters(), lr=0.01)
            hist = gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=2, batch_size=13,
                          seed=2, progress=False, fused=fused, **extra)
        assert hist.fused is fused
        if fused:
            assert _core._mlp_last_first_layer() == 0
        runs.append(params_of(model))
    for got, want in zip(*runs):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_numba_fused_epoch_says_it_runs_sgd_only():
    model = mlp([3, 2], [])
    with gk.use_backend("numba"):
        with pytest.raises(ValueError, match="the 'numba' fused epoch runs SGD only, not Adam"):
            gk.fit(model, losses.MSELoss(), optim.Adam(model.parameters()), np.zeros((4, 3)),
                   np.zeros((4, 2)), fused=True, progress=False)
        hist = gk.fit(model, losses.MSELoss(), optim.Adam(model.parameters()), np.zeros((4, 3)),
                      np.zeros((4, 2)), progress=False)
    assert hist.fused is False


def test_fused_adam_divergence_restores_parameters_and_moments():
    """A NaN row in epoch 2 (check_finite=False): fit raises, and the model and Adam's state are
    those after epoch 1 (moments and step counts too), as the layer-by-layer path leaves them."""
    X, y = blobs(100)
    X_bad = X.copy()
    X_bad[70, 2] = np.nan
    model = mlp([5, 6, 3], [nn.ReLU])
    opt = optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    with gk.use_backend("cpp"):
        gk.fit(model, losses.CrossEntropyLoss(), opt, X, y, epochs=1, batch_size=16,
               shuffle=False, progress=False, fused=True)
        after_one, state_one = params_of(model), opt.state_dict()
        with pytest.raises(TrainingDivergedError, match="epoch 2, step 5 of 7"):
            gk.fit(model, losses.CrossEntropyLoss(), opt, X_bad, y, epochs=2, initial_epoch=1,
                   batch_size=16, shuffle=False, progress=False, fused=True, check_finite=False)
    for a, b in zip(params_of(model), after_one):
        np.testing.assert_array_equal(a, b)
    state = opt.state_dict()
    assert state["state"].keys() == state_one["state"].keys()
    for i, entry in state_one["state"].items():
        assert state["state"][i]["step"] == entry["step"] == 7
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            np.testing.assert_array_equal(state["state"][i][key], entry[key])


def test_fused_accepts_an_equal_dtype_object():
    """A float32 array whose dtype is equal to, but not the same object as, np.float32's (a view
    with an explicit native byte order) trains on the fused path like any other."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    Xv = X.view(np.dtype(np.float32).newbyteorder("="))
    assert Xv.dtype == X.dtype
    runs = []
    for data in (X, Xv):
        with gk.use_backend("cpp"):
            model = nn.Sequential(nn.Linear(5, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))
            gk.fit(model, losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                   data, y, epochs=2, seed=0, progress=False, fused=True)
        runs.append(params_of(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)

"""A table of bad inputs over every public entry point: each one gets a ValueError or TypeError
(or FileNotFoundError for a missing path) whose message names the argument and the rule, never
a crash, never a silently wrong answer, never a half-written file."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

import gradkit as gk
from gradkit import _config, descent, losses, nn, optim
from gradkit import functional as F
from gradkit.cluster import KMeans, kmeans_plusplus
from gradkit.datasets import load_idx, load_mnist

pytestmark = pytest.mark.filterwarnings("ignore::gradkit._validation.ConversionWarning")

GOOD = np.ones((4, 3), np.float32)
W = np.ones((2, 3), np.float32)
DTYPES = {"int64": np.int64, "bool": np.bool_, "float16": np.float16, "complex64": np.complex64,
          "object": object}
DTYPE_RULE = r"must have dtype float32 or float64, got"


def arr(dtype, shape=(4, 3)):
    return np.ones(shape, dtype=dtype)


def with_nan(shape=(4, 3), where=(2, 1), value=np.nan, dtype=np.float32):
    a = np.ones(shape, dtype)
    a[where] = value
    return a


def model(dtype=np.float32):
    return nn.Sequential(nn.Linear(3, 4, dtype=dtype, seed=0), nn.ReLU(),
                         nn.Linear(4, 2, dtype=dtype, seed=1))


def sgd(m, **kw):
    return optim.SGD(m.parameters(), lr=kw.pop("lr", 0.1), **kw)


def fit(X=GOOD, y=np.array([0, 1, 0, 1]), loss=None, opt=None, m=None, **kw):
    m = model() if m is None else m
    opt = sgd(m) if opt is None else opt
    return gk.fit(m, loss or losses.CrossEntropyLoss(), opt, X, y, progress=False, **kw)


def fit_mse(X=GOOD, y=np.ones((4, 2), np.float32), **kw):
    return fit(X, y, losses.MSELoss(), **kw)


# ------------------------------------------------------------------ dtype rows, per entry point

DTYPE_ENTRY_POINTS = {
    "F.relu": lambda a: F.relu(a),
    "F.sigmoid": lambda a: F.sigmoid(a),
    "F.tanh": lambda a: F.tanh(a),
    "F.softmax": lambda a: F.softmax(a),
    "F.linear x": lambda a: F.linear(a, W),
    "F.linear weight": lambda a: F.linear(GOOD, a[:2]),
    "F.mse_loss pred": lambda a: F.mse_loss(a, GOOD),
    "F.l1_loss pred": lambda a: F.l1_loss(a, GOOD),
    "F.bce_with_logits_loss logits": lambda a: F.bce_with_logits_loss(a, GOOD),
    "F.cross_entropy_loss logits": lambda a: F.cross_entropy_loss(a, np.zeros(4, np.int64)),
    "F.matmul a": lambda a: F.matmul(a, GOOD.T),
    "nn.Linear call": lambda a: nn.Linear(3, 2, seed=0)(a),
    "nn.ReLU call": lambda a: nn.ReLU()(a),
    "MSELoss call": lambda a: losses.MSELoss()(a, GOOD),
    "fit X": lambda a: fit(a),
    "predict X": lambda a: gk.predict(model(), a),
}
DTYPE_NAMES = {"F.linear weight": "weight", "F.mse_loss pred": "pred", "F.l1_loss pred": "pred",
               "F.bce_with_logits_loss logits": "logits", "F.cross_entropy_loss logits": "logits",
               "F.matmul a": "a", "MSELoss call": "pred"}


@pytest.mark.parametrize("dtype", list(DTYPES), ids=list(DTYPES))
@pytest.mark.parametrize("entry", list(DTYPE_ENTRY_POINTS), ids=list(DTYPE_ENTRY_POINTS))
def test_non_float_dtypes_are_refused_naming_the_argument(entry, dtype):
    name = DTYPE_NAMES.get(entry, "X" if entry in ("fit X", "predict X") else "x")
    with pytest.raises(TypeError, match=rf"^{name} {DTYPE_RULE} "):
        DTYPE_ENTRY_POINTS[entry](arr(DTYPES[dtype]))


# ------------------------------------------------------------------------------ the big table

def _idx_bytes(code=0x08, dims=(3, 2), payload=None):
    header = struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    if payload is None:
        payload = bytes(int(np.prod(dims)))
    return header + payload


CASES = {
    # ---- functional: shapes, empties, rules
    "linear x 1-D": (lambda: F.linear(np.ones(3, np.float32), W), ValueError, r"x must be 2-D"),
    "linear features": (lambda: F.linear(np.ones((4, 2), np.float32), W), ValueError,
                        r"x has 2 features but weight expects 3"),
    "linear bias length": (lambda: F.linear(GOOD, W, np.ones(5, np.float32)), ValueError,
                           r"bias has 5 entries but weight has 2"),
    "linear activation": (lambda: F.linear(GOOD, W, activation="gelu"), ValueError,
                          r"activation='gelu' must be one of"),
    "linear slope NaN": (lambda: F.linear(GOOD, W, activation="leaky_relu", slope=np.nan),
                         ValueError, r"slope=nan must be finite"),
    "linear_backward dy shape": (lambda: F.linear_backward(np.ones((4, 5), np.float32), GOOD, W),
                                 ValueError, r"dy must have shape \(batch, out_features\)"),
    "matmul inner": (lambda: F.matmul(GOOD, GOOD), ValueError, r"inner dimensions differ"),
    "softmax 1-D": (lambda: F.softmax(np.ones(3, np.float32)), ValueError, r"x must be 2-D"),
    "relu_backward shapes": (lambda: F.relu_backward(np.ones((4, 2), np.float32), GOOD),
                             ValueError, r"dy has shape \(4, 2\) but y has shape \(4, 3\)"),
    "mse mismatched": (lambda: F.mse_loss(GOOD, np.ones((4, 2), np.float32)), ValueError,
                       r"pred has shape \(4, 3\) but target has shape \(4, 2\)"),
    "mse empty": (lambda: F.mse_loss(np.ones((0, 3), np.float32), np.ones((0, 3), np.float32)),
                  ValueError, r"pred is empty"),
    "mse reduction": (lambda: F.mse_loss(GOOD, GOOD, reduction="avg"), ValueError,
                      r"reduction='avg' must be one of"),
    "bce pred > 1": (lambda: F.bce_loss(2 * GOOD, GOOD), ValueError,
                     r"pred must hold probabilities in \[0, 1\]"),
    "bce pred NaN": (lambda: F.bce_loss(with_nan(), GOOD), ValueError,
                     r"pred must hold probabilities in \[0, 1\].*NaN"),
    "ce label too big": (lambda: F.cross_entropy_loss(GOOD, np.array([0, 1, 3, 0])), ValueError,
                         r"labels contains 3; labels must be in \[0, 3\)"),
    "ce label negative": (lambda: F.cross_entropy_loss(GOOD, np.array([0, -1, 2, 0])),
                          ValueError, r"labels contains -1; labels must be in \[0, 3\)"),
    "ce label float": (lambda: F.cross_entropy_loss(GOOD, np.array([0.0, 1.5, 2.0, 0.0])),
                       TypeError, r"labels must hold integer class labels"),
    "ce label length": (lambda: F.cross_entropy_loss(GOOD, np.array([0, 1])), ValueError,
                        r"labels has 2 labels but the input has 4 rows"),
    "ce labels 2-D": (lambda: F.cross_entropy_loss(GOOD, np.zeros((4, 1), np.int64)),
                      ValueError, r"labels must be 1-D"),
    "ce empty logits": (lambda: F.cross_entropy_loss(np.ones((0, 3), np.float32),
                                                     np.zeros(0, np.int64)),
                        ValueError, r"logits must be non-empty"),
    # ---- sgd_step
    "sgd_step lr < 0": (lambda: F.sgd_step(GOOD.copy(), GOOD, -0.1), ValueError,
                        r"lr=-0.1 must be >= 0"),
    "sgd_step lr NaN": (lambda: F.sgd_step(GOOD.copy(), GOOD, np.nan), ValueError,
                        r"lr=nan must be finite"),
    "sgd_step momentum < 0": (lambda: F.sgd_step(GOOD.copy(), GOOD, 0.1, momentum=-1),
                              ValueError, r"momentum=-1.0 must be >= 0"),
    "sgd_step nesterov": (lambda: F.sgd_step(GOOD.copy(), GOOD, 0.1, nesterov=True), ValueError,
                          r"nesterov=True requires momentum > 0"),
    "sgd_step buffer": (lambda: F.sgd_step(GOOD.copy(), GOOD, 0.1, momentum=0.9), ValueError,
                        r"momentum_buffer is required"),
    "sgd_step int param": (lambda: F.sgd_step(arr(np.int64), GOOD, 0.1), TypeError,
                           r"param must have dtype float32 or float64"),
    "sgd_step strided param": (lambda: F.sgd_step(np.ones((4, 6), np.float32)[:, ::2], GOOD, 0.1),
                               ValueError, r"param must be a writeable C-contiguous array"),
    "sgd_step grad shape": (lambda: F.sgd_step(GOOD.copy(), W, 0.1), ValueError,
                            r"param has shape \(4, 3\) but grad has shape \(2, 3\)"),
    # ---- nn
    "Linear in_features 0": (lambda: nn.Linear(0, 2), ValueError, r"in_features=0 must be >= 1"),
    "Linear out_features float": (lambda: nn.Linear(3, 2.5), TypeError,
                                  r"out_features must be an int"),
    "Linear dtype int": (lambda: nn.Linear(3, 2, dtype=np.int32), TypeError,
                         r"dtype must be float32 or float64"),
    "Linear dtype float16": (lambda: nn.Linear(3, 2, dtype=np.float16), TypeError,
                             r"dtype must be float32 or float64"),
    "Linear call features": (lambda: nn.Linear(3, 2, seed=0)(np.ones((4, 2), np.float32)),
                             ValueError, r"x has 2 features but this Linear layer expects"),
    "Linear call 1-D": (lambda: nn.Linear(3, 2, seed=0)(np.ones(3, np.float32)), ValueError,
                        r"x must be 2-D"),
    "LeakyReLU slope NaN": (lambda: nn.LeakyReLU(np.nan), ValueError, r"slope=nan must be"),
    "Sequential non-module": (lambda: nn.Sequential(nn.ReLU(), "relu"), TypeError, r"Module"),
    # ---- losses
    "MSELoss reduction": (lambda: losses.MSELoss(reduction="avg"), ValueError,
                          r"reduction='avg' must be one of"),
    "CrossEntropyLoss label": (lambda: losses.CrossEntropyLoss()(GOOD, np.array([0, 1, 9, 0])),
                               ValueError, r"labels must be in \[0, 3\)"),
    # ---- optim.SGD
    "SGD lr < 0": (lambda: sgd(model(), lr=-1.0), ValueError, r"lr=-1.0 must be >= 0"),
    "SGD lr NaN": (lambda: sgd(model(), lr=np.nan), ValueError, r"lr=nan must be finite"),
    "SGD lr str": (lambda: sgd(model(), lr="0.1"), TypeError, r"lr must be a real number"),
    "SGD momentum < 0": (lambda: sgd(model(), momentum=-0.5), ValueError,
                         r"momentum=-0.5 must be >= 0"),
    "SGD nesterov without momentum": (lambda: sgd(model(), nesterov=True), ValueError,
                                      r"nesterov=True requires momentum > 0"),
    "SGD weight_decay < 0": (lambda: sgd(model(), weight_decay=-1), ValueError,
                             r"weight_decay=-1.0 must be >= 0"),
    "SGD no params": (lambda: optim.SGD([], lr=0.1), ValueError, r"params is empty"),
    "SGD not params": (lambda: optim.SGD([GOOD], lr=0.1), TypeError,
                       r"params\[0\] must be a gradkit.nn.Parameter"),
    # ---- fit / predict / evaluate
    "fit X 1-D": (lambda: fit(np.ones(4, np.float32)), ValueError, r"X must be 2-D"),
    "fit X features": (lambda: fit(np.ones((4, 5), np.float32)), ValueError,
                       r"X has 5 features but the model's first layer expects in_features=3"),
    "fit X empty": (lambda: fit(np.ones((0, 3), np.float32), np.zeros(0, np.int64)), ValueError,
                    r"X has no rows"),
    "fit lengths": (lambda: fit(GOOD, np.array([0, 1, 0])), ValueError,
                    r"X has 4 rows but y has 3; they must match"),
    "fit X NaN": (lambda: fit(with_nan()), ValueError,
                  r"X must be finite, but X\[2, 1\] \(row 2, column 1\) is nan.*"
                  r"check_finite=False"),
    "fit X inf": (lambda: fit(with_nan(value=-np.inf, where=(3, 0))), ValueError,
                  r"X must be finite, but X\[3, 0\] \(row 3, column 0\) is -inf"),
    "fit y NaN (regression)": (lambda: fit_mse(y=with_nan((4, 2), (1, 1))), ValueError,
                               r"y must be finite, but y\[1, 1\] \(row 1, column 1\) is nan"),
    "fit validation X NaN": (lambda: fit(validation_data=(with_nan(), np.zeros(4, np.int64))),
                             ValueError, r"validation_data\[0\] must be finite"),
    "fit label too big": (lambda: fit(y=np.array([0, 1, 2, 0])), ValueError,
                          r"y contains 2; labels must be in \[0, 2\)"),
    "fit label negative": (lambda: fit(y=np.array([0, -1, 1, 0])), ValueError,
                           r"y contains -1; labels must be in \[0, 2\)"),
    "fit label float": (lambda: fit(y=np.array([0.0, 1.0, 0.5, 1.0])), TypeError,
                        r"y must hold integer class labels"),
    "fit y shape": (lambda: fit_mse(y=np.ones((4, 3), np.float32)), ValueError,
                    r"y must have shape \(4, 2\)"),
    "fit epochs 0": (lambda: fit(epochs=0), ValueError, r"epochs=0 must be >= 1"),
    "fit batch_size 0": (lambda: fit(batch_size=0), ValueError, r"batch_size=0 must be >= 1"),
    "fit batch_size -3": (lambda: fit(batch_size=-3), ValueError, r"batch_size=-3 must be >= 1"),
    "fit batch_size float": (lambda: fit(batch_size=2.0), TypeError,
                             r"batch_size must be an int"),
    "fit other model's optimizer": (lambda: fit(opt=sgd(model())), ValueError,
                                    r"the optimizer does not update exactly the model's"),
    "fit optimizer over part": (lambda: (lambda m: fit(m=m, opt=optim.SGD(
        m.parameters()[:2], lr=0.1)))(model()), ValueError,
        r"the optimizer does not update exactly the model's parameters: the model has 4, the "
        r"optimizer 2, of which 2"),
    "fit reduction none": (lambda: fit(loss=losses.CrossEntropyLoss(reduction="none")),
                           ValueError, r"reduction='none' cannot drive training"),
    "predict NaN": (lambda: gk.predict(model(), with_nan(value=np.inf)), ValueError,
                    r"X must be finite, but X\[2, 1\] \(row 2, column 1\) is inf"),
    "predict batch_size 0": (lambda: gk.predict(model(), GOOD, batch_size=0), ValueError,
                             r"batch_size=0 must be >= 1"),
    "evaluate y NaN": (lambda: gk.evaluate(model(), losses.MSELoss(), GOOD,
                                           with_nan((4, 2), (0, 1))),
                       ValueError, r"y must be finite, but y\[0, 1\]"),
    # ---- descent.minimize
    "minimize lr < 0": (lambda: descent.minimize(lambda x: x * x, 1.0, lr=-0.1), ValueError,
                        r"lr=-0.1 must be > 0"),
    "minimize lr NaN": (lambda: descent.minimize(lambda x: x * x, 1.0, lr=np.nan), ValueError,
                        r"lr=nan must be finite"),
    "minimize max_iter < 0": (lambda: descent.minimize(lambda x: x * x, 1.0, max_iter=-1),
                              ValueError, r"max_iter=-1 must be >= 0"),
    "minimize tol < 0": (lambda: descent.minimize(lambda x: x * x, 1.0, tol=-1.0), ValueError,
                         r"tol=-1.0 must be >= 0"),
    "minimize x0 NaN": (lambda: descent.minimize(lambda x: x * x, np.nan), ValueError,
                        r"x0.*finite"),
    "minimize x0 complex": (lambda: descent.minimize(lambda x: x * x, 1j), TypeError, r"x0"),
    "minimize f": (lambda: descent.minimize("x**2", 1.0), TypeError, r"f must be callable"),
    "minimize f(x0) NaN": (lambda: descent.minimize(lambda x: np.nan, 1.0), ValueError,
                           r"f\(x0\) = nan must be finite"),
    # ---- k-means
    "KMeans n_clusters > n_samples": (lambda: KMeans(5, random_state=0).fit(GOOD), ValueError,
                                      r"n_clusters=5 must be <= n_samples=4"),
    "KMeans n_clusters 0": (lambda: KMeans(0).fit(GOOD), ValueError, r"n_clusters"),
    "KMeans X NaN": (lambda: KMeans(2).fit(with_nan()), ValueError, r"X contains NaN"),
    "KMeans X inf": (lambda: KMeans(2).fit(with_nan(value=np.inf)), ValueError,
                     r"X contains infinity"),
    "KMeans X 1-D": (lambda: KMeans(2).fit(np.ones(4)), ValueError, r"Expected 2D array"),
    "KMeans X empty": (lambda: KMeans(2).fit(np.ones((0, 3))), ValueError,
                       r"0 sample\(s\)"),
    "KMeans X complex": (lambda: KMeans(2).fit(arr(np.complex64)), ValueError, r"[Cc]omplex"),
    "KMeans X object": (lambda: KMeans(2).fit(np.array([["a", "b"]] * 3, dtype=object)),
                        ValueError, r"could not convert|float"),
    "KMeans max_iter 0": (lambda: KMeans(2, max_iter=0).fit(GOOD), ValueError, r"max_iter"),
    "KMeans tol < 0": (lambda: KMeans(2, tol=-1.0).fit(GOOD), ValueError, r"tol"),
    "KMeans predict features": (lambda: KMeans(2, random_state=0).fit(GOOD).predict(W[:, :2]),
                                ValueError, r"X has 2 features, but KMeans is expecting 3"),
    "KMeans predict NaN": (lambda: KMeans(2, random_state=0).fit(GOOD).predict(with_nan()),
                           ValueError, r"X contains NaN"),
    "KMeans negative weight": (lambda: KMeans(2).fit(GOOD, sample_weight=[1, -1, 1, 1]),
                               ValueError, r"Negative values in data passed to `sample_weight`"),
    "kmeans_plusplus n_clusters > n": (lambda: kmeans_plusplus(GOOD, 5), ValueError,
                                       r"n_clusters=5 must be <= n_samples=4"),
    "kmeans_plusplus n_clusters 0": (lambda: kmeans_plusplus(GOOD, 0), ValueError,
                                     r"n_clusters=0 must be >= 1"),
    "kmeans_plusplus n_clusters float": (lambda: kmeans_plusplus(GOOD, 2.0), TypeError,
                                         r"n_clusters must be an int"),
    "kmeans_plusplus NaN": (lambda: kmeans_plusplus(with_nan(), 2), ValueError,
                            r"X contains NaN"),
    "kmeans_plusplus trials": (lambda: kmeans_plusplus(GOOD, 2, n_local_trials=0), ValueError,
                               r"n_local_trials=0 must be an int >= 1"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_gets_an_error_naming_the_argument_and_the_rule(case):
    call, exc, match = CASES[case]
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("dtype", ["int64", "bool", "float16"])
def test_kmeans_converts_other_real_dtypes_as_scikit_learn_does(dtype):
    """scikit-learn's convention: integer, bool and float16 data are clustered as float64, so
    the answer equals the one for the float64 copy (never a silently different one)."""
    X = (np.arange(40).reshape(20, 2) % 7).astype(DTYPES[dtype])
    a = KMeans(3, random_state=0, n_init=1).fit(X)
    b = KMeans(3, random_state=0, n_init=1).fit(X.astype(np.float64))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_check_finite_false_lets_nan_through_and_divergence_names_the_bad_row():
    """With the check off, the NaN reaches training; the error names the first step whose
    mini-batch holds it (not a late step, not the learning rate) and restores the weights."""
    X = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    X[23, 2] = np.nan
    y = np.arange(50) % 2
    for backend in ("numpy", "cpp", "numba"):
        with gk.use_backend(backend):
            m = model()
            start = [p.value.copy() for p in m.parameters()]
            with pytest.raises(gk.train.TrainingDivergedError,
                               match=r"at epoch 1, step 3 of 5.*start of epoch 1.*X\[23, 2\] "
                                     r"\(row 23, column 2\) = nan \(check_finite=False"):
                gk.fit(m, losses.CrossEntropyLoss(), sgd(m, lr=1e-9), X, y, epochs=3,
                       batch_size=10, shuffle=False, progress=False, check_finite=False)
            for p, s in zip(m.parameters(), start):
                np.testing.assert_array_equal(p.value, s)


@pytest.mark.parametrize("fused", [True, False])
def test_an_optimizer_over_another_model_is_refused_on_every_path(fused):
    X = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    m, other = model(), model()
    with gk.use_backend("cpp"):
        with pytest.raises(ValueError, match="does not update exactly the model's parameters"):
            gk.fit(m, losses.CrossEntropyLoss(), sgd(other), X, np.arange(20) % 2,
                   progress=False, fused=fused)


# --------------------------------------------------------------------------- files: IDX, models

IDX_CASES = {
    "too short": (b"\x00\x00", r"too short for an IDX header"),
    "bad magic": (b"\x01\x02\x08\x01" + bytes(8), r"is not an IDX file"),
    "unknown type": (_idx_bytes(code=0x07), r"unknown IDX type code 0x07"),
    "zero dims": (struct.pack(">HBB", 0, 0x08, 0), r"declares 0 dimensions"),
    "truncated header": (struct.pack(">HBB", 0, 0x08, 3) + bytes(4), r"truncated header"),
    "truncated data": (_idx_bytes(payload=bytes(5)), r"dimensions \(3, 2\) of uint8 need"),
    "too much data": (_idx_bytes(payload=bytes(9)), r"dimensions \(3, 2\) of uint8 need"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(IDX_CASES), ids=list(IDX_CASES))
def test_corrupted_idx_files_are_refused_naming_the_file(tmp_path, case, gz):
    content, match = IDX_CASES[case]
    path = tmp_path / ("bad.idx.gz" if gz else "bad.idx")
    path.write_bytes(gzip.compress(content) if gz else content)
    with pytest.raises(ValueError, match=match) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_damaged_gzip_and_missing_idx_files(tmp_path):
    path = tmp_path / "x.idx.gz"
    path.write_bytes(gzip.compress(_idx_bytes())[:-6])
    with pytest.raises(ValueError, match=r"damaged gzip stream"):
        load_idx(path)
    with pytest.raises(FileNotFoundError, match=r"IDX file not found: .*nothing.idx"):
        load_idx(tmp_path / "nothing.idx")
    with pytest.raises(TypeError, match=r"path must be a str or os.PathLike"):
        load_idx(3)


def _write_mnist(folder, images, labels):
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(_idx_bytes(dims=images.shape,
                                                                payload=images.tobytes()))
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(dims=labels.shape,
                                                                payload=labels.tobytes()))


def test_load_mnist_refuses_inconsistent_folders(tmp_path):
    images = np.zeros((3, 2, 2), np.uint8)
    _write_mnist(tmp_path / "count", images, np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"3 train images but"):
        load_mnist(tmp_path / "count")
    _write_mnist(tmp_path / "digit", images, np.array([1, 10, 2], np.uint8))
    with pytest.raises(ValueError, match=r"labels contain 10; digits are 0..9"):
        load_mnist(tmp_path / "digit")
    with pytest.raises(FileNotFoundError, match=r"data folder not found"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"kind"):
        load_mnist(tmp_path / "digit", kind="validation")


def test_save_into_a_missing_folder_names_the_users_path(tmp_path):
    target = tmp_path / "missing" / "folder" / "m.npz"
    with pytest.raises(FileNotFoundError) as info:
        gk.save(model(), target)
    message = str(info.value)
    assert str(target) in message and "does not exist" in message
    assert ".tmp" not in message and ".gradkit-" not in message
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        gk.save(model(), tmp_path)
    with pytest.raises(TypeError, match=r"model must be a gradkit.nn.Module"):
        gk.save("model", tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"hello, I am text\n", b"\x93NUMPY garbage", bytes(100)],
                         ids=["text", "fake npy", "zeros"])
def test_loading_a_non_model_file_names_the_path_and_never_suggests_pickle(tmp_path, content):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    with pytest.raises(gk.io.ModelFileError) as info:
        gk.load(path)
    message = str(info.value)
    assert message.startswith(f"{path} is not a valid gradkit model file")
    assert "allow_pickle=" not in message.replace("allow_pickle=False", "")
    assert "unsafely" not in message and "pickle.load" not in message


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_model_files_are_refused(tmp_path, keep):
    path = tmp_path / "m.npz"
    gk.save(model(), path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(gk.io.ModelFileError, match=rf"^{path} is not a valid gradkit model"):
        gk.load(path)


# ------------------------------------------------------------- the _core bindings' own guards

def _mlp_args(**change):
    """A valid call of _core.mlp_epoch (one 3->2 layer, 4 rows, MSE, momentum), then changed."""
    f32 = np.float32
    args = dict(weights=[np.ones((2, 3), f32)], biases=[np.zeros(2, f32)],
                weight_bufs=[np.zeros((2, 3), f32)], bias_bufs=[np.zeros(2, f32)], acts=[0],
                slope=0.01, loss=1, mean=True, half=False, X=np.ones((4, 3), f32),
                labels=None, targets=np.ones((4, 2), f32), perm=np.arange(4, dtype=np.int64),
                batch_size=2, first_step=0, n_steps=2, lr=0.1, momentum=0.9, dampening=0.0,
                nesterov=False, weight_decay=0.0, first=True, step_loss=np.zeros(2))
    args.update(change)
    return args


# Valid Adam moments for _mlp_args' one 3->2 layer (exp_avg, exp_avg_sq of weight and bias).
_ADAM_OK = dict(weight_moments=[[np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32)]],
                bias_moments=[[np.zeros(2, np.float32), np.zeros(2, np.float32)]])

MLP_GUARDS = {
    "layer count": (dict(biases=[]), ValueError, r"one entry per layer"),
    "no layers": (dict(weights=[], biases=[], weight_bufs=[], bias_bufs=[], acts=[]),
                  ValueError, r"one entry per layer"),
    "weight dtype": (dict(weights=[np.ones((2, 3))]), TypeError,
                     r"weights\[0\] must be a C-contiguous numpy array"),
    "weight ndim": (dict(weights=[np.ones(6, np.float32)]), ValueError,
                    r"weights\[0\] must be 2-D"),
    "layer chain": (dict(weights=[np.ones((2, 3), np.float32), np.ones((1, 5), np.float32)],
                         biases=[None, None], weight_bufs=[None, None], bias_bufs=[None, None],
                         acts=[0, 0], momentum=0.0), ValueError, r"in_features of layer 1"),
    "activation code": (dict(acts=[99]), ValueError, r"acts\[0\]=99 is not an activation code"),
    "bias size": (dict(biases=[np.zeros(3, np.float32)]), ValueError, r"size of biases\[0\]"),
    "weight buffer size": (dict(weight_bufs=[np.zeros((3, 3), np.float32)]), ValueError,
                           r"size of weight_bufs\[0\]"),
    "bias buffer size": (dict(bias_bufs=[np.zeros(5, np.float32)]), ValueError,
                         r"size of bias_bufs\[0\]"),
    "X dtype": (dict(X=np.ones((4, 3), np.int32)), TypeError,
                r"X must have dtype float32 or float64"),
    "X columns": (dict(X=np.ones((4, 5), np.float32)), ValueError, r"X columns"),
    "perm dtype": (dict(perm=np.arange(4, dtype=np.int32)), TypeError,
                   r"perm must be a C-contiguous int64 array"),
    "step_loss dtype": (dict(step_loss=np.zeros(2, np.float32)), TypeError,
                        r"step_loss must be a C-contiguous float64 array"),
    "perm whole epochs": (dict(perm=np.arange(3, dtype=np.int64)), ValueError, r"whole epochs"),
    "steps out of range": (dict(n_steps=5, step_loss=np.zeros(5),
                                perm=np.arange(8, dtype=np.int64) % 4),
                           ValueError, r"steps out of range"),
    "batch size 0": (dict(batch_size=0), ValueError, r"steps out of range"),
    "step_loss size": (dict(step_loss=np.zeros(5)), ValueError, r"step_loss size"),
    "perm rows": (dict(perm=np.array([0, 1, 2, 4], np.int64)), ValueError,
                  r"perm must hold row indices in \[0, 4\)"),
    "loss code": (dict(loss=9), ValueError, r"loss=9 is not a loss code"),
    "labels dtype": (dict(loss=0, labels=np.zeros(4, np.int32)), TypeError,
                     r"labels must be a C-contiguous int64 array"),
    "labels count": (dict(loss=0, labels=np.zeros(3, np.int64)), ValueError,
                     r"number of labels"),
    "labels range": (dict(loss=0, labels=np.array([0, 1, 2, 0], np.int64)), ValueError,
                     r"labels must be in \[0, 2\)"),
    "targets size": (dict(targets=np.ones((4, 3), np.float32)), ValueError, r"size of targets"),
    # Adam on the fused epoch (optimizer=1): its codes, scalars and moment arrays.
    "optimizer code": (dict(optimizer=5), ValueError, r"optimizer=5 is not an optimizer code"),
    "adam beta range": (dict(optimizer=1, beta2=1.0, **_ADAM_OK), ValueError,
                        r"beta1 and beta2 must be in \[0, 1\)"),
    "adam step": (dict(optimizer=1, adam_step=-1, **_ADAM_OK), ValueError,
                  r"adam_step=-1 must be >= 0"),
    "adam moments per layer": (dict(optimizer=1, weight_moments=[], bias_moments=[]), ValueError,
                               r"weight_moments and bias_moments must have one entry per layer"),
    "adam moment count": (dict(optimizer=1, amsgrad=True, **_ADAM_OK), ValueError,
                          r"weight_moments\[0\] must be a list of 3 arrays"),
    "adam moment dtype": (dict(optimizer=1, weight_moments=[[np.zeros((2, 3)),
                                                             np.zeros((2, 3), np.float32)]],
                               bias_moments=_ADAM_OK["bias_moments"]), TypeError,
                          r"weight_moments\[0\]\[0\] must be a C-contiguous numpy array"),
    "adam moment size": (dict(optimizer=1, weight_moments=_ADAM_OK["weight_moments"],
                              bias_moments=[[np.zeros(2, np.float32), np.zeros(3, np.float32)]]),
                         ValueError, r"size of bias_moments\[0\]\[1\]"),
}


def test_the_mlp_binding_baseline_call_is_valid():
    from gradkit import _core

    args = _mlp_args()
    assert _core.mlp_epoch(**args) == 2
    assert np.isfinite(args["step_loss"]).all() and (args["step_loss"] > 0).all()
    moments = {k: [[a.copy() for a in ms] for ms in v] for k, v in _ADAM_OK.items()}
    adam = _mlp_args(optimizer=1, adam_step=3, **moments)  # the Adam rows' baseline
    assert _core.mlp_epoch(**adam) == 2 and (adam["weight_moments"][0][1] > 0).all()


@pytest.mark.parametrize("guard", list(MLP_GUARDS), ids=list(MLP_GUARDS))
def test_the_mlp_binding_refuses_bad_arguments_without_touching_them(guard):
    from gradkit import _core

    change, exc, match = MLP_GUARDS[guard]
    args = _mlp_args(**change)
    before = [w.copy() for w in args["weights"]]
    with pytest.raises(exc, match=match):
        _core.mlp_epoch(**args)
    for w, b in zip(args["weights"], before):
        np.testing.assert_array_equal(w, b)


def test_backend_lacking_an_op_says_so():
    # cython has no fused epoch: fused=True must refuse by name, not switch backend silently.
    from gradkit import backends

    try:
        backends.load("cython")
    except ImportError:
        pytest.skip("the Cython backend is not built")
    with gk.use_backend("cython"):
        m = model()
        with pytest.raises(ValueError, match=r"fused=True but this model cannot run fused: the "
                                             r"'cython' backend has no fused epoch"):
            gk.fit(m, losses.CrossEntropyLoss(), sgd(m), GOOD, np.array([0, 1, 0, 1]),
                   fused=True, progress=False)

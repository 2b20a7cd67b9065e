"""gk.datasets: watermelon and blobs generators, IDX/MNIST loading, embedded digits."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

import gradkit as gk
from gradkit.datasets import (
    WATERMELON_COEF,
    load_digits,
    load_idx,
    load_mnist,
    make_blobs,
    make_watermelon,
    watermelon_features,
)

FASHION = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------------------- watermelon


def fit_watermelon_by_descent(X, y):
    """Full-batch gradient descent on the half mean squared error over [x1, x2², x3³, 1]."""
    phi = np.column_stack([watermelon_features(X), np.ones(len(y))])
    n = len(y)

    def loss(w):
        r = phi @ w - y
        return 0.5 * float(r @ r) / n

    def grad(w):
        return phi.T @ (phi @ w - y) / n

    return gk.descent.minimize(loss, np.zeros(4), grad=grad, lr=0.5, max_iter=5000, tol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_descent_recovers_watermelon_coefficients(seed):
    X, y = make_watermelon(500, seed=seed)
    res = fit_watermelon_by_descent(X, y)
    assert res.converged
    truth = [WATERMELON_COEF[k] for k in "abcd"]
    np.testing.assert_allclose(res.x, truth, atol=1e-2)


def test_watermelon_formula_without_noise():
    X, y = make_watermelon(50, seed=3, noise=0.0)
    a, b, c, d = (WATERMELON_COEF[k] for k in "abcd")
    np.testing.assert_allclose(y, a * X[:, 0] + b * X[:, 1] ** 2 + c * X[:, 2] ** 3 + d)
    assert X.shape == (50, 3) and y.shape == (50,) and X.dtype == np.float64
    assert np.all(np.abs(X) <= 1)


def test_watermelon_is_reproducible_and_seed_dependent():
    X1, y1 = make_watermelon(20, seed=7)
    X2, y2 = make_watermelon(20, seed=7)
    X3, _ = make_watermelon(20, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)
    assert make_watermelon(5, seed=0, dtype=np.float32)[0].dtype == np.float32


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(n=0), ValueError, "n=0 must be >= 1"),
    (dict(n=2.5), TypeError, "n must be an int"),
    (dict(n=5, noise=-1.0), ValueError, "noise"),
    (dict(n=5, seed="x"), TypeError, "seed"),
    (dict(n=5, dtype=np.int32), TypeError, "dtype"),
])
def test_watermelon_validates(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_watermelon(**kwargs)


# ----------------------------------------------------------------------------------- blobs


def test_blobs_shapes_labels_and_centres():
    X, y, centers = make_blobs(300, 4, 3, seed=0, spread=0.5, return_centers=True)
    assert X.shape == (300, 3) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [75, 75, 75, 75]
    assert centers.shape == (4, 3)
    # Each point is closest to its own centre when the blobs are tight.
    d = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
    assert (d.argmin(1) == y).mean() > 0.95
    X2, y2 = make_blobs(300, 4, 3, seed=0, spread=0.5)  # scikit-learn's (X, y) by default
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_blobs_validates():
    with pytest.raises(ValueError, match="k=5 must be <= n=4"):
        make_blobs(4, 5, 2)
    with pytest.raises(ValueError, match="dims=0"):
        make_blobs(10, 2, 0)
    with pytest.raises(TypeError, match="return_centers must be a bool"):
        make_blobs(10, 2, 2, return_centers="yes")


# ------------------------------------------------------------------------------------- IDX


def write_idx(path, arr, code=None, gz=False):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
             np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
    code = codes[arr.dtype] if code is None else code
    header = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    data = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    if gz:
        data = gzip.compress(data)
    Path(path).write_bytes(data)
    return path


@pytest.mark.parametrize("dt", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_load_idx_round_trip(tmp_path, dt, gz):
    arr = (np.arange(24).reshape(2, 3, 4) - (0 if np.dtype(dt).kind == "u" else 7)).astype(dt)
    out = load_idx(write_idx(tmp_path / "a.idx", arr, gz=gz))
    assert out.dtype == np.dtype(dt) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1  # writable


def test_load_idx_rejects_truncated_file(tmp_path):
    path = write_idx(tmp_path / "t.idx", np.ones((4, 5), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"t\.idx: file truncated.*need 20 bytes.*found 17"):
        load_idx(path)


def test_load_idx_rejects_trailing_bytes(tmp_path):
    path = write_idx(tmp_path / "t.idx", np.ones((4, 5), np.uint8))
    path.write_bytes(path.read_bytes() + b"xx")
    with pytest.raises(ValueError, match="trailing bytes"):
        load_idx(path)


def test_load_idx_rejects_foreign_and_bad_headers(tmp_path):
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ValueError, match=r"picture\.png is not an IDX file"):
        load_idx(png)
    bad_code = write_idx(tmp_path / "code.idx", np.ones(3, np.uint8), code=0x07)
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        load_idx(bad_code)
    short = tmp_path / "short.idx"
    short.write_bytes(b"\0\0\x08\x03\0\0\0\x02")
    with pytest.raises(ValueError, match="truncated header"):
        load_idx(short)
    tiny = tmp_path / "tiny.idx"
    tiny.write_bytes(b"\0\0")
    with pytest.raises(ValueError, match="too short"):
        load_idx(tiny)
    broken_gz = tmp_path / "broken.gz"
    payload = gzip.compress(np.random.default_rng(0).bytes(5000))
    broken_gz.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match="damaged gzip"):
        load_idx(broken_gz)


def test_load_idx_missing_and_wrong_type(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        load_idx(tmp_path / "nope.idx")
    with pytest.raises(ValueError, match="is a folder"):
        load_idx(tmp_path)
    with pytest.raises(TypeError, match="path must be"):
        load_idx(3)


def write_fake_mnist(folder, n=6, spelling="{p}-{w}-idx{r}-ubyte", gz=False, kind="train"):
    prefix = "train" if kind == "train" else "t10k"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(folder / (spelling.format(p=prefix, w="images", r=3) + suffix), images, gz=gz)
    write_idx(folder / (spelling.format(p=prefix, w="labels", r=1) + suffix), labels, gz=gz)
    return images, labels


@pytest.mark.parametrize("spelling", ["{p}-{w}-idx{r}-ubyte", "{p}-{w}.idx{r}-ubyte"])
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("kind", ["train", "test"])
def test_load_mnist_spellings(tmp_path, spelling, gz, kind):
    images, labels = write_fake_mnist(tmp_path, spelling=spelling, gz=gz, kind=kind)
    X, y = load_mnist(tmp_path, kind=kind)
    assert X.shape == (6, 784) and X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_allclose(X, images.reshape(6, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert 0.0 <= X.min() and X.max() <= 1.0


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no images file"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind='val' must be one of"):
        load_mnist(tmp_path, kind="val")
    write_fake_mnist(tmp_path, n=6)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="6 train images but 5 labels"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(6, 12, np.uint8))
    with pytest.raises(ValueError, match="labels contain 12"):
        load_mnist(tmp_path)


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed here")
def test_fashion_mnist_test_set():
    X, y = load_mnist(FASHION, kind="test")
    assert X.shape == (10000, 784) and X.dtype == np.float32
    assert np.bincount(y).tolist() == [1000] * 10
    assert X.min() == 0.0 and X.max() == 1.0


# ---------------------------------------------------------------------------------- digits


def test_load_digits_all_and_split():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    assert X.min() == 0.0 and X.max() == 1.0
    Xtr, ytr = load_digits(split="train")
    Xte, yte = load_digits(split="test")
    assert len(ytr) + len(yte) == 1797 and len(yte) == 359
    # Stratified: every class is about 20% test.
    frac = np.bincount(yte, minlength=10) / np.bincount(y, minlength=10)
    assert np.all(np.abs(frac - 0.2) < 0.01)
    # The split is a partition of the full set.
    np.testing.assert_array_equal(np.bincount(ytr) + np.bincount(yte), np.bincount(y))
    np.testing.assert_array_equal(np.sort(np.concatenate([Xtr, Xte]).sum(1)), np.sort(X.sum(1)))
    Xte2, yte2 = load_digits(split="test")
    np.testing.assert_array_equal(Xte, Xte2)


def test_load_digits_matches_scikit_learn():
    datasets = pytest.importorskip("sklearn.datasets")
    ref = datasets.load_digits()
    X, y = load_digits(dtype=np.float64)
    np.testing.assert_array_equal(X * 16, ref.data)
    np.testing.assert_array_equal(y, ref.target)


def test_load_digits_images_and_validation():
    X, _ = load_digits(split="test", images=True, dtype=np.float64)
    assert X.shape == (359, 8, 8) and X.dtype == np.float64
    with pytest.raises(ValueError, match="split='val' must be one of"):
        load_digits(split="val")
    with pytest.raises(TypeError, match="dtype"):
        load_digits(dtype=np.int64)


def test_digits_file_is_package_data():
    from importlib import resources

    assert resources.files("gradkit.datasets").joinpath("data/digits.npz").is_file()
    assert resources.files("gradkit.datasets").joinpath("data/README.md").is_file()

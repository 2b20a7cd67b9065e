"""Synthetic data for the course: the watermelon regression and Gaussian blobs for k-means."""
from __future__ import annotations

import numpy as np

from gradkit._validation import positive_int, real_number

__all__ = ["WATERMELON_COEF", "make_watermelon", "watermelon_features", "make_blobs"]

# The true coefficients of the watermelon quality formula f(x) = a*x1 + b*x2² + c*x3³ + d.
WATERMELON_COEF = {"a": 3.0, "b": -2.0, "c": 1.5, "d": 4.0}


def _seed(seed):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    return np.random.default_rng(seed)


def _float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def make_watermelon(n: int = 200, *, seed: int | None = None, noise: float = 0.01,
                    dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """The course's first task: watermelon quality from three measurements.

    X (n, 3) holds x1, x2, x3 drawn uniformly from [-1, 1]; y (n,) is
    ``a*x1 + b*x2² + c*x3³ + d + noise * N(0, 1)`` with the true coefficients in
    ``WATERMELON_COEF`` (a=3, b=-2, c=1.5, d=4). The formula is linear in the features
    ``[x1, x2², x3³]`` (see ``watermelon_features``), so gradient descent on a mean squared error
    recovers a, b, c, d.
    """
    n = positive_int(n, "n")
    noise = real_number(noise, "noise", low=0.0)
    dtype = _float_dtype(dtype)
    rng = _seed(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 3))
    k = WATERMELON_COEF
    y = k["a"] * X[:, 0] + k["b"] * X[:, 1] ** 2 + k["c"] * X[:, 2] ** 3 + k["d"]
    y = y + noise * rng.standard_normal(n)
    return X.astype(dtype), y.astype(dtype)


def watermelon_features(X) -> np.ndarray:
    """``[x1, x2², x3³]`` for each row of the watermelon inputs X (n, 3)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != 3:
        raise ValueError(f"X must have shape (n, 3), got {X.shape}")
    return np.stack([X[:, 0], X[:, 1] ** 2, X[:, 2] ** 3], axis=1)


def make_blobs(n: int = 300, k: int = 3, dims: int = 2, *, seed: int | None = None,
               spread: float = 1.0, box: float = 10.0, dtype=np.float32,
               return_centers: bool = False) -> tuple[np.ndarray, ...]:
    """n points around k random centres in ``dims`` dimensions (for k-means).

    Centres are uniform in [-box, box]^dims; each point is its centre plus ``spread * N(0, I)``;
    points are split as evenly as possible between the centres. Returns ``(X, y)`` as
    scikit-learn does: X (n, dims) and the true labels y int64 (n,); with
    ``return_centers=True``, ``(X, y, centers)`` with the centres (k, dims).
    """
    n = positive_int(n, "n")
    k = positive_int(k, "k")
    dims = positive_int(dims, "dims")
    if k > n:
        raise ValueError(f"k={k} must be <= n={n}")
    spread = real_number(spread, "spread", low=0.0)
    box = real_number(box, "box", low=0.0, low_open=True)
    dtype = _float_dtype(dtype)
    if not isinstance(return_centers, (bool, np.bool_)):
        raise TypeError(f"return_centers must be a bool, got {type(return_centers).__name__}")
    rng = _seed(seed)
    centers = rng.uniform(-box, box, size=(k, dims))
    y = rng.permutation(np.arange(n) % k).astype(np.int64)
    X = centers[y] + spread * rng.standard_normal((n, dims))
    if return_centers:
        return X.astype(dtype), y, centers.astype(dtype)
    return X.astype(dtype), y

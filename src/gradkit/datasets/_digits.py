"""The embedded handwritten digits (8x8, UCI / scikit-learn; see data/README.md)."""
from __future__ import annotations

from importlib import resources

import numpy as np

from gradkit._validation import choice

__all__ = ["load_digits"]


def _raw() -> dict[str, np.ndarray]:
    with resources.files("gradkit.datasets").joinpath("data/digits.npz").open("rb") as fh:
        with np.load(fh) as npz:
            return {name: npz[name] for name in npz.files}


def load_digits(split: str | None = None, *, dtype=np.float32,
                images: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """1,797 real handwritten digits shipped with gradkit: X scaled to [0, 1], y int64 in 0..9.

    split=None returns all of them; "train" (1,438) and "test" (359) return a fixed,
    class-stratified 80/20 split that is the same everywhere. X is (n, 64) in ``dtype``, or
    (n, 8, 8) with ``images=True``. Source: UCI Optical Recognition of Handwritten Digits,
    E. Alpaydin and C. Kaynak, CC BY 4.0 (via scikit-learn's bundled copy).
    """
    choice(split, "split", (None, "train", "test"))
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    raw = _raw()
    keep = slice(None) if split is None else (raw["test_mask"] if split == "test"
                                              else ~raw["test_mask"])
    pix = raw["images"][keep].astype(dtype)
    pix /= dtype.type(16)  # the pixel counts are 0..16
    X = pix if images else pix.reshape(pix.shape[0], 64)
    return X, raw["labels"][keep].astype(np.int64)

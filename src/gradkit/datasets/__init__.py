"""Data for the course, with no download at run time.

- ``load_digits()``: a small real handwritten-digits set (8x8) shipped inside the package
- ``make_watermelon()``: the watermelon-quality regression, with known true coefficients
- ``make_blobs()``: Gaussian clusters for k-means
- ``load_idx()`` / ``load_mnist()``: MNIST-format (IDX) files from a folder, raw or .gz
"""
from gradkit.datasets._digits import load_digits
from gradkit.datasets._generators import (
    WATERMELON_COEF,
    make_blobs,
    make_watermelon,
    watermelon_features,
)
from gradkit.datasets.idx import load_idx, load_mnist

__all__ = ["WATERMELON_COEF", "load_digits", "load_idx", "load_mnist", "make_blobs",
           "make_watermelon", "watermelon_features"]

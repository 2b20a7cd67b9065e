"""IDX files (the MNIST format): raw or gzip-compressed, checked before they are trusted.

An IDX file is a 4-byte magic number ``0x00 0x00 <type code> <number of dims>``, then each
dimension as a big-endian uint32, then the values, big-endian, C order.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Union

import numpy as np

from gradkit._validation import choice

__all__ = ["load_idx", "load_mnist", "IDX_TYPES"]

PathLike = Union[str, "os.PathLike[str]"]

# type code -> big-endian dtype, as the format defines it
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"IDX file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an IDX file")
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: damaged gzip stream ({exc})") from None
    return path.read_bytes()


def load_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (raw, or gzip-compressed: detected from its content) into an array.

    Returns a native-endian array with the file's dtype and shape. Raises ValueError, naming the
    path, when the magic number, the type code or the dimensions are wrong, or when the payload
    is shorter or longer than the dimensions say (a truncated download, say).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file: magic number starts with "
                         f"{data[:2].hex()} instead of 0000")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x} (expected one of "
                         f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)})")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated header ({len(data)} bytes, {header} needed for "
                         f"{ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header
    if payload != expected:
        what = "truncated" if payload < expected else "has trailing bytes"
        raise ValueError(f"{path}: file {what}: dimensions {shape} of {dtype.name} need "
                         f"{expected} bytes of data, found {payload}")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # native order, and a writable copy


def _find(folder: Path, prefix: str, what: str, rank: int) -> Path:
    """The first existing name among MNIST's spellings: a-b-idx3-ubyte, a-b.idx3-ubyte (+ .gz)."""
    stem = f"{prefix}-{what}"
    names = [f"{stem}-idx{rank}-ubyte", f"{stem}.idx{rank}-ubyte"]
    candidates = [n + ext for n in names for ext in ("", ".gz")]
    for name in candidates:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {what} file in {folder}: looked for {', '.join(candidates)}")


def load_mnist(folder: PathLike, kind: str = "train", *,
               dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """MNIST or Fashion-MNIST from the IDX files in ``folder``.

    kind="train" reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``, kind="test"
    reads the ``t10k-`` files; the ``train-images.idx3-ubyte`` spelling and ``.gz`` files are
    accepted too. Returns X (n, rows * cols) scaled to [0, 1] in ``dtype`` and y int64 (n,).
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a str or os.PathLike, got {type(folder).__name__}")
    choice(kind, "kind", ("train", "test"))
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder not found: {folder}")
    prefix = "train" if kind == "train" else "t10k"
    images = load_idx(_find(folder, prefix, "images", 3))
    labels = load_idx(_find(folder, prefix, "labels", 1))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{folder}: {prefix} images must be uint8 (n, rows, cols), "
                         f"got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{folder}: {prefix} labels must be uint8 (n,), "
                         f"got {labels.dtype} {labels.shape}")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"{folder}: {images.shape[0]} {prefix} images but "
                         f"{labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{folder}: {prefix} labels contain {labels.max()}; digits are 0..9")
    X = images.reshape(images.shape[0], -1).astype(dtype)
    X /= dtype.type(255)
    return X, labels.astype(np.int64)

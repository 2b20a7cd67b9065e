"""Save and load models as ``.npz``: the parameters plus a JSON description of the architecture.

The write is atomic (a temporary file in the same folder, then ``os.replace``), so a crash never
leaves half a model behind. Loading never executes code (``allow_pickle=False``, no eval): the
architecture is rebuilt from a whitelist of layer types, and a SHA-256 of every array, stored in
the description, catches a file whose numbers were changed after saving.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from gradkit import nn as _nn
from gradkit.backends._spec import ACTIVATION_LAYERS

__all__ = ["save", "load", "ModelFileError"]

FORMAT = "gradkit-model"
VERSION = 1
_ARCH_KEY = "__gradkit_architecture__"
# Layers without arguments, by class name (LeakyReLU, with its slope, is handled on its own).
_ACTIVATIONS = {layer: getattr(_nn, layer) for layer in ACTIVATION_LAYERS if layer != "LeakyReLU"}


class ModelFileError(ValueError):
    """The file is not a readable gradkit model (truncated, foreign or tampered with)."""


def _describe(layer):
    if isinstance(layer, _nn.Linear):
        return {"type": "Linear", "in_features": layer.in_features,
                "out_features": layer.out_features, "bias": layer.bias is not None,
                "dtype": str(layer.weight.value.dtype)}
    if isinstance(layer, _nn.LeakyReLU):
        return {"type": "LeakyReLU", "slope": layer.slope}
    for name, cls in _ACTIVATIONS.items():
        if type(layer) is cls:
            return {"type": name}
    raise TypeError(f"cannot save a {type(layer).__name__} layer: only Linear, ReLU, LeakyReLU, "
                    "Sigmoid, Tanh, Softmax and Identity are supported")


def _digest(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def save(model, path, *, optimizer=None) -> None:
    """Write ``model`` (a Sequential of supported layers, or one layer) to ``path`` atomically.

    The file is written exactly at ``path`` (no suffix is added); ``.npz`` is the convention.
    ``optimizer`` (built on ``model.parameters()``) stores its state beside the model, so that
    ``gk.load(path, optimizer=True)`` resumes training where it stopped.
    """
    if not isinstance(model, _nn.Module):
        raise TypeError(f"model must be a gradkit.nn.Module, got {type(model).__name__}")
    path = os.fspath(path)
    layers = model.layers if isinstance(model, _nn.Sequential) else [model]
    arch = {"format": FORMAT, "version": VERSION,
            "container": "Sequential" if isinstance(model, _nn.Sequential) else "layer",
            "layers": [_describe(layer) for layer in layers]}
    arrays = {f"p{i}": p.value for i, p in enumerate(model.parameters())}
    arch["sha256"] = {k: _digest(v) for k, v in arrays.items()}
    if optimizer is not None:
        arch["optimizer"], opt_arrays = _optimizer_payload(model, optimizer)
        arrays.update(opt_arrays)
    arrays[_ARCH_KEY] = np.array(json.dumps(arch))
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save the model to {path}: it is a folder; give a file "
                                "name such as model.npz")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save the model to {path}: the folder {folder} does not "
                                "exist (gradkit.save does not create folders)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gradkit-", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot save the model to {path}: cannot write in the "
                                   f"folder {folder} ({exc.strerror})") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a saved model reads like any file
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(folder)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _fsync_folder(folder):
    """Make the rename itself durable (where the OS lets a folder be opened and synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fail(path, why):
    return ModelFileError(f"{path} is not a valid gradkit model file: {why}")


def load(path, *, optimizer: bool = False):
    """Read a model written by ``save``. Raises ModelFileError for a truncated, foreign or
    tampered file; never unpickles.

    ``optimizer=True`` returns ``(model, optimizer)``: the optimizer saved with
    ``save(..., optimizer=opt)``, rebuilt on the loaded model's parameters with its
    hyperparameters and state (momentum buffers, Adam moments and step counts).
    """
    if not isinstance(optimizer, (bool, np.bool_)):
        raise TypeError(f"optimizer must be a bool (True returns (model, optimizer)), got "
                        f"{type(optimizer).__name__}")
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise _fail(path, "it holds a single array, not an .npz archive")
        with data:
            if _ARCH_KEY not in data.files:
                raise _fail(path, "no architecture description (not written by gradkit.save)")
            arch_text = str(data[_ARCH_KEY][()])
            arrays = {k: data[k] for k in data.files if k != _ARCH_KEY}
            opt_arrays = {k: arrays.pop(k) for k in list(arrays) if k.startswith(_OPT_PREFIX)}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, zipfile.LargeZipFile,
            NotImplementedError) as exc:
        if "pickle" in str(exc):
            # NumPy takes any unknown content for a pickle and suggests allow_pickle: gradkit
            # never unpickles, so say what a model file is instead.
            raise _fail(path, "it is not an .npz archive of plain arrays (model files hold "
                              "numbers only and are never unpickled; pickled objects or "
                              "other content is refused)") from None
        raise _fail(path, f"unreadable or truncated ({type(exc).__name__}: {exc})") from None
    try:
        arch = json.loads(arch_text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"the architecture is not valid JSON ({exc})") from None
    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        raise _fail(path, "the architecture does not declare the gradkit-model format")
    if arch.get("version") != VERSION:
        raise _fail(path, f"format version {arch.get('version')!r} is not supported "
                          f"(this gradkit reads version {VERSION})")
    try:
        # Shapes first, from the description alone: a tampered file that declares huge layers is
        # refused before any layer allocates them.
        shapes = [shape for spec in arch["layers"] for shape in _parameter_shapes(spec)]
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"bad architecture description ({exc})") from None
    if set(arrays) != {f"p{i}" for i in range(len(shapes))}:
        raise _fail(path, f"expected {len(shapes)} parameter arrays, found {len(arrays)}")
    for i, shape in enumerate(shapes):
        if arrays[f"p{i}"].shape != shape:
            raise _fail(path, f"parameter {i} has shape {arrays[f'p{i}'].shape}, the "
                              f"architecture says {shape}")
    try:
        layers = [_build(spec) for spec in arch["layers"]]
        digests = dict(arch["sha256"])
        container = arch["container"]
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"bad architecture description ({exc})") from None
    if not layers or container not in ("Sequential", "layer") or (
            container == "layer" and len(layers) != 1):
        raise _fail(path, "bad architecture description (container)")
    model = _nn.Sequential(*layers) if container == "Sequential" else layers[0]
    params = model.parameters()
    if set(arrays) != {f"p{i}" for i in range(len(params))} or set(digests) != set(arrays):
        raise _fail(path, f"expected {len(params)} parameter arrays, found {len(arrays)}")
    for i, p in enumerate(params):
        arr = arrays[f"p{i}"]
        if arr.shape != p.value.shape or arr.dtype != p.value.dtype:
            raise _fail(path, f"parameter {i} has shape {arr.shape} and dtype {arr.dtype}, the "
                              f"architecture says {p.value.shape} {p.value.dtype}")
        if _digest(arr) != digests[f"p{i}"]:
            raise _fail(path, f"parameter {i} does not match its checksum (the file was "
                              "modified after saving)")
        p.value[...] = arr
    if optimizer:
        return model, _rebuild_optimizer(path, arch.get("optimizer"), opt_arrays, params)
    return model


# ------------------------------------------------------------------------ optimizer state
_OPT_PREFIX = "opt"


def _optimizer_payload(model, optimizer):
    """(JSON description, arrays) of an optimizer's state_dict, arrays keyed opt<i>_<name>."""
    from gradkit.optim import Optimizer

    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a gradkit.optim optimizer, got "
                        f"{type(optimizer).__name__}")
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:
        raise ValueError("optimizer must update exactly model.parameters(), in that order "
                         "(build it as Optimizer(model.parameters(), ...))")
    sd = optimizer.state_dict()
    arrays, state = {}, {}
    for i, entry in sd["state"].items():
        state[str(i)] = {}
        for key, value in entry.items():
            if isinstance(value, np.ndarray):
                arrays[f"{_OPT_PREFIX}{i}_{key}"] = value
                state[str(i)][key] = {"array": f"{_OPT_PREFIX}{i}_{key}"}
            else:
                state[str(i)][key] = value
    desc = {"type": type(optimizer).__name__, "param_groups": sd["param_groups"],
            "state": state, "sha256": {k: _digest(v) for k, v in arrays.items()}}
    return desc, arrays


def _rebuild_optimizer(path, desc, arrays, params):
    from gradkit import optim

    if desc is None:
        raise _fail(path, "it holds no optimizer state (save it with gk.save(model, path, "
                          "optimizer=opt))")
    kinds = {"SGD": optim.SGD, "Adam": optim.Adam, "AdamW": optim.AdamW}
    try:
        cls = kinds[desc["type"]]
        group = dict(desc["param_groups"][0])
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        digests = dict(desc["sha256"])
        state = {}
        for i, entry in desc["state"].items():
            state[int(i)] = {}
            for key, value in entry.items():
                if isinstance(value, dict):
                    name = value["array"]
                    if _digest(arrays[name]) != digests[name]:
                        raise _fail(path, f"optimizer array {name} does not match its "
                                          "checksum (the file was modified after saving)")
                    value = arrays[name]
                state[int(i)][key] = value
        if set(digests) != set(arrays):
            raise ValueError("optimizer arrays do not match their description")
        group.pop("params")
        opt = cls([p for p in params], **({"lr": group["lr"]} if cls is optim.SGD else {}))
        opt.load_state_dict({"state": state,
                             "param_groups": [dict(group, params=list(range(len(params))))]})
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _fail(path, f"bad optimizer state ({exc})") from None
    return opt


def _parameter_shapes(spec) -> list[tuple[int, ...]]:
    if spec["type"] != "Linear":
        return []
    for key in ("in_features", "out_features"):
        if not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 1:
            raise ValueError(f"{key}={spec[key]!r}")
    n_in, n_out = spec["in_features"], spec["out_features"]
    return [(n_out, n_in)] + ([(n_out,)] if spec["bias"] is True else [])


def _build(spec):
    kind = spec["type"]
    if kind == "Linear":
        dtype = spec["dtype"]
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype {dtype!r}")
        for key in ("in_features", "out_features"):
            if not isinstance(spec[key], int) or isinstance(spec[key], bool) or spec[key] < 1:
                raise ValueError(f"{key}={spec[key]!r}")
        if not isinstance(spec["bias"], bool):
            raise ValueError(f"bias={spec['bias']!r}")
        return _nn.Linear(spec["in_features"], spec["out_features"], spec["bias"], dtype=dtype,
                          seed=0)
    if kind == "LeakyReLU":
        return _nn.LeakyReLU(spec["slope"])
    if kind in _ACTIVATIONS:
        return _ACTIVATIONS[kind]()
    raise ValueError(f"unknown layer type {kind!r}")

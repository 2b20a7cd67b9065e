"""gk.save / gk.load: round trip, atomic write, and files that must be refused (truncated,
foreign, tampered) without executing anything."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import gradkit as gk
from gradkit import _config, nn
from gradkit.io import ModelFileError


@pytest.fixture(autouse=True)
def _complete_default_backend():
    if hasattr(_config.ops(), "linear"):
        yield
    else:
        with gk.use_backend("numpy"):
            yield


def model_with_every_layer(dtype=np.float32):
    return nn.Sequential(nn.Linear(4, 6, dtype=dtype, seed=1), nn.ReLU(),
                         nn.Linear(6, 5, dtype=dtype, seed=2), nn.LeakyReLU(0.2),
                         nn.Linear(5, 5, bias=False, dtype=dtype, seed=3), nn.Tanh(),
                         nn.Identity(), nn.Linear(5, 3, dtype=dtype, seed=4), nn.Sigmoid(),
                         nn.Softmax())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_restores_architecture_and_parameters(tmp_path, dtype):
    model = model_with_every_layer(dtype)
    path = tmp_path / "model.npz"
    gk.save(model, path)
    loaded = gk.load(path)
    assert [type(layer) for layer in loaded] == [type(layer) for layer in model]
    assert loaded[3].slope == 0.2 and loaded[4].bias is None
    for a, b in zip(model.parameters(), loaded.parameters()):
        assert b.value.dtype == dtype
        np.testing.assert_array_equal(a.value, b.value)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(dtype)
    np.testing.assert_array_equal(model(x), loaded(x))


def test_single_layer_round_trip(tmp_path):
    layer = nn.Linear(3, 2, seed=0)
    gk.save(layer, tmp_path / "l.npz")
    loaded = gk.load(tmp_path / "l.npz")
    assert isinstance(loaded, nn.Linear)
    np.testing.assert_array_equal(loaded.weight.value, layer.weight.value)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    gk.save(nn.Linear(3, 2, seed=0), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        gk.save(nn.Linear(3, 2, seed=1), path)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["model.npz"]


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "model.npz"
    gk.save(model_with_every_layer(), path)
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="not a valid gradkit model file"):
            gk.load(bad)


def test_foreign_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ModelFileError, match="no architecture description"):
        gk.load(tmp_path / "other.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="single array"):
        gk.load(tmp_path / "single.npy")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ModelFileError):
        gk.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        gk.load(tmp_path / "missing.npz")


def test_pickled_object_array_is_never_unpickled(tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(tmp_path / "evil.npz", __gradkit_architecture__=np.array([Evil()], dtype=object))
    with pytest.raises(ModelFileError):
        gk.load(tmp_path / "evil.npz")
    assert not marker.exists()


def _rewrite(src, dst, change):
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(dst, **arrays)


def _edit_arch(fn):
    def change(arrays):
        arch = json.loads(str(arrays["__gradkit_architecture__"][()]))
        fn(arch)
        arrays["__gradkit_architecture__"] = np.array(json.dumps(arch))
    return change


@pytest.mark.parametrize("change, match", [
    (lambda a: a["p0"].__setitem__((0, 0), 123.0), "does not match its checksum"),
    (lambda a: a.__setitem__("p1", np.zeros(7, np.float32)), "parameter 1 has shape"),
    (lambda a: a.pop("p2"), "parameter arrays"),
    (_edit_arch(lambda arch: arch["layers"].__setitem__(1, {"type": "os.system"})),
     "unknown layer type"),
    (_edit_arch(lambda arch: arch.__setitem__("format", "something-else")), "format"),
    (_edit_arch(lambda arch: arch.__setitem__("version", 99)), "version 99"),
    (_edit_arch(lambda arch: arch["layers"][0].__setitem__("in_features", -3)), "in_features"),
    (lambda a: a.__setitem__("__gradkit_architecture__", np.array("{not json")), "not valid JSON"),
])
def test_tampered_files_are_refused(tmp_path, change, match):
    good = tmp_path / "good.npz"
    gk.save(model_with_every_layer(), good)
    bad = tmp_path / "bad.npz"
    _rewrite(good, bad, change)
    with pytest.raises(ModelFileError, match=match):
        gk.load(bad)


def test_save_rejects_unsupported_models(tmp_path):
    class Custom(nn.Module):
        pass

    with pytest.raises(TypeError, match="cannot save a Custom layer"):
        gk.save(nn.Sequential(nn.Linear(2, 2), Custom()), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="model must be a gradkit.nn.Module"):
        gk.save("model", tmp_path / "m.npz")
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_loaded_file_is_a_zip_with_only_arrays(tmp_path):
    gk.save(nn.Linear(2, 2, seed=0), tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert sorted(z.namelist()) == ["__gradkit_architecture__.npy", "p0.npy", "p1.npy"]


def test_load_refuses_a_description_larger_than_the_stored_arrays(tmp_path):
    import json
    import stat

    model = gk.nn.Sequential(gk.nn.Linear(3, 2, seed=0))
    path = tmp_path / "m.npz"
    gk.save(model, path)
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o044  # readable by others, like any file
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(k for k in arrays if k not in ("p0", "p1"))
    arch = json.loads(str(arrays[key][()]))
    arch["layers"][0]["in_features"] = 10**7  # would allocate 10**7 x 2 weights
    arrays[key] = np.array(json.dumps(arch))
    bad = tmp_path / "huge.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="parameter 0 has shape"):
        gk.load(bad)

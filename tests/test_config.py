import subprocess
import sys

import pytest

import gradkit as gk


def test_show_config_reports_version_isa_threads_backends(capsys):
    assert gk.show_config() is None  # prints only: a REPL does not show the table twice
    out = capsys.readouterr().out
    info = gk.config()
    assert info["version"] == gk.__version__
    assert info["isa"] in ("portable", "avx2", "avx512")
    assert info["threads"] >= 1
    assert "cpp" in info["backends"] and "numpy" in info["backends"]
    assert info["vector_bits"] in (128, 256, 512)
    for key in ("l1d_cache", "l2_cache", "l3_cache"):  # read from the CPU, printed for the reader
        assert info[key].endswith(("KiB", "MiB")) and info[key] in out
    for key in ("version", "isa", "threads", "backends"):
        assert key in out
    assert f"version      : {gk.__version__}" in out.splitlines()[0]


def test_set_backend_rejects_unknown_name():
    with pytest.raises(ValueError, match="backend='torch' must be one of"):
        gk.set_backend("torch")
    assert gk.get_backend() == "cpp"


def test_use_backend_restores_previous():
    with gk.use_backend("numpy"):
        assert gk.get_backend() == "numpy"
    assert gk.get_backend() == "cpp"


def test_set_num_threads_validates_and_applies():
    before = gk.get_num_threads()
    try:
        gk.set_num_threads(1)
        assert gk.get_num_threads() == 1
    finally:
        gk.set_num_threads(before)
    with pytest.raises(ValueError, match="n=0 must be >= 1"):
        gk.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int"):
        gk.set_num_threads(1.5)


def test_import_does_not_load_numba_sklearn_or_matplotlib():
    code = ("import sys, gradkit; "
            "print(sorted(m for m in ('numba', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_numba_keeps_the_thread_count():
    # Numba's OpenMP layer resets omp_set_num_threads when it starts; gradkit must undo that.
    code = ("import gradkit as gk, numpy as np\n"
            "gk.set_num_threads(1)\n"
            "with gk.use_backend('numba'):\n"
            "    gk.functional.mse_loss(np.ones(10**6, np.float32), np.zeros(10**6, np.float32))\n"
            "import numba\n"
            "print(gk.get_num_threads(), numba.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1"]


def test_show_config_does_not_compile_the_numba_backend():
    code = ("import sys, io, gradkit as gk; gk.show_config(file=io.StringIO()); info = gk.config(); "
            "print('numba' in info['backends'], 'gradkit.backends.numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]

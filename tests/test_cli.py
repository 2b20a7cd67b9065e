"""The command line: tour, digits, kmeans, descent, info; pictures; one-line user errors."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradkit as gk
from gradkit.cli import main

# Where the gradkit under test lives (src/ in a dev build, site-packages when installed).
GRADKIT_HOME = Path(gk.__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"



def assert_good_png(path: Path) -> None:
    """Written, a real PNG that decodes, and not a blank single-colour image."""
    import matplotlib.image as mpimg

    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    rgb = img[..., :3].reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 10, f"{path} is (nearly) a single colour"
    # Something other than the white background covers a visible part of the picture.
    assert (rgb.min(axis=1) < 0.9).mean() > 0.01, f"{path} is almost blank"


@pytest.fixture(autouse=True)
def _restore_backend():
    previous = gk.get_backend()
    yield
    gk.set_backend(previous)


def test_tour_prints_every_section_and_writes_pictures(tmp_path, capsys):
    out = tmp_path / "tour"
    assert main(["tour", "--out", str(out), "--quick", "--backend", "cpp"]) == 0
    text = capsys.readouterr().out
    for title in ("Task -> formula", "Neurons", "Supervised vs unsupervised", "Losses",
                  "Gradient descent", "saddle", "update rule", "Digit recognition"):
        assert title in text
    assert "f(x) = a*x1 + b*x2^2 + c*x3^3 + d" in text
    difference = float(text.split("difference       : ")[1].split()[0])
    assert difference < 1e-12  # the expanded 2-3-1 formula equals the layer-by-layer result
    assert "x = 3.000000, f = 2.000000" in text
    assert "diverged=True, RuntimeWarning issued=True" in text
    assert "-(y log p + (1 - y) log(1 - p))" in text
    expected = ["1-task-to-formula.png", "2-neurons.png", "3-supervised-vs-unsupervised.png",
                "4-losses.png", "5-gradient-descent.png", "5-saddle.png", "6-update-rule.png",
                "7-digits-loss.png", "7-digits-predictions.png"]
    assert "test accuracy:" in text
    for name in expected:
        assert_good_png(out / name)
    assert sorted(p.name for p in out.glob("*.png")) == sorted(expected)


def test_readme_steps_are_the_tours_sections():
    import re

    from gradkit import tour

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    course = readme.split("## The course, with gradkit")[1].split("\n## ")[0]
    steps = re.findall(r"^### (\d+)\. ", course, flags=re.M)
    assert steps == [str(i) for i in range(1, len(tour.SECTIONS) + 1)]
    words = ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine"]
    assert course.lstrip().startswith(f"{words[len(steps)]} steps")


def test_tour_recovers_watermelon_coefficients(tmp_path, capsys):
    from gradkit import tour

    tour.task_to_formula(tmp_path, tour._Printer(None), quick=True)
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines()]
    rows = {ln[0]: (float(ln[1]), float(ln[2])) for ln in lines if len(ln) == 3 and ln[0] in "abcd"}
    assert set(rows) == set("abcd")
    for truth, found in rows.values():
        assert abs(truth - found) < 1e-2


def test_descent_command(capsys, tmp_path):
    assert main(["descent", "--x0", "-4", "--lr", "0.1", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "converged" in text
    assert "x = 3, f(x) = 2" in text
    assert_good_png(tmp_path / "descent.png")


def test_descent_command_reports_divergence(capsys):
    assert main(["descent", "--lr", "0.6", "--steps", "500"]) == 0
    text = capsys.readouterr().out
    assert "diverged" in text and "lr=0.6 is too large" in text


def test_info_command(capsys):
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "isa" in text and "backends" in text and gk.__version__ in text


@pytest.mark.parametrize("argv, message", [
    (["descent", "--lr", "abc"], "argument --lr: 'abc' is not a number"),
    (["descent", "--lr", "0"], "argument --lr: 0 must be > 0"),
    (["descent", "--steps", "-3"], "argument --steps: -3 must be >= 1"),
    (["descent", "--x0", "nan"], "must be finite"),
    (["digits", "--epochs", "ten"], "argument --epochs: 'ten' is not a whole number"),
    (["digits", "--hidden", "64,,8"], "argument --hidden"),
    (["tour", "--backend", "gpu"], "'gpu' is not one of cpp, numba, cython, numpy"),
    (["kmeans", "--k", "0"], "argument --k: 0 must be >= 1"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required: COMMAND"),
])
def test_bad_arguments_give_one_line_and_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_data_folder_is_one_line_status_1(tmp_path, capsys):
    assert main(["digits", "--data", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"gradkit digits: error: --data {tmp_path / 'nowhere'}: folder not found"


def test_data_folder_without_idx_files_is_one_line(tmp_path, capsys):
    assert main(["digits", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gradkit digits: error: no images file in") and err.count("\n") == 1


def test_kmeans_k_larger_than_n(capsys):
    assert main(["kmeans", "--n", "3", "--k", "5"]) == 1
    assert "--k 5 must be <= --n 3" in capsys.readouterr().err


def _run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(GRADKIT_HOME) + os.pathsep
               + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "gradkit", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_python_dash_m_gradkit_subprocess(tmp_path):
    ok = _run("descent", "--x0", "10", "--steps", "3", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "stopped after max_iter=3 steps" in ok.stdout
    bad = _run("digits", "--data", str(tmp_path / "missing"), cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    assert "folder not found" in bad.stderr


def test_import_gradkit_does_not_import_matplotlib():
    code = ("import sys, gradkit, gradkit.descent, gradkit.datasets, gradkit.cli; "
            "print('matplotlib' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(GRADKIT_HOME))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.stdout.strip() == "False", res.stderr


def test_digits_command_embedded(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["digits", "--epochs", "3", "--quiet", "--out", str(out), "--hidden", "32",
                 "--threads", "1"]) == 0
    text = capsys.readouterr().out
    acc = float(text.split("test accuracy: ")[1].split("%")[0])
    assert acc > 80.0
    assert "true \\ predicted" in text
    assert (out / "model.npz").is_file()
    assert_good_png(out / "loss.png")
    assert_good_png(out / "confusion.png")
    model = gk.load(out / "model.npz")
    assert model is not None


def test_digits_command_on_idx_folder(tmp_path, capsys):
    from test_datasets import write_fake_mnist

    data = tmp_path / "data"
    data.mkdir()
    write_fake_mnist(data, n=40, kind="train", gz=True)
    write_fake_mnist(data, n=20, kind="test")
    assert main(["digits", "--data", str(data), "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "784 -> 64 -> 10" in text and "40 train, 20 test" in text


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed here")
def test_digits_command_on_fashion_mnist(tmp_path, capsys):
    assert main(["digits", "--data", str(FASHION), "--epochs", "1", "--hidden", "128",
                 "--quiet", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "60000 train, 10000 test" in text
    assert float(text.split("test accuracy: ")[1].split("%")[0]) > 75.0


def test_kmeans_command(tmp_path, capsys):
    assert main(["kmeans", "--n", "3000", "--k", "4", "--dims", "3", "--seed", "1",
                 "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    ari = float(text.split("adjusted Rand index): ")[1].split()[0])
    assert ari > 0.9
    assert_good_png(tmp_path / "kmeans.png")


@pytest.mark.parametrize("option, default", [
    ("--epochs", "default 20"), ("--batch-size", "default 32"), ("--lr", "default 0.05"),
    ("--momentum", "default 0.9"), ("--seed", "default 0"), ("--hidden", "default 64"),
])
def test_digits_help_explains_every_option_with_its_default(option, default, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["digits", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    after = text.split("options:")[1]
    entry = after.split(option, 1)[1].split(" --", 1)[0]
    assert default in entry


def test_unknown_option_is_reported_by_its_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["info", "--verbose"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == "gradkit info: error: unrecognized arguments: --verbose (see gradkit info --help)\n"


@pytest.mark.parametrize("command", [["tour", "--quick"], ["descent"], ["kmeans", "--n", "50"],
                                     ["digits", "--epochs", "1"]])
def test_an_unusable_out_folder_names_out(command, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main([*command, "--out", str(blocker / "sub")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"gradkit {command[0]}: error: --out {blocker / 'sub'}: cannot create")
    assert "\n" not in err.rstrip("\n")


def test_show_config_prints_and_config_returns(capsys):
    assert gk.show_config() is None
    printed = capsys.readouterr().out
    info = gk.config()
    assert f"isa          : {info['isa']}" in printed

"""``gradkit tour``: the course, section by section, computed by gradkit on embedded data.

Each section prints its formula and the numbers gradkit computed, and saves one picture into the
output folder. The sections follow the table at the end of DESIGN.md.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

import gradkit as gk
from gradkit import datasets
from gradkit import functional as F

__all__ = ["SECTIONS", "run"]


class _Printer:
    def __init__(self, file: TextIO | None):
        self.file = file

    def __call__(self, *lines: str) -> None:
        for line in lines:
            print(line, file=self.file, flush=True)

    def header(self, number: int, title: str) -> None:
        self("", f"── {number}. {title} " + "─" * max(0, 66 - len(title)))


# ------------------------------------------------------------------------------- sections


def task_to_formula(out: Path, say: _Printer, quick: bool) -> list[Path]:
    say("Watermelon quality from three measurements, with an unknown formula",
        "    f(x) = a*x1 + b*x2^2 + c*x3^3 + d",
        "is linear in the features [x1, x2^2, x3^3]: fit a, b, c, d by gradient descent on the",
        "half mean squared error L = 1/(2m) * sum (f(x_i) - y_i)^2.")
    X, y = datasets.make_watermelon(400, seed=0)
    phi = datasets.watermelon_features(X)

    def loss_and_grad(params):
        w, b = params[None, :3], params[3:]
        pred = F.linear(phi, w, b)[:, 0]
        value, dpred = F.mse_loss(pred, y, half=True)
        _, dw, db = F.linear_backward(dpred[:, None], phi, w, need_dx=False)
        return value, np.concatenate([dw[0], db])

    res = gk.descent.minimize(lambda p: loss_and_grad(p)[0], np.zeros(4),
                              grad=lambda p: loss_and_grad(p)[1], lr=0.5, max_iter=5000, tol=1e-12)
    fit = dict(zip("abcd", (float(v) for v in res.x)))
    say(f"{res.message}; final loss {res.fun:.3g}", "    coefficient   true   recovered")
    for k, v in datasets.WATERMELON_COEF.items():
        say(f"    {k:>11} {v:6.2f}   {fit[k]:9.4f}")
    from gradkit import plot

    predict = lambda Z: F.linear(datasets.watermelon_features(Z), res.x[None, :3],  # noqa: E731
                                 res.x[3:])[:, 0]
    return [plot.watermelon_fit(X, y, datasets.WATERMELON_COEF, fit, predict,
                                out / "1-task-to-formula.png")]


def neurons(out: Path, say: _Printer, quick: bool) -> list[Path]:
    say("A neuron is a weighted sum:  Y = X1*W1 + X2*W2  (+ a bias, then an activation).")
    x = np.array([0.5, -1.2])
    w = np.array([[0.8, 0.3]])
    y1 = F.linear(x[None], w)[0, 0]
    say(f"    X = {x.tolist()}, W = {w[0].tolist()}:  {x[0]}*{w[0, 0]} + {x[1]}*{w[0, 1]} = "
        f"{x @ w[0]:.4f};  gradkit linear: {y1:.4f}")
    rng = np.random.default_rng(3)
    w1, b1 = rng.normal(size=(3, 2)).round(2), rng.normal(size=3).round(2)
    w2, b2 = rng.normal(size=(1, 3)).round(2), rng.normal(size=1).round(2)
    say("The 2-3-1 network, 2 inputs -> 3 sigmoid units -> 1 output, written out in full:",
        "    y = v1*s(w11*x1 + w12*x2 + b1) + v2*s(w21*x1 + w22*x2 + b2)"
        " + v3*s(w31*x1 + w32*x2 + b3) + c,   s(z) = 1/(1 + e^-z)")
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    expanded = sum(w2[0, j] * sig(w1[j, 0] * x[0] + w1[j, 1] * x[1] + b1[j]) for j in range(3))
    expanded += b2[0]
    hidden = F.linear(x[None], w1, b1, activation="sigmoid")
    layered = F.linear(hidden, w2, b2)[0, 0]
    say(f"    expanded formula : y = {expanded:.12f}",
        f"    layer by layer   : y = {layered:.12f}   (h = {np.round(hidden[0], 4).tolist()})",
        f"    difference       : {abs(expanded - layered):.1e}")
    from gradkit import plot

    return [plot.network_231(w1, b1, w2, b2, x, hidden[0], layered, out / "2-neurons.png")]


def supervised_unsupervised(out: Path, say: _Printer, quick: bool) -> list[Path]:
    say("Supervised: every training digit comes with its label. Learn one mean image per",
        "label; classify a test digit by the nearest mean (distance ||x - mean_k||^2).")
    Xtr, ytr = datasets.load_digits(split="train")
    Xte, yte = datasets.load_digits(split="test")
    means = np.stack([Xtr[ytr == k].mean(0) for k in range(10)])
    # ||x - m||^2 = ||x||^2 - 2 x.m + ||m||^2; the x.m products are one GEMM.
    d = -2 * F.matmul(Xte, means, trans_b=True) + (means**2).sum(1)[None, :]
    pred = d.argmin(1)
    acc = float((pred == yte).mean())
    say(f"    nearest-mean classifier on {len(yte)} test digits: {100 * acc:.1f}% correct")
    say("Unsupervised: the same question without labels. k-means finds k centres such that",
        "each point belongs to its nearest centre (minimises sum ||x - centre||^2).")
    X, y_true = datasets.make_blobs(600, 4, 2, seed=1, spread=1.2)
    km = gk.cluster.KMeans(n_clusters=4, random_state=0).fit(X)
    clustered = True
    labels, centers = km.labels_, km.cluster_centers_
    agree = _cluster_agreement(labels, y_true)
    say(f"    k-means on {len(X)} unlabelled points, k = 4: inertia {km.inertia_:.1f}, "
        f"{km.n_iter_} iterations; {100 * agree:.1f}% of points grouped as generated")
    from gradkit import plot

    return [plot.supervised_unsupervised(means, acc, X, labels, centers,
                                         out / "3-supervised-vs-unsupervised.png", clustered)]


def _cluster_agreement(labels, truth) -> float:
    """Fraction of points whose cluster's majority true label is their own label."""
    labels, truth = np.asarray(labels), np.asarray(truth)
    hits = 0
    for k in np.unique(labels):
        hits += np.bincount(truth[labels == k]).max()
    return hits / len(truth)


def loss_functions(out: Path, say: _Printer, quick: bool) -> list[Path]:
    pred = np.array([2.5, 0.0, 2.0, 8.0])
    target = np.array([3.0, -0.5, 2.0, 7.0])
    say(f"Regression, pred = {pred.tolist()}, target = {target.tolist()} (m = 4):")
    for name, (value, grad), formula in [
        ("MAE", F.l1_loss(pred, target), "L = 1/m sum|p - y|,      dL/dp = sign(p - y)/m"),
        ("MSE", F.mse_loss(pred, target), "L = 1/m sum(p - y)^2,    dL/dp = 2(p - y)/m"),
        ("MSE/2", F.mse_loss(pred, target, half=True),
         "L = 1/(2m) sum(p - y)^2, dL/dp = (p - y)/m"),
    ]:
        say(f"    {name:<6} {formula}",
            f"           L = {value:.4f},  dL/dp = {np.round(grad, 4).tolist()}")
    p = np.array([0.9, 0.2, 0.6, 0.4])
    y = np.array([1.0, 0.0, 1.0, 0.0])
    value, grad = F.bce_loss(p, y)
    by_hand = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    say("Binary cross-entropy, probabilities p = "
        f"{p.tolist()}, labels y = {y.tolist()}:",
        "    per sample -(y log p + (1 - y) log(1 - p)); L = its mean over the m samples;",
        "    dL/dp = (p - y)/(p(1 - p)m)",
        f"    gradkit L = {value:.6f} (by hand {by_hand:.6f}), dL/dp = {np.round(grad, 4).tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        swapped = -np.mean(p * np.log(y) + (1 - p) * np.log(1 - y))
    say("    Why this order: the log must be of the PREDICTION. With y and p swapped,",
        f"    -(p log y + (1 - p) log(1 - y)) takes log(0) for labels 0/1 and gives {swapped}.",
        "    With the right order, a confident correct prediction costs ~0 and a confident",
        "    wrong one costs a lot (-log p grows without bound as p -> 0).")
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]])
    labels = np.array([0, 2])
    value, grad = F.cross_entropy_loss(logits, labels)
    say(f"Softmax cross-entropy, logits {logits.tolist()}, labels {labels.tolist()}:",
        "    L = 1/m sum(logsumexp(z) - z[label]),  dL/dz = (softmax(z) - onehot(label))/m",
        f"    L = {value:.6f}, dL/dz = {np.round(grad, 4).tolist()}")
    from gradkit import plot

    return [plot.losses(out / "4-losses.png")]


def parabola(out: Path, say: _Printer, quick: bool) -> list[Path]:
    f = lambda x: 2 * x**2 - 12 * x + 20  # noqa: E731
    df = lambda x: 4 * x - 12  # noqa: E731
    say("f(x) = 2x^2 - 12x + 20, f'(x) = 4x - 12; the update is x <- x - lr * f'(x), lr = 0.1")
    paths = []
    for x0 in (-1.0, 0.0, 7.0):
        res = gk.descent.minimize(f, x0, grad=df, lr=0.1)
        steps = ", ".join(f"{v:.3f}" for v in res.path[:4])
        say(f"    from x0 = {x0:5.1f}: x = {steps}, ... -> x = {res.x:.6f}, f = {res.fun:.6f} "
            f"({res.n_iter} steps, converged={res.converged})")
        paths.append(res.path)
    res = gk.descent.minimize(f, 10.0, lr=0.1)
    say(f"    without f' (central differences): from 10 -> x = {res.x:.6f}, f = {res.fun:.6f}")
    from gradkit import plot

    return [plot.parabola_descent(paths, out / "5-gradient-descent.png")]


def saddle(out: Path, say: _Printer, quick: bool) -> list[Path]:
    f = lambda v: 2 * v[0] ** 2 + 2 * v[1] + 4 * v[0] * v[1]  # noqa: E731
    say("f(x, y) = 2x^2 + 2y + 4xy;  df/dx = 4x + 4y,  df/dy = 2 + 4x")
    point = np.array([1.0, 2.0])
    numeric = gk.descent.numerical_gradient(f, point)
    say(f"    at (1, 2): formula gives ({4 * 1 + 4 * 2}, {2 + 4 * 1}); "
        f"central differences give ({numeric[0]:.6f}, {numeric[1]:.6f})",
        "    The gradient is zero at (-0.5, 0.5), but that is a saddle, not a minimum:",
        "    along y = -x, f = -2x^2 - 2x falls without bound.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = gk.descent.minimize(f, [0.0, 0.0], lr=0.05)
    warned = any(issubclass(w.category, RuntimeWarning) for w in caught)
    say(f"    descent from (0, 0): diverged={res.diverged}, RuntimeWarning issued={warned}",
        f"    gradkit says: {res.message}")
    from gradkit import plot

    return [plot.saddle(res.path, out / "5-saddle.png")]


def gradient_descent(out: Path, say: _Printer, quick: bool) -> list[Path]:
    """The README's step 5: a parabola where descent succeeds, then a saddle where it cannot."""
    pictures = parabola(out, say, quick)
    say("", "  A saddle: where gradient descent fails")
    return pictures + saddle(out, say, quick)


def update_rule(out: Path, say: _Printer, quick: bool) -> list[Path]:
    say("One neuron y = W*x + b fitted to points on y = 2x + 1 (MSE loss, lr = 0.1):",
        "    dL/dW = 2/m sum (p - y) x,  dL/db = 2/m sum (p - y)",
        "    W <- W - lr * dL/dW,        b <- b - lr * dL/db")
    x = np.linspace(-1, 1, 8)[:, None]
    target = 2 * x[:, 0] + 1
    W, b = np.zeros((1, 1)), np.zeros(1)
    ws, bs, losses = [W[0, 0]], [b[0]], []
    for step in range(60):
        pred = F.linear(x, W, b)[:, 0]
        loss, dpred = F.mse_loss(pred, target)
        _, dW, db = F.linear_backward(dpred[:, None], x, W, need_dx=False)
        if step < 3:
            say(f"    step {step + 1}: L = {loss:.4f}, dL/dW = {dW[0, 0]:+.4f}, "
                f"dL/db = {db[0]:+.4f} -> W = {W[0, 0]:.4f} - 0.1*({dW[0, 0]:+.4f}) = "
                f"{W[0, 0] - 0.1 * dW[0, 0]:.4f}, b = {b[0] - 0.1 * db[0]:.4f}")
        F.sgd_step(W, dW, 0.1)
        F.sgd_step(b, db, 0.1)
        ws.append(W[0, 0])
        bs.append(b[0])
        losses.append(loss)
    losses.append(F.mse_loss(F.linear(x, W, b)[:, 0], target)[0])
    say(f"    after 60 steps: W = {W[0, 0]:.4f}, b = {b[0]:.4f}, L = {losses[-1]:.2e}")
    from gradkit import plot

    return [plot.update_rule(ws, bs, losses, 2.0, 1.0, out / "6-update-rule.png")]


def digit_recognition(out: Path, say: _Printer, quick: bool) -> list[Path]:
    from gradkit import losses, nn, optim

    Xtr, ytr = datasets.load_digits(split="train")
    Xte, yte = datasets.load_digits(split="test")
    epochs = 8 if quick else 30
    say("An MLP 64 -> 64 (ReLU) -> 10 on the embedded 8x8 digits, softmax cross-entropy,",
        f"SGD lr = 0.05 with momentum 0.9, batch 32, {epochs} epochs "
        f"({len(ytr)} training and {len(yte)} test images).")
    model = nn.Sequential(nn.Linear(64, 64, seed=0), nn.ReLU(), nn.Linear(64, 10, seed=1))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = time.perf_counter()
    hist = gk.fit(model, losses.CrossEntropyLoss(), opt, Xtr, ytr, epochs=epochs, batch_size=32,
                  seed=0, validation_data=(Xte, yte), progress=False)
    seconds = time.perf_counter() - start
    pred = np.asarray(model(Xte)).argmax(1)
    acc = float((pred == yte).mean())
    say(f"    loss per epoch: {hist.loss[0]:.3f} (first) -> {hist.loss[-1]:.3f} (last); "
        f"trained in {seconds:.2f} s",
        f"    test accuracy: {100 * acc:.1f}% ({int((pred == yte).sum())}/{len(yte)})")
    wrong = np.flatnonzero(pred != yte)
    right = np.flatnonzero(pred == yte)
    shown = np.sort(np.concatenate([wrong[:8], right[: 32 - min(8, len(wrong))]]))
    from gradkit import plot

    return [plot.loss_curve(hist, out / "7-digits-loss.png",
                            title="Digit recognition: an MLP trained by gradkit"),
            plot.digit_grid(Xte[shown], yte[shown], pred[shown], out / "7-digits-predictions.png",
                            title=f"Test digits and the network's prediction ({len(wrong)} of "
                                  f"{len(yte)} wrong; up to 8 of them shown, in red)")]


SECTIONS: list[tuple[str, Callable]] = [
    ("Task -> formula", task_to_formula),
    ("Neurons: weighted sums, the 2-3-1 network", neurons),
    ("Supervised vs unsupervised", supervised_unsupervised),
    ("Losses", loss_functions),
    ("Gradient descent: a parabola, then a saddle", gradient_descent),
    ("The update rule, step by step", update_rule),
    ("Digit recognition", digit_recognition),
]


def run(out: str | Path = "gradkit-tour", *, quick: bool = False,
        file: TextIO | None = None) -> list[Path]:
    """Run every section; return the pictures written. A section that cannot run in this
    build (a missing optional part) says so and the tour goes on."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = _Printer(file)
    say(f"gradkit {gk.__version__} tour — backend {gk.get_backend()}; pictures go to {out}/")
    written: list[Path] = []
    start = time.perf_counter()
    for number, (title, section) in enumerate(SECTIONS, 1):
        say.header(number, title)
        pictures = section(out, say, quick)
        for p in pictures:
            say(f"    picture: {p}")
        written.extend(pictures)
    say("", f"Tour finished in {time.perf_counter() - start:.1f} s; {len(written)} pictures in "
        f"{out}/")
    return written

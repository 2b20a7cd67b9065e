"""Pictures for the course (PNG files). Imported only by the command line and by users who ask.

Every function draws on its own ``matplotlib.figure.Figure`` and writes a PNG with Matplotlib's
non-interactive Agg renderer; nothing touches pyplot's global state, so this works headless and
does not change the backend of a notebook that imports it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "watermelon_fit", "network_231", "supervised_unsupervised", "losses", "parabola_descent",
    "saddle", "update_rule", "loss_curve", "digit_grid", "clusters", "confusion",
]

PathLike = Union[str, "os.PathLike[str]"]
_TAB10 = np.array([
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
])


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", facecolor="white")
    return path


def _colors(labels) -> np.ndarray:
    return _TAB10[np.asarray(labels) % len(_TAB10)]


def watermelon_fit(X, y, coef_true: dict, coef_fit: dict, predict: Callable, path: PathLike) -> Path:
    """Recovered vs true coefficients (bars) and predicted vs measured quality (scatter)."""
    fig = _figure(11, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    names = list(coef_true)
    pos = np.arange(len(names))
    ax1.bar(pos - 0.2, [coef_true[k] for k in names], 0.4, label="true", color="#999999")
    ax1.bar(pos + 0.2, [coef_fit[k] for k in names], 0.4, label="found by gradient descent",
            color="#1f77b4")
    ax1.set_xticks(pos, names)
    ax1.axhline(0, color="black", lw=0.8)
    ax1.set_xlabel("coefficient of f(x) = a·x1 + b·x2² + c·x3³ + d")
    ax1.set_ylabel("value")
    ax1.set_title("Coefficients: truth vs recovered")
    ax1.legend()
    pred = predict(X)
    ax2.scatter(y, pred, s=10, alpha=0.6, label="one watermelon")
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    ax2.plot([lo, hi], [lo, hi], color="black", lw=1, label="perfect prediction")
    ax2.set_xlabel("measured quality y")
    ax2.set_ylabel("predicted quality f(x)")
    ax2.set_title("Fitted formula on the training data")
    ax2.legend()
    fig.suptitle("Task → formula: watermelon quality")
    return _save(fig, path)


def network_231(w1, b1, w2, b2, x, hidden, y, path: PathLike) -> Path:
    """The 2-3-1 network as a graph: inputs, sigmoid hidden units, one output, weights on edges."""
    fig = _figure(9, 5.6)
    ax = fig.subplots()
    ax.set_axis_off()
    ins = [(0.0, 0.7), (0.0, 0.3)]
    hid = [(0.75, 0.85), (0.75, 0.5), (0.75, 0.15)]
    out = (1.5, 0.5)
    for j, (hx, hy) in enumerate(hid):
        for i, (ix, iy) in enumerate(ins):
            ax.plot([ix, hx], [iy, hy], color="#1f77b4", lw=1 + 2 * min(abs(w1[j, i]), 1.5),
                    zorder=1)
            t = 0.62  # closer to the hidden unit, where its two incoming edges are apart
            ax.text(ix + t * (hx - ix), iy + t * (hy - iy), f"w{j + 1}{i + 1}={w1[j, i]:+.2f}",
                    fontsize=8, ha="center", va="center", bbox=dict(fc="white", ec="none", pad=0.5))
        ax.plot([hx, out[0]], [hy, out[1]], color="#ff7f0e", lw=1 + 2 * min(abs(w2[0, j]), 1.5),
                zorder=1)
        ax.text((hx + out[0]) / 2, (hy + out[1]) / 2, f"v{j + 1}={w2[0, j]:+.2f}", fontsize=8,
                ha="center", va="center", bbox=dict(fc="white", ec="none", pad=0.5))
    for i, (ix, iy) in enumerate(ins):
        ax.add_patch(_circle(ix, iy, "#dddddd"))
        ax.text(ix, iy, f"x{i + 1}\n{x[i]:.2f}", ha="center", va="center", fontsize=9)
    for j, (hx, hy) in enumerate(hid):
        ax.add_patch(_circle(hx, hy, "#cfe2f3"))
        ax.text(hx, hy, f"h{j + 1}=σ(·)\n{hidden[j]:.3f}", ha="center", va="center", fontsize=8)
        ax.text(hx, hy - 0.11, f"b{j + 1}={b1[j]:+.2f}", ha="center", fontsize=8)
    ax.add_patch(_circle(*out, "#fde2c8"))
    ax.text(*out, f"y\n{y:.4f}", ha="center", va="center", fontsize=9)
    ax.text(out[0], out[1] - 0.11, f"c={b2[0]:+.2f}", ha="center", fontsize=8)
    ax.set_xlim(-0.1, 1.6)
    ax.set_ylim(-0.02, 1.0)
    ax.set_aspect("equal")
    ax.set_title("The 2-3-1 network: y = Σ_j v_j·σ(w_j1·x1 + w_j2·x2 + b_j) + c\n"
                 "(numbers inside the circles are the values for this input)")
    return _save(fig, path)


def _circle(x, y, color):
    from matplotlib.patches import Circle

    return Circle((x, y), 0.075, facecolor=color, edgecolor="black", zorder=2)


def supervised_unsupervised(class_means, accuracy: float, X, labels, centers,
                            path: PathLike, clustered: bool = True) -> Path:
    """Left: class means learned from labelled digits. Right: clusters k-means found unlabelled."""
    fig = _figure(12, 4.8)
    left, right = fig.subfigures(1, 2, width_ratios=[1, 1.1])
    axes = left.subplots(2, 5)
    for digit, ax in enumerate(axes.flat):
        ax.imshow(class_means[digit].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"mean of the {digit}s", fontsize=9)
        ax.set_axis_off()
    left.suptitle(f"Supervised: labels give each class its mean image;\n"
                  f"nearest mean classifies test digits ({100 * accuracy:.1f}% correct)")
    ax = right.subplots()
    ax.scatter(X[:, 0], X[:, 1], s=6, c=_colors(labels), alpha=0.6)
    ax.scatter(centers[:, 0], centers[:, 1], s=180, marker="X", c="black",
               label="k-means centres" if clustered else "true centres")
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    ax.legend(loc="best")
    if clustered:
        right.suptitle("Unsupervised: no labels; k-means groups the points\n"
                       "(colour = cluster it found)")
    else:
        right.suptitle("Unsupervised data (k-means is not available in this build:\n"
                       "colour = the group each point was generated from)")
    return _save(fig, path)


def losses(path: PathLike) -> Path:
    """Each loss as a function of the prediction, for target 1 (and BCE for target 0)."""
    fig = _figure(11, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    p = np.linspace(-1, 3, 401)
    ax1.plot(p, np.abs(p - 1), label="MAE  |p − y|")
    ax1.plot(p, (p - 1) ** 2, label="MSE  (p − y)²")
    ax1.plot(p, 0.5 * (p - 1) ** 2, "--", label="½·MSE (the 1/(2m) form)")
    ax1.axvline(1, color="gray", lw=0.8)
    ax1.set_ylim(0, 4)
    ax1.set_xlabel("prediction p (target y = 1)")
    ax1.set_ylabel("loss for one sample")
    ax1.set_title("Regression losses")
    ax1.legend()
    q = np.linspace(1e-3, 1 - 1e-3, 400)
    ax2.plot(q, -np.log(q), label="y = 1:  −log p")
    ax2.plot(q, -np.log(1 - q), label="y = 0:  −log(1 − p)")
    ax2.set_ylim(0, 5)
    ax2.set_xlabel("predicted probability p of class 1")
    ax2.set_ylabel("loss for one sample")
    ax2.set_title("Binary cross-entropy −(y·log p + (1 − y)·log(1 − p))")
    ax2.legend()
    fig.suptitle("Losses: how far the prediction is from the truth")
    return _save(fig, path)


def parabola_descent(paths: Sequence[np.ndarray], path: PathLike) -> Path:
    """f(x) = 2x² − 12x + 20 with the gradient-descent iterates drawn on it."""
    fig = _figure(8, 5)
    ax = fig.subplots()
    lo = min(-1.0, *(float(p.min()) for p in paths)) - 0.5
    hi = max(7.0, *(float(p.max()) for p in paths)) + 0.5
    x = np.linspace(lo, hi, 400)
    f = lambda t: 2 * t**2 - 12 * t + 20  # noqa: E731
    ax.plot(x, f(x), color="black", lw=1.5, label="f(x) = 2x² − 12x + 20")
    for i, p in enumerate(paths):
        ax.plot(p, f(p), "o-", ms=4, lw=0.8, color=_TAB10[i + 1],
                label=f"descent from x0 = {p[0]:g} ({len(p) - 1} steps)")
    ax.plot([3], [2], "*", ms=18, color="gold", mec="black", zorder=5,
            label="minimum x = 3, f = 2 (f'(x) = 4x − 12 = 0)")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("Gradient descent: x ← x − lr·f'(x), lr = 0.1")
    ax.legend()
    return _save(fig, path)


def saddle(result_path: np.ndarray, path: PathLike) -> Path:
    """f(x, y) = 2x² + 2y + 4xy: contours, the downhill direction −∇f, and a diverging walk."""
    fig = _figure(8, 6.5)
    ax = fig.subplots()
    g = np.linspace(-3, 3, 201)
    xx, yy = np.meshgrid(g, g)
    ff = 2 * xx**2 + 2 * yy + 4 * xx * yy
    cs = ax.contourf(xx, yy, ff, levels=30, cmap="RdBu_r")
    fig.colorbar(cs, ax=ax, label="f(x, y)")
    q = np.linspace(-3, 3, 15)
    qx, qy = np.meshgrid(q, q)
    gx, gy = 4 * qx + 4 * qy, 2 + 4 * qx
    norm = np.hypot(gx, gy) + 1e-12
    ax.quiver(qx, qy, -gx / norm, -gy / norm, color="black", alpha=0.6, width=0.003,
              label="−∇f (downhill direction, unit length)")
    inside = np.all(np.abs(result_path) <= 3, axis=1)
    shown = result_path[: np.argmin(inside) if not inside.all() else len(inside)]
    ax.plot(shown[:, 0], shown[:, 1], "o-", color="gold", mec="black", ms=4,
            label=f"gradient descent from ({result_path[0, 0]:g}, {result_path[0, 1]:g})")
    if len(shown):
        ax.annotate("descent runs away:\nf → −∞, no minimum", xy=tuple(shown[-1]),
                    xytext=(1.2, -1.0), fontsize=9, arrowprops=dict(arrowstyle="->"),
                    bbox=dict(fc="white", ec="black", alpha=0.85))
    ax.plot([-0.5], [0.5], "s", color="white", mec="black", ms=9,
            label="saddle point (−0.5, 0.5): ∇f = 0, no minimum")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Saddle f(x, y) = 2x² + 2y + 4xy;  ∂f/∂x = 4x + 4y,  ∂f/∂y = 2 + 4x")
    ax.legend(loc="lower left", fontsize=8)
    return _save(fig, path)


def update_rule(weights, biases, loss_values, w_true: float, b_true: float,
                path: PathLike) -> Path:
    """W and b after each update W -= lr·dL/dW, b -= lr·dL/db, and the loss they give."""
    fig = _figure(11, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    steps = np.arange(len(weights))
    ax1.plot(steps, weights, label="W")
    ax1.plot(steps, biases, label="b")
    ax1.axhline(w_true, ls="--", color=_TAB10[0], lw=0.8, label=f"true W = {w_true:g}")
    ax1.axhline(b_true, ls="--", color=_TAB10[1], lw=0.8, label=f"true b = {b_true:g}")
    ax1.set_xlabel("update step")
    ax1.set_ylabel("parameter value")
    ax1.set_title("W ← W − lr·∂L/∂W,   b ← b − lr·∂L/∂b")
    ax1.legend()
    ax2.semilogy(steps, loss_values, color="black")
    ax2.set_xlabel("update step")
    ax2.set_ylabel("MSE loss L (log scale)")
    ax2.set_title("The loss falls with every update")
    fig.suptitle("The update rule on one neuron y = W·x + b")
    return _save(fig, path)


def loss_curve(history, path: PathLike, title: str = "Training an MLP") -> Path:
    """Training loss (and validation loss/accuracy when present) per epoch."""
    fig = _figure(10, 4.2)
    ax1, ax2 = fig.subplots(1, 2)
    epochs = np.arange(1, len(history.loss) + 1)
    ax1.plot(epochs, history.loss, "o-", ms=3, label="training loss")
    val_loss = list(getattr(history, "val_loss", []) or [])
    if val_loss:
        ax1.plot(epochs[: len(val_loss)], val_loss, "o-", ms=3, label="test loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy loss")
    ax1.set_title("Loss curve")
    ax1.legend()
    acc = list(getattr(history, "val_accuracy", []) or [])
    if acc:
        ax2.plot(epochs[: len(acc)], 100 * np.asarray(acc), "o-", ms=3, color=_TAB10[2])
        ax2.set_ylim(min(80.0, 100 * min(acc)) - 2, 100.5)
        ax2.set_title(f"Test accuracy (last epoch {100 * acc[-1]:.1f}%)")
    else:
        ax2.text(0.5, 0.5, "no test set given", ha="center", va="center")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy on the test set (%)")
    fig.suptitle(title)
    return _save(fig, path)


def digit_grid(images, true, pred, path: PathLike, side: int | None = None, rows: int = 4,
               cols: int = 8, title: str | None = None) -> Path:
    """Test images with the predicted label in the title (red when it is wrong)."""
    images = np.asarray(images)
    side = side or int(round(np.sqrt(images.shape[1])))
    n = min(rows * cols, len(images))
    fig = _figure(1.3 * cols, 1.45 * rows + 0.6)
    axes = np.atleast_2d(fig.subplots(rows, cols))
    wrong = 0
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= n:
            continue
        ax.imshow(images[i].reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
        ok = true[i] == pred[i]
        wrong += not ok
        ax.set_title(f"pred {pred[i]}" + ("" if ok else f" (is {true[i]})"), fontsize=9,
                     color="black" if ok else "red")
    fig.suptitle(title or f"Test images and the network's prediction: {n - wrong}/{n} right "
                          f"(mistakes in red)")
    return _save(fig, path)


def clusters(X, labels, centers, path: PathLike, title: str = "k-means clusters") -> Path:
    """Points coloured by cluster (first two features) and the centres."""
    fig = _figure(7, 6)
    ax = fig.subplots()
    ax.scatter(X[:, 0], X[:, 1], s=4, c=_colors(labels), alpha=0.5)
    ax.scatter(centers[:, 0], centers[:, 1], s=200, marker="X", c="black", label="centres")
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def confusion(matrix, path: PathLike, title: str = "Confusion matrix") -> Path:
    """Counts of (true class, predicted class) on the test set."""
    matrix = np.asarray(matrix)
    fig = _figure(6.5, 5.5)
    ax = fig.subplots()
    im = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(im, ax=ax, label="test images")
    k = matrix.shape[0]
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return _save(fig, path)

"""The ``gradkit`` command: the course tour, digit training, k-means, gradient descent, info.

User errors (a missing folder, a bad number, an unknown backend) print one line starting with
``gradkit: error:`` and exit with status 2 (bad arguments) or 1 (anything the command refused);
no traceback (set GRADKIT_TRACEBACK=1 to see one).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn, Sequence

import numpy as np

__all__ = ["main"]


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, no traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line instead of usage + message; --help still shows the usage.
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------- argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be finite")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _layer_sizes(text: str) -> list[int]:
    """'64' or '256,128' -> hidden layer widths."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} must be widths separated by commas, e.g. 128,64")
    return [_positive_int(p) for p in parts]


def _backend_name(text: str) -> str:
    from gradkit.backends import BACKENDS

    if text not in BACKENDS:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(BACKENDS)}")
    return text


# --------------------------------------------------------------------------- commands


def _out_folder(text: str) -> Path:
    """The --out folder, created now, so that a bad path names --out before any work."""
    folder = Path(text)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        raise UserError(f"--out {text}: cannot create or write the folder "
                        f"({exc.strerror or exc})") from None
    return folder


def _setup(args) -> None:
    """Apply --backend / --threads before a command runs."""
    import gradkit as gk

    if getattr(args, "backend", None):
        try:
            gk.set_backend(args.backend)
        except ImportError as exc:
            raise UserError(f"backend {args.backend!r} is not available here: {exc}") from None
    if getattr(args, "threads", None):
        gk.set_num_threads(args.threads)


def cmd_tour(args) -> int:
    from gradkit import tour

    pictures = tour.run(_out_folder(args.out), quick=args.quick)
    return 0 if pictures else 1


def _confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes**2).reshape(
        n_classes, n_classes)


def _format_confusion(matrix: np.ndarray) -> str:
    width = max(4, len(str(matrix.max())) + 1)
    head = " " * 8 + "".join(f"{j:>{width}}" for j in range(matrix.shape[1]))
    lines = ["true \\ predicted", head]
    for i, row in enumerate(matrix):
        lines.append(f"{i:>6}  " + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)


def cmd_digits(args) -> int:
    import gradkit as gk
    from gradkit import datasets, plot

    out = _out_folder(args.out)
    if args.data is not None:
        folder = Path(args.data)
        if not folder.is_dir():
            raise UserError(f"--data {folder}: folder not found")
        Xtr, ytr = datasets.load_mnist(folder, "train")
        Xte, yte = datasets.load_mnist(folder, "test")
        source = f"IDX files in {folder}"
    else:
        Xtr, ytr = datasets.load_digits(split="train")
        Xte, yte = datasets.load_digits(split="test")
        source = "the embedded 8x8 digits"
    from gradkit import losses, nn, optim

    sizes = [Xtr.shape[1], *args.hidden, 10]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, seed=args.seed + i))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    print(f"training an MLP {' -> '.join(map(str, sizes))} on {source}: {len(ytr)} train, "
          f"{len(yte)} test images; backend {gk.get_backend()}, {gk.get_num_threads()} thread(s)")
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    start = time.perf_counter()
    hist = gk.fit(model, losses.CrossEntropyLoss(), opt, Xtr, ytr, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, validation_data=(Xte, yte),
                  progress=not args.quiet)
    seconds = time.perf_counter() - start
    pred = np.asarray(model(Xte)).argmax(1)
    acc = float((pred == yte).mean())
    matrix = _confusion_matrix(yte, pred, 10)
    print(f"trained {args.epochs} epochs in {seconds:.2f} s; final training loss "
          f"{hist.loss[-1]:.4f}")
    print(f"test accuracy: {100 * acc:.2f}% ({int((pred == yte).sum())}/{len(yte)})")
    print(_format_confusion(matrix))
    gk.save(model, out / "model.npz")
    pictures = [plot.loss_curve(hist, out / "loss.png", title=f"MLP on {source}"),
                plot.confusion(matrix, out / "confusion.png",
                               title=f"Confusion matrix, test accuracy {100 * acc:.1f}%")]
    print(f"saved {out / 'model.npz'}, {', '.join(map(str, pictures))}")
    return 0


def cmd_kmeans(args) -> int:
    import gradkit as gk
    from gradkit import datasets

    if args.k > args.n:
        raise UserError(f"--k {args.k} must be <= --n {args.n}")
    out = None if args.out is None else _out_folder(args.out)
    X, y = datasets.make_blobs(args.n, args.k, args.dims, seed=args.seed)
    print(f"k-means, k = {args.k}, on {args.n} points in {args.dims} dimensions (blobs, "
          f"seed {args.seed}); {gk.get_num_threads()} thread(s)")
    start = time.perf_counter()
    km = gk.cluster.KMeans(n_clusters=args.k, random_state=args.seed).fit(X)
    seconds = time.perf_counter() - start
    sizes = np.bincount(km.labels_, minlength=args.k)
    from sklearn.metrics import adjusted_rand_score

    print(f"inertia {km.inertia_:.6g} after {km.n_iter_} iterations in {seconds:.3f} s")
    print(f"cluster sizes: {sizes.tolist()}")
    print(f"agreement with the generating blobs (adjusted Rand index): "
          f"{adjusted_rand_score(y, km.labels_):.4f}")
    if out is not None:
        from gradkit import plot

        path = plot.clusters(X, km.labels_, km.cluster_centers_, out / "kmeans.png",
                             title=f"k-means, k = {args.k}: inertia {km.inertia_:.4g}\n"
                                   f"(colour = cluster found"
                                   + (f", first 2 of {args.dims} features)" if args.dims > 2
                                      else ")"))
        print(f"saved {path}")
    return 0


def cmd_descent(args) -> int:
    import warnings

    import gradkit as gk

    f = lambda x: 2 * x**2 - 12 * x + 20  # noqa: E731
    df = lambda x: 4 * x - 12  # noqa: E731
    out = None if args.out is None else _out_folder(args.out)
    print("minimise f(x) = 2x^2 - 12x + 20 with x <- x - lr * f'(x), f'(x) = 4x - 12")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the result's message says it below
        res = gk.descent.minimize(f, args.x0, grad=df, lr=args.lr, max_iter=args.steps)
    print(" step" + "x".rjust(15) + "f(x)".rjust(15) + "f'(x)".rjust(15))
    shown = range(len(res.path)) if len(res.path) <= 25 else [*range(10), None,
                                                             *range(len(res.path) - 5,
                                                                    len(res.path))]
    for i in shown:
        if i is None:
            print(f"{'...':>5}")
            continue
        x = res.path[i]
        print(f"{i:>5} {x:>14.6g} {res.values[i]:>14.6g} {df(x):>14.6g}")
    print(res.message)
    print(f"x = {res.x:.6g}, f(x) = {res.fun:.6g} (the minimum is x = 3, f = 2)")
    if out is not None:
        from gradkit import plot

        path = plot.parabola_descent([res.path], out / "descent.png")
        print(f"saved {path}")
    return 0


def cmd_info(args) -> int:
    import gradkit as gk

    gk.show_config()
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gradkit",
                     description="The mathematics of a first deep-learning course, made fast.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    # Each command's own parser, so that an unknown option is reported by the command it was
    # given to (with that command's --help), not by the top level.
    parser.set_defaults(commands=sub.choices)

    def add_runtime(p):
        p.add_argument("--backend", type=_backend_name, default=None,
                       help="cpp (default), numba, cython or numpy")
        p.add_argument("--threads", type=_positive_int, default=None,
                       help="threads for the compiled kernels (default: all cores, or "
                            "OMP_NUM_THREADS)")

    p = sub.add_parser("tour", help="the course, section by section, with pictures")
    p.add_argument("--out", default="gradkit-tour", help="folder for the pictures "
                   "(default ./gradkit-tour)")
    p.add_argument("--quick", action="store_true", help="fewer training epochs (for tests)")
    add_runtime(p)
    p.set_defaults(run=cmd_tour)

    p = sub.add_parser("digits", help="train an MLP on handwritten digits")
    p.add_argument("--data", default=None, metavar="FOLDER",
                   help="MNIST/Fashion-MNIST IDX files (default: the embedded 8x8 digits)")
    p.add_argument("--epochs", type=_positive_int, default=20,
                   help="passes over the training set (default 20)")
    p.add_argument("--batch-size", type=_positive_int, default=32,
                   help="rows per SGD step (default 32)")
    p.add_argument("--lr", type=_positive_float, default=0.05,
                   help="learning rate of SGD (default 0.05)")
    p.add_argument("--momentum", type=_finite_float, default=0.9,
                   help="SGD momentum, 0 for plain SGD (default 0.9)")
    p.add_argument("--hidden", type=_layer_sizes, default=[64],
                   help="hidden layer widths, e.g. 128 or 256,128 (default 64)")
    p.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed of the initial weights and the shuffling (default 0)")
    p.add_argument("--out", default="gradkit-digits",
                   help="folder for the model and the pictures (default ./gradkit-digits)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: a bar)")
    add_runtime(p)
    p.set_defaults(run=cmd_digits)

    p = sub.add_parser("kmeans", help="k-means on generated blobs")
    p.add_argument("--n", type=_positive_int, default=100_000, help="points (default 100000)")
    p.add_argument("--k", type=_positive_int, default=8, help="clusters (default 8)")
    p.add_argument("--dims", type=_positive_int, default=2, help="dimensions (default 2)")
    p.add_argument("--seed", type=_nonneg_int, default=0,
                   help="seed of the blobs and of k-means++ (default 0)")
    p.add_argument("--out", default=None,
                   help="folder for a picture of the clusters (default: no picture)")
    add_runtime(p)
    p.set_defaults(run=cmd_kmeans)

    p = sub.add_parser("descent", help="gradient descent on f(x) = 2x^2 - 12x + 20")
    p.add_argument("--x0", type=_finite_float, default=0.0, help="start (default 0)")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="step size (default 0.1)")
    p.add_argument("--steps", type=_positive_int, default=100, help="most steps (default 100)")
    p.add_argument("--out", default=None,
                   help="folder for a picture of the path (default: no picture)")
    p.set_defaults(run=cmd_descent)

    p = sub.add_parser("info", help="version, instruction set, threads, backends")
    p.set_defaults(run=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        args.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        _setup(args)
        return args.run(args)
    except (UserError, ValueError, TypeError, FileNotFoundError, NotADirectoryError,
            PermissionError, ImportError, FloatingPointError) as exc:
        if os.environ.get("GRADKIT_TRACEBACK"):  # for debugging gradkit itself
            raise
        print(f"gradkit {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("gradkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

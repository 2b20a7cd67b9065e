"""Turn pytest-benchmark JSON files into one markdown table: rows = case x run, columns = impls.

    python bench/report.py RESULT.json[=LABEL] ... [--peer numpy] [--stat median] [--sort-impls]

Each cell shows the time of one call at ``--stat`` (median by default), the rate derived from the
work the benchmark recorded (GFLOP/s from extra_info["flops"], GB/s from extra_info["bytes"], or
a stored extra_info["gflops"]/["gbps"] when no work is given) and the speed-up against the peer
implementation of the same row (peer time / this time; > 1 means faster than the peer).

How other benchmarks plug in (losses, training, k-means, ...):
- set ``benchmark.group`` to the case name: one row per group and run;
- name the implementation with a test parameter called ``impl`` (or put it in
  ``benchmark.extra_info["impl"]``; failing both, the test's parameter id is used);
- record the work per call with the ``record`` fixture of bench/conftest.py
  (``record(benchmark, "cpp", flops=2*m*n*k)`` or ``bytes=...``); rows with neither show time only;
- run each thread/environment setting into its own JSON file and give it a LABEL
  (``results/gemm-1t.json=1 thread``); without a label the file's stem is used.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def _impl_of(bench: dict) -> str:
    extra = bench.get("extra_info") or {}
    if extra.get("impl"):
        return str(extra["impl"])
    params = bench.get("params") or {}
    if "impl" in params:
        return str(params["impl"])
    return str(bench.get("param") or bench.get("name"))


def _rate(bench: dict, seconds: float) -> str:
    extra = bench.get("extra_info") or {}
    if seconds <= 0 or not math.isfinite(seconds):
        return ""
    if "flops" in extra:
        return f"{extra['flops'] / seconds / 1e9:.1f} GFLOP/s"
    if "bytes" in extra:
        return f"{extra['bytes'] / seconds / 1e9:.2f} GB/s"
    if "gflops" in extra:
        return f"{extra['gflops']:.1f} GFLOP/s"
    if "gbps" in extra:
        return f"{extra['gbps']:.2f} GB/s"
    return ""


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def load(paths: list[str], stat: str, only: str | None = None) -> tuple[dict, list[str], list[str]]:
    """{(group, label): {impl: (seconds, bench)}}, the labels in order, the impls in order.
    ``only`` keeps the groups whose name contains that text."""
    rows: dict = {}
    labels: list[str] = []
    impls: list[str] = []
    for spec in paths:
        path, _, label = spec.partition("=")
        label = label or Path(path).stem
        labels.append(label)
        data = json.loads(Path(path).read_text())
        for bench in data.get("benchmarks", []):
            if only and only not in (bench.get("group") or bench.get("name")):
                continue
            impl = _impl_of(bench)
            if impl not in impls:
                impls.append(impl)
            group = bench.get("group") or bench.get("name")
            seconds = float(bench["stats"][stat])
            rows.setdefault((group, label), {})[impl] = (seconds, bench)
    return rows, labels, impls


def table(rows: dict, labels: list[str], impls: list[str], peer: str | None) -> str:
    groups = list(dict.fromkeys(group for group, _ in rows))
    header = ["case", "run"] + impls
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in groups:
        for label in labels:
            cells = rows.get((group, label))
            if not cells:
                continue
            # The peer may carry an environment tag, as in "sklearn[OPENBLAS_CORETYPE=SkylakeX]".
            peer_name = next((i for i in cells if i == peer or i.startswith(peer + "[")), None)
            peer_time = cells[peer_name][0] if peer_name else None
            out = [group, label]
            for impl in impls:
                if impl not in cells:
                    out.append("—")
                    continue
                seconds, bench = cells[impl]
                parts = [_fmt_time(seconds)]
                rate = _rate(bench, seconds)
                if rate:
                    parts.append(rate)
                if peer_time is not None and impl != peer_name:
                    parts.append(f"**{peer_time / seconds:.2f}x**")
                out.append(", ".join(parts))
            lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="pytest-benchmark JSON, optionally FILE=LABEL")
    parser.add_argument("--peer", default="numpy",
                        help="implementation the ratios are taken against (default: numpy)")
    parser.add_argument("--stat", default="median", choices=["median", "min", "mean"],
                        help="which timing statistic to show (default: median)")
    parser.add_argument("--group", default=None,
                        help="only the cases whose group name contains this text")
    args = parser.parse_args(argv)
    rows, labels, impls = load(args.files, args.stat, args.group)
    if not rows:
        print("no benchmarks found", file=sys.stderr)
        return 1
    print(f"Time per call ({args.stat}), rate, and speed-up vs {args.peer} "
          f"(peer time / time; > 1 is faster).\n")
    print(table(rows, labels, impls, args.peer))
    return 0


if __name__ == "__main__":
    sys.exit(main())

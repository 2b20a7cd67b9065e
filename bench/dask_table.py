"""The README's table for k-means on Dask (issue 12), measured by bench/test_bench_dask.py's
helpers (which check every result against single-machine KMeans before a figure is kept):

    PYTHONPATH=src python bench/dask_table.py                  # 2M x 32 float32, k=64
    PYTHONPATH=src python bench/dask_table.py --rows 200000    # a quick try
    python bench/dask_table.py --json RESULT.json              # from a pytest-benchmark run

Run it when the machine is quiet: the table states the load average before and after, and
figures taken under load are contention, not the library.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

TARGET_SPEEDUP_2_VS_1 = 1.7  # issue 12's targets
TARGET_VS_DASK_ML = 5.0
TARGET_OVERHEAD_MS = 20.0


def _cpu():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mark(ok):
    return "met" if ok else "**not met**"


def table(info):
    """Markdown: one row per implementation, then the three targets."""
    one = 1e3 * info["dask1_s_per_iter"]
    rows = [("gradkit, one process, 1 thread", "single_s_per_iter"),
            ("gradkit, one process, 2 threads", "single2_s_per_iter"),
            ("gradkit on Dask, 1 worker", "dask1_s_per_iter"),
            ("gradkit on Dask, 2 workers x 1 thread", "dask2_s_per_iter"),
            ("dask-ml KMeans, 2 workers x 1 thread", "dask_ml_s_per_iter")]
    lines = [f"k-means on Dask: {info['rows']:,} x {info['features']} float32, "
             f"k={info['clusters']}, {info['iterations']} Lloyd iterations from the same "
             f"centres, chunks of {info['chunk_rows']:,} rows; {info.get('cpu', _cpu())}, "
             f"{info['cpus']} CPUs, load average {tuple(round(v, 1) for v in info['load_before'])}"
             f" before, {tuple(round(v, 1) for v in info['load_after'])} after.",
             "",
             "| implementation | ms per iteration | throughput vs 1 Dask worker |",
             "|---|---:|---:|"]
    lines += [f"| {name} | {1e3 * info[key]:.1f} | {one / (1e3 * info[key]):.2f}x |"
              if key in info else f"| {name} | not installed | |" for name, key in rows]
    s21, sml, over = info["speedup_2_vs_1"], info.get("speedup_vs_dask_ml"), \
        info["overhead_ms_per_iter"]
    lines += ["",
              "| target (issue 12) | measured | |",
              "|---|---:|---|",
              f"| 2 workers >= {TARGET_SPEEDUP_2_VS_1}x one worker | {s21:.2f}x | "
              f"{_mark(s21 >= TARGET_SPEEDUP_2_VS_1)} |",
              f"| >= {TARGET_VS_DASK_ML:g}x faster per iteration than dask-ml (2 workers each) | "
              + (f"{sml:.1f}x | {_mark(sml >= TARGET_VS_DASK_ML)} |" if sml is not None
                 else "dask-ml not installed | |"),
              f"| round-trip overhead < {TARGET_OVERHEAD_MS:g} ms per iteration | {over:.1f} ms | "
              f"{_mark(over < TARGET_OVERHEAD_MS)} |",
              "",
              f"Overhead = 1 worker's time per iteration minus the same per-chunk kernel calls "
              f"back to back in one process ({1e3 * info['kernel_s_per_iter']:.1f} ms); an empty "
              f"round trip (the same tasks, no-op) takes {info['empty_round_trip_ms']:.1f} ms "
              f"on 1 worker, {info['empty_round_trip_2w_ms']:.1f} ms on 2."
              + (f" The driver process (client and scheduler) uses {info['driver_cpu_ms']:.1f} "
                 f"ms of CPU per iteration with 1 worker, {info['driver_cpu_2w_ms']:.1f} ms "
                 f"with 2." if "driver_cpu_ms" in info else "")
              + (f" One no-op task's round trip (client.submit(f).result(), the cluster's "
                 f"floor) takes {info['floor_ms']:.1f} ms on 1 worker, "
                 f"{info['floor_2w_ms']:.1f} ms on 2." if "floor_ms" in info else "")]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="rows of X (default 2,000,000)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs per configuration; the best is kept (default 2)")
    parser.add_argument("--json", help="print the table of a pytest-benchmark JSON instead")
    args = parser.parse_args(argv)
    if args.json:
        for bench in json.loads(Path(args.json).read_text())["benchmarks"]:
            if bench.get("extra_info", {}).get("impl") == "gradkit-dask":
                print(table(bench["extra_info"]))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import test_bench_dask as B

    info = B.measure(args.rows or B.N_FULL, repeats=args.repeats)
    info["cpu"] = _cpu()
    print(table(info))


if __name__ == "__main__":
    main()

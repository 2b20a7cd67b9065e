"""One Lloyd iteration per case, gradkit beside scikit-learn, scikit-learn-intelex and faiss from
the same initial centres, each result checked against the reference (the bench's helpers):

    THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=src taskset -c 0 python bench/kmeans_iter_table.py
    THREADS=2 PYTHONPATH=src python bench/kmeans_iter_table.py [gradkit,sklearn,...]

Prints per case and thread count the median wall / process-CPU milliseconds of 3 runs (after one
warm-up). On a shared machine the CPU time of a one-thread run is the steadier figure.
"""
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import test_bench_kmeans as B  # noqa: E402

import gradkit as gk  # noqa: E402

CASES = [("100k x 50", 100), ("60k x 784", 10), ("60k x 784", 256)]


def timed(run, repeats=3):
    run()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = run()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return out, 1e3 * statistics.median(wall), 1e3 * statistics.median(cpu)


def main():
    impls = sys.argv[1].split(",") if len(sys.argv) > 1 else B.IMPLS
    threads = [int(t) for t in os.environ.get("THREADS", "1,2").split(",")]
    for size, k in CASES:
        X, _ = B._dataset(size)
        centers = B._init(X, k)
        for t in threads:
            gk.set_num_threads(t)
            cells = []
            for impl in impls:
                run, check, ctx = B._one_iteration(impl, X, centers, t)
                with ctx:
                    out, wall, cpu = timed(run)
                check(out)
                cells.append(f"{impl} {wall:.0f}/{cpu:.0f}")
            print(f"{size} k={k} threads={t}: " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()

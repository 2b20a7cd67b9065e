"""k-means on Dask (issue 12's benchmark): seconds per Lloyd iteration on 2M x 32 float32,
k=64, 10 iterations, all from the same initial centres:

- gradkit in one process (single-machine KMeans's compiled Lloyd loop, 1 and 2 threads);
- gradkit on a Dask LocalCluster with 1 worker, and with 2 workers x 1 thread;
- dask-ml's KMeans on 2 workers x 1 thread (where installed);

plus the round-trip overhead per iteration. Targets: 2 workers >= 1.7x the throughput of 1
worker; >= 5x faster per iteration than dask-ml; overhead < 20 ms per iteration.

One command gives the table (run it when the machine is quiet; it prints the load average):

    PYTHONPATH=src python bench/dask_table.py            # 2M rows; --rows 200000 to try it

or, through pytest-benchmark (figures in extra_info of the JSON, and printed with -s):

    PYTHONPATH=src python -m pytest bench/test_bench_dask.py -s --benchmark-only
    # --benchmark-disable (CI): 200k rows, the agreement checks only

What is timed:
- per iteration = the Lloyd loop only, ITERS iterations from the given centres, divided by
  ITERS (the best of `repeats` runs). gradkit on Dask: gradkit.cluster.dask._lloyd (one round
  trip per iteration: one task per worker over the chunks it holds, the chunk results added in
  a fixed tree and the new centres computed on the driver). The driver's CPU time per
  iteration (this process: the client and, in a LocalCluster, the scheduler) is recorded too:
  on 2 CPUs it competes with the 2 workers. One process: _core.kmeans_lloyd, the loop KMeans(algorithm="lloyd")
  runs. dask-ml: its whole fit divided by its iterations (its fit is the Lloyd loop plus a
  final labelling).
- overhead = (1 worker's seconds per iteration) - (the same per-chunk kernel calls run back to
  back in this process): scheduling, serialisation and the driver's reduction. An empty round
  trip (the same tasks, no-op) is shown beside it, and the cluster's floor: one no-op task
  submitted and its result fetched (client.submit(f).result()).

Checked before any figure is kept: every run did ITERS iterations; gradkit on Dask (1 and
2 workers, bitwise the same: a fixed reduction tree) against an independent single-machine
KMeans from the same centres (same labels up to float32 rounding: centres within 1e-4, inertia
within 1e-5 relative); dask-ml's inertia within 1e-3 of it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import gradkit as gk
from gradkit import _core

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

N_FULL, N_SMOKE, D, K, ITERS = 2_000_000, 200_000, 32, 64, 10
CHUNK_ROWS = 125_000  # 16 chunks of 16 MB at 2M rows: 8 per worker
FLOOR_TRIPS = 20  # client.submit(no-op).result() round trips: the cluster's own floor
SRC = str(Path(gk.__file__).resolve().parents[1])


def data(n):
    rng = np.random.default_rng(0)
    centers = rng.normal(scale=3.0, size=(K, D))
    X = (centers[rng.integers(0, K, n)] + rng.normal(size=(n, D))).astype(np.float32)
    init = X[rng.choice(n, K, replace=False)].copy()
    return X, init


def _cluster(n_workers):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        dict.fromkeys([SRC] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p]))
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    client.run(lambda: __import__("gradkit.cluster.dask"))
    return cluster, client


def _persisted(X):
    dX = da.from_array(X, chunks=(CHUNK_ROWS, D)).persist()
    distributed.wait(dX)
    return dX


def _noop(x, w, centers):
    return 0


def _no_combine(*parts):
    return 0


def _best(run, repeats):
    """(smallest seconds, result of that run) of `repeats` runs."""
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - t0
        if best is None or seconds < best[0]:
            best = (seconds, out)
    return best


def gradkit_dask(X, init, n_workers, repeats=1):
    """(seconds per iteration, centres, empty round trip seconds, driver CPU seconds per
    iteration, seconds of one no-op task's round trip) on a fresh cluster."""
    import dask

    from gradkit.cluster import dask as gkdask

    cluster, client = _cluster(n_workers)
    try:
        dX = _persisted(X)  # held for the whole run: its futures keep the chunks on the workers
        chunks = gkdask._Chunks(dX, None, dask.compute)
        chunks.reduce(gkdask._chunk_partials, init)  # warm the workers
        cpu0 = time.process_time()
        seconds, (centers, n_iter, _) = _best(lambda: gkdask._lloyd(chunks, init, ITERS, 0.0),
                                           repeats)
        driver_cpu = (time.process_time() - cpu0) / (repeats * ITERS)
        assert n_iter == ITERS
        empty, _ = _best(lambda: [chunks.reduce(_noop, init, combine=_no_combine)
                                  for _ in range(ITERS)], repeats)
        floor, _ = _best(lambda: [client.submit(_no_combine, pure=False).result()
                                  for _ in range(FLOOR_TRIPS)], repeats)
        del chunks, dX
        return seconds / ITERS, centers, empty / ITERS, driver_cpu, floor / FLOOR_TRIPS
    finally:
        client.close()
        cluster.close()


def kernel_only(X, init, repeats=3):
    """Seconds of one iteration's per-chunk kernel calls, back to back in this process."""
    def run():
        for s in range(0, X.shape[0], CHUNK_ROWS):
            _core.kmeans_chunk_partials(X[s:s + CHUNK_ROWS], None, init)
    return _best(run, repeats)[0]


def single(X, init, repeats=1, threads=1):
    """(seconds per iteration, centres) of single-machine KMeans's Lloyd loop."""
    def run():
        centers = init.copy()
        labels = np.empty(X.shape[0], dtype=np.int32)
        _, n_iter = _core.kmeans_lloyd(X, None, centers, labels, ITERS, 0.0, threads)
        assert n_iter == ITERS
        return centers
    seconds, centers = _best(run, repeats)
    return seconds / ITERS, centers


def reference(X, init):
    """The independent check: single-machine KMeans (the estimator) from the same centres."""
    km = gk.cluster.KMeans(K, init=init, max_iter=ITERS, tol=0.0, algorithm="lloyd").fit(X)
    assert km.n_iter_ == ITERS
    return km


def dask_ml(X, init, repeats=1):
    """(seconds per iteration, centres, iterations) of dask-ml's KMeans on 2 workers, or None
    where dask-ml is not installed."""
    try:
        import dask_ml.cluster as ml
    except ImportError:
        return None
    cluster, client = _cluster(2)
    try:
        dX = _persisted(X)

        def run():
            km = ml.KMeans(n_clusters=K, init=init, max_iter=ITERS, tol=0.0, random_state=0)
            return km.fit(dX)
        seconds, km = _best(run, repeats)
        return seconds / ITERS, np.asarray(km.cluster_centers_), int(km.n_iter_)
    finally:
        client.close()
        cluster.close()


def _inertia(X, centers):
    c = np.ascontiguousarray(centers, dtype=np.float32)
    return _core.kmeans_assign(X, None, c, np.empty(X.shape[0], dtype=np.int32), 2)


def measure(n, repeats=1):
    """Every figure of the table, after the agreement checks; a dict."""
    X, init = data(n)
    load = os.getloadavg()
    ref = reference(X, init)
    t_single, c_single = single(X, init, repeats)
    t_single2, c_single2 = single(X, init, repeats, threads=2)
    one, c_one, empty_one, cpu_one, floor_one = gradkit_dask(X, init, 1, repeats)
    two, c_two, empty_two, cpu_two, floor_two = gradkit_dask(X, init, 2, repeats)
    kernel = kernel_only(X, init)
    peer = dask_ml(X, init, repeats)

    np.testing.assert_array_equal(c_single, ref.cluster_centers_)  # the loop the estimator runs
    np.testing.assert_array_equal(c_single2, c_single)  # any thread count, the same bits
    np.testing.assert_array_equal(c_one, c_two)  # the same fixed reduction tree
    np.testing.assert_allclose(c_two, ref.cluster_centers_, rtol=1e-4, atol=1e-4)
    reference_inertia = _inertia(X, ref.cluster_centers_)
    assert _inertia(X, c_two) == pytest.approx(reference_inertia, rel=1e-5)
    info = dict(rows=n, features=D, clusters=K, iterations=ITERS, chunk_rows=CHUNK_ROWS,
                cpus=os.cpu_count(), load_before=load, load_after=os.getloadavg(),
                single_s_per_iter=t_single, single2_s_per_iter=t_single2,
                dask1_s_per_iter=one, dask2_s_per_iter=two, kernel_s_per_iter=kernel,
                overhead_ms_per_iter=1e3 * (one - kernel), empty_round_trip_ms=1e3 * empty_one,
                empty_round_trip_2w_ms=1e3 * empty_two, driver_cpu_ms=1e3 * cpu_one,
                driver_cpu_2w_ms=1e3 * cpu_two, floor_ms=1e3 * floor_one,
                floor_2w_ms=1e3 * floor_two, speedup_2_vs_1=one / two)
    if peer is not None:
        ml, c_ml, ml_iter = peer
        assert _inertia(X, c_ml) == pytest.approx(reference_inertia, rel=1e-3)
        info.update(dask_ml_s_per_iter=ml, dask_ml_n_iter=ml_iter, speedup_vs_dask_ml=ml / two)
    return info


def test_kmeans_on_dask_2m_x_32(benchmark):
    import dask_table

    info = measure(N_SMOKE if benchmark.disabled else N_FULL)
    benchmark.extra_info.update(impl="gradkit-dask", **info)
    print("\n" + dask_table.table(info))
    benchmark.pedantic(lambda: None, rounds=1)  # the figures above are the result

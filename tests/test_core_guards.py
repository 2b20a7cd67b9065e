"""Bad input that reaches gradkit._core directly (bypassing the validated public API) gets a
ValueError from the bindings, never a crash: each probe runs in its own process."""
import subprocess
import sys

import pytest

PROBES = {
    "kmeans_inertia label out of range":
        "C.kmeans_inertia(X, None, X[:3].copy(), np.full(10, 10**6, np.int32), 1)",
    "kmeans_assign 2-D labels":
        "C.kmeans_assign(X, None, X[:3].copy(), np.zeros((10, 0), np.int32), 1)",
    "kmeans_lloyd zero centres":
        "C.kmeans_lloyd(X, None, X[:0].copy(), np.zeros(10, np.int32), 10, 0.0, 1)",
    "kmeans_plusplus more clusters than rows":
        "C.kmeans_plusplus(X, None, 20, 3, np.random.rand(1 + 19 * 3), 1)",
    "cross_entropy label out of range":
        "C.cross_entropy_loss(np.zeros((4, 3), np.float32), np.array([0, 1, 2, 10**9]), 'mean')",
    "cross_entropy zero classes":
        "C.cross_entropy_loss(np.zeros((4, 0), np.float32), np.zeros(4, np.int64), 'mean')",
}


@pytest.mark.parametrize("call", list(PROBES.values()), ids=list(PROBES))
def test_core_rejects_bad_input_without_crashing(call):
    code = f"import numpy as np; from gradkit import _core as C; X = np.random.rand(10, 2); {call}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1, result.stderr  # a Python exception, not a signal
    assert "ValueError" in result.stderr.strip().splitlines()[-1]

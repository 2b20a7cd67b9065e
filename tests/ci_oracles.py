"""With CI=true, a test that skips because an oracle (PyTorch, scikit-learn) or Fashion-MNIST is
missing fails instead: CI installs them, so such a skip means the install broke and hundreds of
oracle checks would pass unseen. Locally they still skip. Other skips (a CPU without AVX-512, a
backend that is not built) stay skips. Loaded by conftest.py, or with ``-p ci_oracles``."""
from __future__ import annotations

import os
import re

import pytest

ORACLE_SKIP = re.compile(r"torch|sklearn|scikit-learn|fashion-mnist", re.IGNORECASE)


def _in_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_oracle_skip(report):
    if not (_in_ci() and report.skipped and not hasattr(report, "wasxfail")):
        return
    reason = _reason(report)
    if ORACLE_SKIP.search(reason):
        report.outcome = "failed"
        report.longrepr = f"CI=true: an oracle or data test may not skip ({reason})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_oracle_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    # A module-level importorskip skips at collection.
    outcome = yield
    _fail_oracle_skip(outcome.get_result())

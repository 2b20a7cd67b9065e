"""The Numba backend: @njit kernels with explicit signatures and cache=True, matching
``ops_numpy``. Imported only when selected."""
from __future__ import annotations

import numba  # noqa: F401
import numpy as np  # noqa: F401

"""The C++ backend: adapts gradkit._core (pybind11) to the backend contract in
``gradkit.backends``. Arrays arrive validated and C-contiguous; _core refuses anything else."""
from __future__ import annotations

import numpy as np

from gradkit import _core

"""How every Numba kernel of gradkit is compiled, and the notice for a slow first compile.

``kernel`` is ``numba.njit`` without signatures: nothing compiles at import; the first call with
a new combination of argument types compiles that function (and the kernels it calls) for those
types only, and ``cache=True`` stores the machine code so that later processes load it.

error_model="numpy" everywhere: Numba's default ("python") puts a ZeroDivisionError check on
every float division, a branch that stops LLVM from vectorising the loop.
"""
from __future__ import annotations

import functools
import sys
import threading

import numba
from numba.core import event

# Compiling longer than this (seconds) prints a one-line notice, so a user knows why they wait.
NOTICE_AFTER = 1.0

# Elements per chunk: the unit of parallel work and of ordered partial sums. Fixed, so values do
# not depend on the thread count.
CHUNK = 32768
# Below this many elements a kernel runs on the calling thread: prange costs a thread wake-up.
PARALLEL_MIN = 1 << 18


def kernel(fn=None, *, parallel=False, inline="never"):
    """``numba.njit`` with gradkit's options, compiled lazily per argument types."""
    options = dict(cache=True, error_model="numpy", nogil=True, parallel=parallel)
    if inline != "never":
        options["inline"] = inline
    if fn is None:
        return functools.partial(kernel, parallel=parallel, inline=inline)
    return numba.njit(**options)(fn)


_local = threading.local()


def op(name):
    """Marks a public function as the op ``name``: a slow compile under it names that op."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            _local.op = name
            return fn(*args, **kwargs)
        return run
    return wrap


def _notice(name):
    print(f"gradkit: compiling numba op {name!r} (first use, cached afterwards)...",
          file=sys.stderr, flush=True)


class _CompileNotice(event.Listener):
    """Starts a timer when an outermost compile starts and cancels it when that compile ends:
    the notice appears only when compiling (not loading from the cache) takes NOTICE_AFTER."""

    def on_start(self, ev):
        depth = getattr(_local, "depth", 0)
        _local.depth = depth + 1
        if depth == 0:
            name = getattr(_local, "op", None) or ev.data["dispatcher"].py_func.__name__
            timer = threading.Timer(NOTICE_AFTER, _notice, (name,))
            timer.daemon = True
            timer.start()
            _local.timer = timer

    def on_end(self, ev):
        _local.depth -= 1
        if _local.depth == 0:
            _local.timer.cancel()


event.register("numba:compile", _CompileNotice())


@kernel
def n_chunks(n):
    return (n + CHUNK - 1) // CHUNK

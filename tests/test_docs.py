"""Every ```python block of README.md and docs/course.md runs, so the documentation cannot rot."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import gradkit as gk

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "course.md"]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks():
    for doc in DOCS:
        if not doc.is_file():
            continue
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            yield pytest.param(doc, line, match.group(1), id=f"{doc.name}:{line}")


def test_docs_have_python_blocks():
    assert len(list(python_blocks())) >= 10


def _default_backend_ready() -> bool:
    ops = gk.backends.load("cpp")
    return all(hasattr(ops, name) for name in ("linear", "mse_loss", "sgd_step"))


@pytest.mark.parametrize("doc, line, code", list(python_blocks()))
def test_python_block_runs(doc, line, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    # Until the compiled kernels are merged, run the blocks on the reference backend.
    backend = "cpp" if _default_backend_ready() else "numpy"
    with gk.use_backend(backend):
        try:
            exec(compile(code, f"{doc.name}:{line}", "exec"), {"__name__": "__doc_block__"})
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("gradkit."):
                pytest.skip(f"{exc.name} is not in this build yet")
            raise

"""src/gradkit/_core.pyi lists exactly the functions the compiled module binds, and py.typed ships."""
from __future__ import annotations

import ast
from pathlib import Path

import gradkit
from gradkit import _core

PKG = Path(gradkit.__file__).resolve().parent


def test_core_stub_matches_compiled_module():
    stub = PKG / "_core.pyi"
    if not stub.is_file():  # an install that dropped the stub would fail test_py_typed instead
        stub = Path(__file__).resolve().parents[1] / "src" / "gradkit" / "_core.pyi"
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    in_stub = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    bound = {name for name in dir(_core) if not name.startswith("_")}
    assert bound - in_stub == set(), "functions bound in csrc/bindings but missing in _core.pyi"
    assert in_stub - bound == set(), "functions in _core.pyi that _core does not bind"


def test_package_is_marked_typed():
    assert (PKG / "py.typed").is_file()

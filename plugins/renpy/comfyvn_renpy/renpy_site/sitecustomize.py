"""Lets Debian's Ren'Py 8.0.3 run on Python 3.11 (put this folder on PYTHONPATH; the package stays untouched).

Ren'Py 8.0 builds AST nodes whose ``end_lineno`` is smaller than ``lineno``; Python 3.11's ``compile()``
rejects them ("AST node line range (N, 1) is not valid", fixed upstream in 8.1). We wrap
``builtins.compile`` and, for AST input only, raise every end position to at least its start.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

_original_compile = builtins.compile


def _repair(tree: ast.AST) -> ast.AST:
    for found in ast.walk(tree):
        node: Any = found  # positions are set by attribute on any node type, as Ren'Py does
        start = getattr(node, "lineno", None)
        if start is None:
            continue
        end = getattr(node, "end_lineno", None)
        if end is None or end < start:
            node.end_lineno = end = start
        if end == start:
            col = getattr(node, "col_offset", None)
            end_col = getattr(node, "end_col_offset", None)
            if col is not None and (end_col is None or end_col < col):
                node.end_col_offset = col
    return tree


def _compile(source: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(source, ast.AST):
        _repair(source)
    return _original_compile(source, *args, **kwargs)


builtins.compile = _compile

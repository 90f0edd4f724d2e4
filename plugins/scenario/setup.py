"""Builds comfyvn-scenario; the runner, which a playtest or a client steps thousands of times, is compiled
by Cython.

``runner.py`` is plain Python that Cython compiles as it is; ``runner.pxd`` (an augmenting declaration
file, read only here) makes its compiled classes C types and gives `step`'s locals C types.
``_tuples.pyx`` builds a named tuple (a state, a result, an RNG state) without the generic call
``tuple.__new__`` goes through. Compiled, a step takes about two thirds of its source time, which is
what keeps the runner within three times a bare dict walk of the same graph (tests/bench). The
extensions are optional: without a C compiler the build says so and installs the source module, which
works the same, only slower. ``COMFYVN_PURE_PYTHON=1`` skips compiling. Type annotations are not read as
C types (``annotation_typing``): the .pxd alone decides. Nor are local types inferred (``infer_types``):
Cython's inference recursed without end on the history's nested tuples.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = ["comfyvn_scenario/runner.py", "comfyvn_scenario/_tuples.pyx"]


def extensions() -> list[object]:
    if os.environ.get("COMFYVN_PURE_PYTHON") == "1":
        return []
    from Cython.Build import cythonize

    directives = {"language_level": 3, "annotation_typing": False, "infer_types": False}
    built = cythonize(COMPILED, compiler_directives=directives, quiet=True)
    for extension in built:
        extension.optional = True  # no C compiler: a warning, and the source module is used
    return built


setup(ext_modules=extensions())

"""Builds comfyvn-roleplay; the modules a long chat's import spends its time in are compiled by Cython.

``st_chat`` and ``lane`` are plain Python that Cython compiles as they are; ``lane.pxd`` (an
augmenting declaration file, read only here) gives the lane's class, methods and locals C types. The
compiled modules behave exactly as the source does, about twice as fast, which is what lets a
100,000-message import stay within three times ``json.loads`` of its lines (tests/bench). The
extensions are optional: without a C compiler the build says so and installs the source modules,
which work the same, only slower. ``COMFYVN_PURE_PYTHON=1`` skips compiling. Type annotations are
not read as C types (``annotation_typing``): the .pxd alone decides.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED = ["comfyvn_roleplay/st_chat.py", "comfyvn_roleplay/lane.py"]


def extensions() -> list[object]:
    if os.environ.get("COMFYVN_PURE_PYTHON") == "1":
        return []
    from Cython.Build import cythonize

    built = cythonize(COMPILED, compiler_directives={"language_level": 3, "annotation_typing": False}, quiet=True)
    for extension in built:
        extension.optional = True  # no C compiler: a warning, and the source modules are used
    return built


setup(ext_modules=extensions())

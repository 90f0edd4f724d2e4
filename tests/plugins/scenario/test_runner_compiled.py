"""The compiled runner (plugins/scenario/setup.py): built from the current source, and its tuple helper
builds exactly what ``tuple.__new__`` builds.

The runner's behaviour, compiled and from source, is checked against the reference runner in
test_runner_equivalence.py; this file checks the build and the helper itself."""

from __future__ import annotations

import abc
import gc
import os
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import comfyvn_scenario.runner
import pytest
from hypothesis import given
from hypothesis import strategies as st

PACKAGE = Path(comfyvn_scenario.runner.__file__).parent


def _compiled() -> list[ModuleType]:
    modules: list[ModuleType] = []
    if not str(comfyvn_scenario.runner.__file__).endswith(".py"):
        modules.append(comfyvn_scenario.runner)
    try:
        import comfyvn_scenario._tuples as helper
    except ImportError:  # a source install: nothing compiled, nothing to be stale
        return modules
    return [*modules, helper]


SOURCE_TREE = (PACKAGE.parent / "setup.py").exists()  # an editable install: the build sits in the sources


@pytest.mark.skipif(not SOURCE_TREE, reason="an installed wheel: built once, not next to sources one edits")
def test_compiled_modules_are_built_from_the_current_source() -> None:
    # An editable install compiles runner.py (with runner.pxd) and _tuples.pyx in place; after an edit,
    # the stale extension would still be what imports find. Reinstall the plugin after editing.
    sources = {"runner": ["runner.py", "runner.pxd"], "_tuples": ["_tuples.pyx"]}
    for module in _compiled():
        built = Path(str(module.__file__)).stat().st_mtime
        for name in sources[module.__name__.rsplit(".", 1)[1]]:
            assert built >= (PACKAGE / name).stat().st_mtime, (
                f"{module.__name__} is compiled from an older {name}: run `pip install -e plugins/scenario` "
                "(to run the source instead, delete the .so files next to it)"
            )


@pytest.mark.skipif(
    not (SOURCE_TREE and shutil.which("cc")) or os.environ.get("COMFYVN_PURE_PYTHON") == "1",
    reason="compiling needs the source tree's setup.py and a C compiler, and COMFYVN_PURE_PYTHON unset",
)
def test_the_runner_is_compiled_where_it_can_be() -> None:
    # The extensions are optional, so a failed build installs the source quietly; the benchmark's
    # target assumes the compiled runner, and the equivalence tests would check the source twice.
    assert {m.__name__ for m in _compiled()} == {"comfyvn_scenario.runner", "comfyvn_scenario._tuples"}


def test_the_runner_uses_the_helper_where_it_is_compiled() -> None:
    helper = sys.modules.get("comfyvn_scenario._tuples")
    if helper is None:
        assert comfyvn_scenario.runner._make is tuple.__new__
    else:
        assert comfyvn_scenario.runner._make is helper.new_tuple


class Pair(NamedTuple):
    left: Any
    right: Any


class Trio(NamedTuple):
    a: Any
    b: Any
    c: Any


def _helper() -> Any:
    return pytest.importorskip("comfyvn_scenario._tuples", reason="a source install has no compiled helper")


values = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2))


@given(st.sampled_from([Pair, Trio]), st.data())
def test_new_tuple_builds_what_tuple_new_builds(cls: Any, data: st.DataObject) -> None:
    new_tuple = _helper().new_tuple
    fields = tuple(data.draw(values) for _ in cls._fields)
    made, expected = new_tuple(cls, fields), tuple.__new__(cls, fields)
    assert type(made) is cls and made == expected and repr(made) == repr(expected)
    assert all(x is y for x, y in zip(made, fields, strict=True))  # the same objects, not copies
    assert gc.is_tracked(made) == gc.is_tracked(expected)


def test_new_tuple_holds_its_own_references() -> None:
    new_tuple = _helper().new_tuple
    item = ["an", "item"]
    before = sys.getrefcount(item)
    made = new_tuple(Pair, (item, None))
    assert sys.getrefcount(item) == before + 1 and sys.getrefcount(made) == 2  # one for `made`, one for the call
    del made
    assert sys.getrefcount(item) == before


class WithMeta(tuple[Any, ...], metaclass=abc.ABCMeta):
    pass


def test_new_tuple_refuses_what_tuple_new_refuses() -> None:
    new_tuple = _helper().new_tuple
    # Not a tuple type, or a C tuple type with hidden fields of its own (building one without them
    # crashed the interpreter when it was freed): refused, the first time and every time after.
    for cls in (dict, None, os.stat_result, time.struct_time):
        for _ in range(2):
            with pytest.raises(TypeError):
                tuple.__new__(cls, (1, 2))
            with pytest.raises(TypeError):
                new_tuple(cls, (1, 2))
    # The fields must be an exact tuple (tuple.__new__ takes any iterable).
    with pytest.raises(TypeError):
        new_tuple(Pair, [1, 2])
    with pytest.raises(TypeError):
        new_tuple(Pair, Pair(1, 2))
    # tuple itself gives the fields back, as tuple.__new__ does; a class with a metaclass of its own
    # is a tuple subclass like any other.
    fields = (1, 2)
    assert new_tuple(tuple, fields) is fields and new_tuple(tuple, fields) is fields
    for _ in range(2):
        made = new_tuple(WithMeta, fields)
        assert type(made) is WithMeta and made == fields and made is not fields

"""The compiled runner (plugins/scenario/setup.py): built from the current source, and its tuple helper
builds exactly what ``tuple.__new__`` builds.

The runner's behaviour, compiled and from source, is checked against the reference runner in
test_runner_equivalence.py; this file checks the build and the helper itself."""

from __future__ import annotations

import gc
import sys
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


def test_compiled_modules_are_built_from_the_current_source() -> None:
    # An editable install compiles runner.py (with runner.pxd) and _tuples.pyx in place; after an edit,
    # the stale extension would still be what imports find. Reinstall the plugin after editing.
    sources = {"runner": ["runner.py", "runner.pxd"], "_tuples": ["_tuples.pyx"]}
    for module in _compiled():
        built = Path(str(module.__file__)).stat().st_mtime
        for name in sources[module.__name__.rsplit(".", 1)[1]]:
            assert built >= (PACKAGE / name).stat().st_mtime, (
                f"{module.__name__} is compiled from an older {name}: "
                "run `pip install -e plugins/scenario` (or COMFYVN_PURE_PYTHON=1 to build without compiling)"
            )


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


def test_new_tuple_refuses_what_tuple_new_refuses() -> None:
    new_tuple = _helper().new_tuple
    with pytest.raises(TypeError):
        new_tuple(dict, ())
    with pytest.raises(TypeError):
        new_tuple(Pair, [1, 2])  # fields must be an exact tuple
    with pytest.raises(TypeError):
        new_tuple(None, (1, 2))

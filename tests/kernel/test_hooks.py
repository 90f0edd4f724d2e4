"""One test per kernel hook (named ``test_hook_<name>``), plus the meta-tests that enforce it."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pluggy
import pytest
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl, hookspec, hookspecs
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn.plugins import HookFailure
from structlog.testing import capture_logs

ROOT = Path(__file__).resolve().parents[2]


class ExtraSpecs:
    @hookspec(firstresult=True)
    def pick_colour(self, character: str) -> str | None:
        """Resolve one colour for a character."""


def test_hook_add_hookspecs(make_kernel: Callable[..., Kernel]) -> None:
    class Publisher:
        @hookimpl
        def add_hookspecs(self, pm: pluggy.PluginManager) -> None:
            pm.add_hookspecs(ExtraSpecs)

    class Fallback:
        @hookimpl(trylast=True)
        def pick_colour(self, character: str) -> str:
            return "#ffffff"

    class Winner:
        @hookimpl
        def pick_colour(self, character: str) -> str:
            return "#ff88cc"

    class Typo:
        @hookimpl
        def pick_colur(self, character: str) -> str:
            return "#000000"

    kernel = make_kernel(Fallback(), Winner(), Publisher(), Typo())
    assert kernel.pm.hook.pick_colour(character="seraphina") == "#ff88cc"
    assert kernel.plugins.records["typo"].status == "failed"
    assert {"fallback", "winner", "publisher"} <= {n for n, r in kernel.plugins.records.items() if r.status == "loaded"}


def test_hook_register_events(make_kernel: Callable[..., Kernel]) -> None:
    class Emitter:
        @hookimpl
        def register_events(self, register: Any) -> None:
            register("on_scene_enter", "A scene was entered.", {"type": "object", "required": ["scene_id"]})

    kernel = make_kernel(Emitter())
    spec = kernel.events.spec("on_scene_enter")
    assert spec is not None and spec.owner == "emitter"
    assert kernel.events.emit("on_scene_enter", {"scene_id": "s1"}).seq == 1


def test_hook_register_flags(make_kernel: Callable[..., Kernel]) -> None:
    class Flagger:
        @hookimpl
        def register_flags(self, register: Any) -> None:
            register("enable_battle_sim", True, "Battle simulation.")

    kernel = make_kernel(Flagger())
    state = kernel.flags.get("enable_battle_sim")
    assert (state.value, state.owner, state.source) == (True, "flagger", "default")


def test_hook_register_commands(make_kernel: Callable[..., Kernel]) -> None:
    class Commander:
        @hookimpl
        def register_commands(self, cli: click.Group) -> None:
            @cli.group("weather")
            def weather() -> None:
                """Weather."""

            @weather.command("where")
            @click.pass_obj
            def where(kernel: Kernel) -> None:
                click.echo(str(kernel.paths.data))

    kernel = make_kernel(Commander())
    result = CliRunner().invoke(make_cli(kernel), ["weather", "where"])
    assert result.exit_code == 0 and result.output.strip() == str(kernel.paths.data)


def test_hook_register_routes(make_kernel: Callable[..., Kernel]) -> None:
    sentinel_route = object()

    class Router:
        @hookimpl
        def register_routes(self, kernel: Kernel) -> list[object]:
            return [sentinel_route]

    class BrokenRouter:
        @hookimpl
        def register_routes(self, kernel: Kernel) -> list[object]:
            raise RuntimeError("route construction failed")

    kernel = make_kernel(Router(), BrokenRouter())
    assert kernel.routes() == [("router", sentinel_route)]
    assert kernel.plugins.records["brokenrouter"].status == "failed"


def test_hook_startup(make_kernel: Callable[..., Kernel]) -> None:
    calls: list[str] = []

    class First:
        @hookimpl
        def startup(self, kernel: Kernel) -> None:
            calls.append("first")

    class Crashes:
        @hookimpl
        def startup(self) -> None:
            raise RuntimeError("no GPU")

    class Last:
        @hookimpl
        def startup(self, kernel: Kernel) -> None:
            calls.append("last")

    kernel = make_kernel(First(), Crashes(), Last())
    kernel.startup()
    kernel.startup()  # idempotent
    assert calls == ["last", "first"]  # pluggy's order: the last-registered plugin first
    assert "no GPU" in (kernel.plugins.records["crashes"].error or "")


def test_hook_shutdown(make_kernel: Callable[..., Kernel]) -> None:
    calls: list[str] = []

    class A:
        @hookimpl
        def shutdown(self) -> None:
            calls.append("a")

    class B:
        @hookimpl
        def shutdown(self) -> None:
            calls.append("b")
            raise RuntimeError("flush failed")

    class C:
        @hookimpl
        def shutdown(self) -> None:
            calls.append("c")

    with make_kernel(A(), B(), C()):
        pass
    assert calls == ["a", "b", "c"]  # the reverse of startup's order (last-registered first)


# -- the dispatcher: one order, one isolation policy ---------------------------------------------
class OrderSpecs:
    @hookspec
    def contribute(self, log: list[str]) -> str:
        """Every plugin contributes one word."""


def _contributor(name: str, **opts: bool) -> object:
    class Contributor:
        @hookimpl(**opts)
        def contribute(self, log: list[str]) -> str:
            log.append(name)
            return name

    plugin = Contributor()
    plugin.name = name  # type: ignore[attr-defined]
    return plugin


class Publishes:
    @hookimpl
    def add_hookspecs(self, pm: pluggy.PluginManager) -> None:
        pm.add_hookspecs(OrderSpecs)


def test_dispatcher_calls_the_last_registered_contributor_first(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(Publishes(), _contributor("early"), _contributor("late"))
    calls: list[str] = []
    assert kernel.plugins.call_each("contribute", log=calls) == [("late", "late"), ("early", "early")]
    assert kernel.pm.hook.contribute(log=[]) == ["late", "early"]  # pluggy agrees
    assert [name for name, _ in kernel.plugins.call_each("contribute", reverse=True, log=[])] == ["early", "late"]


def test_dispatcher_honours_tryfirst_and_trylast(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(
        Publishes(),
        _contributor("first", tryfirst=True),
        _contributor("fallback", trylast=True),
        _contributor("a"),
        _contributor("b"),
    )
    order = [name for name, _ in kernel.plugins.call_each("contribute", log=[])]
    assert order == ["first", "b", "a", "fallback"] == kernel.pm.hook.contribute(log=[])


def test_dispatcher_isolates_a_raising_plugin(make_kernel: Callable[..., Kernel]) -> None:
    class Broken:
        @hookimpl
        def contribute(self, log: list[str]) -> str:
            raise RuntimeError("disk on fire")

    kernel = make_kernel(Publishes(), _contributor("early"), Broken(), _contributor("late"))
    with capture_logs() as logs:
        answers = kernel.plugins.call_each("contribute", on_error="log", log=[])
    assert answers == [("late", "late"), ("early", "early")]
    assert [(e["plugin"], e["hook"]) for e in logs if e["event"] == "plugin hook failed"] == [("broken", "contribute")]
    assert kernel.plugins.records["broken"].status == "loaded"  # logged and noted, not unregistered
    assert "disk on fire" in (kernel.plugins.records["broken"].error or "")

    reported = dict(kernel.plugins.call_each("contribute", on_error="report", log=[]))
    assert isinstance(reported["broken"], HookFailure) and reported["late"] == "late"

    kernel.plugins.call_each("contribute", log=[])  # the default for registration hooks: unregister
    assert kernel.plugins.records["broken"].status == "failed"
    assert [name for name, _ in kernel.plugins.call_each("contribute", log=[])] == ["late", "early"]


def test_dispatcher_lets_the_callers_errors_through(make_kernel: Callable[..., Kernel]) -> None:
    class Refuses:
        @hookimpl
        def contribute(self, log: list[str]) -> str:
            raise ComfyVNError("scene s1 has no text", field="scenes.s1.text")

    kernel = make_kernel(Publishes(), Refuses(), _contributor("late"))
    with pytest.raises(ComfyVNError) as caught:
        kernel.plugins.call_each("contribute", on_error="log", propagate=(ComfyVNError,), log=[])
    assert caught.value.field == "scenes.s1.text"
    assert kernel.plugins.records["refuses"].error is None  # not the plugin's failure


def test_dispatcher_skips_unpublished_hooks_and_wrappers(make_kernel: Callable[..., Kernel]) -> None:
    class Wrapper:
        @hookimpl(wrapper=True)
        def contribute(self, log: list[str]) -> Any:
            log.append("wrapped")
            return (yield)

    kernel = make_kernel(Publishes(), _contributor("only"), Wrapper())
    calls: list[str] = []
    assert kernel.plugins.call_each("contribute", log=calls) == [("only", "only")] and calls == ["only"]
    assert kernel.plugins.call_each("nobody_publishes_this") == []


# -- meta-tests -------------------------------------------------------------------------------
def _hookspec_modules() -> list[tuple[str, list[str]]]:
    """(owner, hook names) for the kernel and every plugin that publishes hookspecs."""
    found = [
        ("kernel", [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(f, "comfyvn_spec")])
    ]
    for path in sorted(ROOT.glob("plugins*/*/comfyvn_*/hookspecs.py")):
        tree = ast.parse(path.read_text())
        names = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and any("hookspec" in ast.unparse(d) for d in node.decorator_list)
        ]
        found.append((path.parent.name.removeprefix("comfyvn_"), names))
    return found


def test_every_hookspec_has_a_test() -> None:
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    missing = [
        f"{owner}:{name}"
        for owner, names in _hookspec_modules()
        for name in names
        if not re.search(rf"def test_hook_{name}\b", tests)
    ]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_every_hookspec_is_documented() -> None:
    central = (ROOT / "docs" / "plugin_hooks.md").read_text()

    def docs_for(owner: str) -> str:
        own = ROOT / "docs" / f"{owner}.md"
        return central + (own.read_text() if owner != "kernel" and own.exists() else "")

    missing = [
        f"{owner}:{name}"
        for owner, names in _hookspec_modules()
        for name in names
        if not re.search(rf"^##+ `?{name}\b", docs_for(owner), re.M)
    ]
    assert not missing, f"hooks without a heading in docs/plugin_hooks.md or docs/<plugin>.md: {missing}"


def test_meta_tests_see_the_kernel_hooks() -> None:
    kernel_hooks = dict(_hookspec_modules())["kernel"]
    assert set(kernel_hooks) == {
        "add_hookspecs",
        "register_events",
        "register_flags",
        "register_commands",
        "register_routes",
        "startup",
        "shutdown",
    }

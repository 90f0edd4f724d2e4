"""Import contracts: the kernel imports no plugin; a plugin imports another only if it declares it.

Checked statically over every workspace member's source (``kernel/``, ``plugins/*``,
``plugins-contrib/*``), reading each member's declared dependencies from its pyproject.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]


@attrs.frozen
class Member:
    distribution: str
    package: str
    folder: Path
    depends: frozenset[str]


def package_of(distribution: str) -> str:
    return "comfyvn" if distribution == "comfyvn-kernel" else distribution.replace("-", "_")


def members(root: Path) -> list[Member]:
    found = []
    for pyproject in sorted([root / "kernel" / "pyproject.toml", *root.glob("plugins*/*/pyproject.toml")]):
        if not pyproject.exists():
            continue
        project = tomllib.loads(pyproject.read_text())["project"]
        deps = {re.split(r"[\s<>=!~\[;]", d, maxsplit=1)[0].lower() for d in project.get("dependencies", [])}
        found.append(
            Member(
                project["name"],
                package_of(project["name"]),
                pyproject.parent,
                frozenset(d for d in deps if d.startswith("comfyvn")),
            )
        )
    return found


def imported_comfyvn_packages(folder: Path) -> dict[str, set[str]]:
    """Top-level ``comfyvn*`` packages imported by each source file (tests excluded)."""
    result: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        if "tests" in path.relative_to(folder).parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        result[str(path.relative_to(folder))] = {n for n in names if n == "comfyvn" or n.startswith("comfyvn_")}
    return result


def violations(root: Path) -> list[str]:
    by_package = {m.package: m for m in members(root)}
    problems = []
    for member in by_package.values():
        for file, imported in imported_comfyvn_packages(member.folder).items():
            for package in sorted(imported - {member.package}):
                where = f"{member.distribution}:{file} imports {package}"
                if member.package == "comfyvn":
                    problems.append(f"{where}: the kernel imports no plugin")
                elif package == "comfyvn_server":
                    problems.append(f"{where}: no plugin imports the server plugin")
                elif package not in by_package:
                    problems.append(f"{where}: not a workspace distribution")
                elif by_package[package].distribution not in member.depends:
                    problems.append(f"{where}: not declared in its pyproject dependencies")
    graph = {m.distribution: set(m.depends) for m in by_package.values()}
    problems += [f"dependency cycle through {name}" for name in graph if _reaches(graph, name, name, set())]
    return problems


def _reaches(graph: dict[str, set[str]], start: str, target: str, seen: set[str]) -> bool:
    for nxt in graph.get(start, ()):
        if nxt == target:
            return True
        if nxt not in seen:
            seen.add(nxt)
            if _reaches(graph, nxt, target, seen):
                return True
    return False


def test_the_workspace_keeps_its_import_contracts() -> None:
    assert members(ROOT), "no workspace members found"
    assert violations(ROOT) == []


def _member(root: Path, name: str, deps: list[str], source: str) -> None:
    folder = root / ("kernel" if name == "comfyvn-kernel" else f"plugins/{name.removeprefix('comfyvn-')}")
    package = folder / package_of(name)
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    (folder / "pyproject.toml").write_text(f'[project]\nname = "{name}"\ndependencies = {deps!r}\n')


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import comfyvn_alpha\n", "the kernel imports no plugin"),
    ],
)
def test_checker_catches_a_kernel_importing_a_plugin(tmp_path: Path, source: str, expected: str) -> None:
    _member(tmp_path, "comfyvn-kernel", [], source)
    _member(tmp_path, "comfyvn-alpha", ["comfyvn-kernel"], "import comfyvn\n")
    assert any(expected in v for v in violations(tmp_path))


def test_checker_catches_undeclared_server_and_cyclic_imports(tmp_path: Path) -> None:
    _member(tmp_path, "comfyvn-kernel", [], "")
    _member(tmp_path, "comfyvn-server", ["comfyvn-kernel"], "")
    _member(tmp_path, "comfyvn-alpha", ["comfyvn-kernel", "comfyvn-beta"], "from comfyvn_beta import x\n")
    _member(tmp_path, "comfyvn-beta", ["comfyvn-kernel", "comfyvn-alpha"], "")
    _member(
        tmp_path,
        "comfyvn-gamma",
        ["comfyvn-kernel"],
        "import comfyvn_alpha.domain\nfrom comfyvn_server import create_app\n",
    )
    found = "\n".join(violations(tmp_path))
    assert "comfyvn-gamma:comfyvn_gamma/__init__.py imports comfyvn_alpha: not declared" in found
    assert "no plugin imports the server plugin" in found
    assert "dependency cycle through comfyvn-alpha" in found
    assert "comfyvn-alpha:comfyvn_alpha/__init__.py imports comfyvn_beta" not in found

"""The studio distribution stays consistent: plugin sets, root dependencies, requirements, flag defaults."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from comfyvn import RuntimePaths, create_kernel
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = sorted([ROOT / "kernel", *(p.parent for p in ROOT.glob("plugins*/*/pyproject.toml"))])


def studio() -> list[str]:
    return sorted(json.loads((ROOT / "config" / "plugin-sets.json").read_text())["studio"])


def test_studio_set_matches_the_root_distribution_and_requirements() -> None:
    deps = [
        Requirement(d).name for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    plugins = sorted(d.removeprefix("comfyvn-") for d in deps if d != "comfyvn-kernel")
    assert plugins == studio()
    # An entry may name extras (-e ./plugins/layers[cpu]): the plugin is the folder before them.
    editable = re.findall(r"^-e \./plugins/([^\s\[]+)(?:\[[^\]\s]*\])?$", (ROOT / "requirements.txt").read_text(), re.M)
    assert sorted(editable) == studio()
    for name in studio():
        project = tomllib.loads((ROOT / "plugins" / name / "pyproject.toml").read_text())["project"]
        assert project["entry-points"]["comfyvn"] == {name: f"comfyvn_{name}.plugin"}


def test_default_config_lists_every_studio_flag_with_its_declared_default(tmp_path: Path) -> None:
    kernel = create_kernel(paths=RuntimePaths.under(tmp_path), env={"COMFYVN_PLUGINS": ",".join(studio())})
    loaded = sorted(name for name, record in kernel.plugins.records.items() if record.status == "loaded")
    assert loaded == studio()
    declared = {state.name: state.spec.default for state in kernel.flags.states()}
    shipped = json.loads((ROOT / "config" / "comfyvn.json").read_text())["features"]
    assert shipped == declared


def _project(folder: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return project


def test_the_test_extra_and_requirements_test_list_the_same_tools() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    lines = (ROOT / "requirements-test.txt").read_text().splitlines()
    listed = [line.split("#")[0].strip() for line in lines]
    tools = [line for line in listed if line and not line.startswith("-")]
    assert _pairs(tools) == _pairs(extra)


def _pairs(requirements: list[str]) -> list[tuple[str, str]]:
    """(name, version range) of each requirement (packaging is pytest's own dependency)."""
    return sorted((r.name.lower(), str(r.specifier)) for r in map(Requirement, requirements))


def test_every_member_is_licensed_typed_and_classified() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) 2026 The ComfyVN developers")
    for folder in MEMBERS:
        project = _project(folder)
        assert project.get("license") == "MIT", folder
        assert "Typing :: Typed" in project.get("classifiers", []), folder
        # The licence text travels in each member's wheel and sdist (hatchling and setuptools pick up LICENSE*).
        assert (folder / "LICENSE").read_text() == (ROOT / "LICENSE").read_text(), folder
        packages = project_packages(folder)
        assert packages, folder
        for package in packages:
            assert (folder / package / "py.typed").is_file(), f"{folder.name}/{package} has no py.typed"


def project_packages(folder: Path) -> list[str]:
    """The import packages a member's wheel ships: hatch's ``packages`` list, or setuptools' for a member
    that builds extensions (roleplay), which must then ship its ``py.typed`` as package data."""
    config = tomllib.loads((folder / "pyproject.toml").read_text())
    tool = config["tool"]
    if "setuptools" in tool:
        packages: list[str] = tool["setuptools"]["packages"]
        for package in packages:
            assert "py.typed" in tool["setuptools"]["package-data"][package], f"{folder.name}: py.typed not shipped"
        return packages
    packages = tool["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


def test_members_pin_each_other_to_a_compatible_range() -> None:
    versions = {_project(folder)["name"]: Version(_project(folder)["version"]) for folder in MEMBERS}
    for folder in [ROOT, *MEMBERS]:
        for raw in _project(folder).get("dependencies", []):
            req = Requirement(raw)
            if not req.name.startswith("comfyvn"):
                continue
            version = versions[req.name]
            assert version in req.specifier, f"{folder.name}: {raw} excludes {req.name} {version}"
            # A range, not an open floor: 0.x minor releases of the kernel may break plugins.
            next_minor = Version(f"{version.major}.{version.minor + 1}")
            assert next_minor not in req.specifier, f"{folder.name}: {raw} admits {next_minor}"

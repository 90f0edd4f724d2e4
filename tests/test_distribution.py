"""The studio distribution stays consistent: plugin sets, root dependencies, requirements, flag defaults."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from comfyvn import RuntimePaths, create_kernel

ROOT = Path(__file__).resolve().parents[1]


def studio() -> list[str]:
    return sorted(json.loads((ROOT / "config" / "plugin-sets.json").read_text())["studio"])


def test_studio_set_matches_the_root_distribution_and_requirements() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    plugins = sorted(d.removeprefix("comfyvn-") for d in deps if d != "comfyvn-kernel")
    assert plugins == studio()
    editable = re.findall(r"^-e \./plugins/(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
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

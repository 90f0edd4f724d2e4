"""Asset references no file system can name (a name past 255 bytes, a path past PATH_MAX) are missing assets —
a warning — in the web player, the mini viewer, the Ren'Py export and the policy enforcer; never a 500.

They once reached ``Path.is_file()`` and its OSError (ENAMETOOLONG) became ``internal_error``."""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import comfyvn_advisory.plugin
import comfyvn_rating.plugin
import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import httpx
import pytest
from comfyvn import Kernel
from comfyvn_advisory.scanners import project_assets
from comfyvn_renpy.layout import _resolve

_LONG_NAME = "x" * 300
_LONG_PATH = "/".join(["ab"] * 2100)  # short names, 6,300 bytes in all
_PROJECT = {
    "project": {"id": "p", "title": "Long refs", "start": "s", "characters": {"ann": {"name": "Ann"}}},
    "scenes": [
        {
            "id": "s",
            "start": "a",
            "nodes": [{"id": "a", "text": "Hello", "speaker": "ann", "end": True}],
        }
    ],
}
_NODE_FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "background": lambda ref: {"background": ref},
    "voice": lambda ref: {"voice": ref},
    "music": lambda ref: {"music": {"track": ref}},
    "sfx": lambda ref: {"sfx": [{"sound": ref}]},
}


def _body(project_id: str, node_extra: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(_PROJECT)
    body["project"]["id"] = project_id
    body["scenes"][0]["nodes"][0].update(node_extra)
    return body


def test_resolve_and_project_assets_treat_unnameable_refs_as_missing(tmp_path: Path) -> None:
    (tmp_path / "bg.png").write_bytes(b"\x89PNG")
    for ref in (_LONG_NAME, _LONG_PATH, "é" * 200):
        assert _resolve(tmp_path, ref) is None
    assert _resolve(tmp_path, "bg.png") == tmp_path.resolve() / "bg.png"

    class Stub:
        root = tmp_path
        characters: dict[str, Any] = {"ann": {"portrait": _LONG_NAME}}
        scenes = {"s": {"background": "bg.png", "nodes": [{"voice": _LONG_PATH, "sfx": [{"sound": _LONG_NAME}]}]}}

    assert project_assets(Stub()) == ["bg.png"]


@pytest.mark.parametrize("enforcer", ["0", "1"])
def test_over_long_refs_are_missing_assets_over_http(
    make_kernel: Callable[..., Kernel], live_server: Callable[[Kernel], AbstractContextManager[str]], enforcer: str
) -> None:
    kernel = make_kernel(
        comfyvn_server.plugin,
        comfyvn_scenario.plugin,
        comfyvn_renpy.plugin,
        comfyvn_rating.plugin,
        comfyvn_advisory.plugin,
        comfyvn_viewer.plugin,
        env={"COMFYVN_FEATURE_ENABLE_POLICY_ENFORCER": enforcer},
    )
    cases = {
        f"{field}-{kind}": make(ref)
        for field, make in _NODE_FIELDS.items()
        for kind, ref in (("name", _LONG_NAME), ("path", _LONG_PATH))
    }
    with live_server(kernel) as base, httpx.Client(base_url=base, timeout=60) as http:
        for project_id, extra in cases.items():
            created = http.post("/api/projects", json=_body(project_id, extra))
            assert created.status_code == 201, created.text
            answers = {
                "info": http.get(f"/api/viewer/play/{project_id}/info"),
                "start": http.post(f"/api/viewer/play/{project_id}/start", json={}),
                "mini": http.post("/api/viewer/mini/snapshot", json={"project": project_id}),
                "export": http.post("/api/renpy/export", json={"project": project_id, "dry_run": True}),
            }
            for name, answer in answers.items():
                assert answer.status_code == 200, (project_id, name, answer.text[:300])
            warnings = " ".join(answers["export"].json()["warnings"])
            assert "missing" in warnings or "not found" in warnings, (project_id, warnings[:300])

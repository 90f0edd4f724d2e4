"""POV rewrite of a store project: narration restyled through a model, choices, targets, speakers and ids kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import comfyvn_narrator.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import pytest
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import make_cli
from comfyvn.errors import NotFound, UpstreamError
from comfyvn_narrator.packs_cli import pov_rewrite_command
from comfyvn_narrator.pov import pov_rewrite
from comfyvn_narrator.pov_routes import make_pov_routes
from comfyvn_narrator.session import FLAG
from comfyvn_scenario import ProjectStore
from comfyvn_scenario.project import Project
from comfyvn_server import create_app
from starlette.testclient import TestClient

from . import model_help
from .model_help import Script

scripted_base = model_help.scripted_base
script = model_help.script
model_kernel = model_help.model_kernel
offline_kernel = model_help.offline_kernel

SCENE: dict[str, Any] = {
    "id": "pier",
    "start": "n1",
    "title": "The pier",
    "nodes": [
        {"id": "n1", "type": "narration", "text": "The ferry is late.", "choices": [{"id": "go", "target": "n2"}]},
        {"id": "n2", "speaker": "mira", "text": "Where is he?", "choices": [{"target": "n3", "label": "Wait"}]},
        {"id": "n3", "text": "Lanterns sway over the water.", "choices": [{"target": "n4"}, {"target": "n1"}]},
        {"id": "n4", "type": "end", "text": "Night falls."},
    ],
}
CHARACTERS = {"mira": {"name": "Mira Vale", "description": "A harbour pilot."}, "dax": {"name": "Dax"}}
ANSWER: dict[str, Any] = {
    "narration": {"n1": "Mira checks the clock again: the ferry is late.", "n3": "Mira watches the lanterns sway."},
    "monologue": "He promised.",
    "observations": ["the clock", "the lanterns"],
}


def _project(kernel: Kernel) -> int:
    project = Project(
        meta={"id": "harbour", "title": "Harbour", "start": "pier", "characters": CHARACTERS}, scenes={"pier": SCENE}
    )
    return ProjectStore.for_kernel(kernel).create(project, project_id="harbour").version


def _without_text(scene: dict[str, Any]) -> list[Any]:
    return [{k: v for k, v in n.items() if k not in ("text", "pov")} for n in scene["nodes"]]


def test_narration_is_rewritten_and_nothing_else(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(comfyvn_scenario.plugin)
    version = _project(kernel)
    script.replies(ANSWER)
    result = pov_rewrite(kernel, "harbour", pov="mira")
    assert result["rewritten"] == 2 and result["adapter"] == "openai" and result["version"] > version
    assert result["scenes"] == [
        {
            "id": "pier",
            "rewritten": 2,
            "nodes": ["n1", "n3"],
            "monologue": "He promised.",
            "observations": ANSWER["observations"],
        }
    ]
    scene, _ = ProjectStore.for_kernel(kernel).scene("harbour", "pier")
    assert _without_text(scene) == _without_text(SCENE)
    assert [n["text"] for n in scene["nodes"]] == [
        ANSWER["narration"]["n1"],
        "Where is he?",
        ANSWER["narration"]["n3"],
        "Night falls.",
    ]
    assert [n.get("pov") for n in scene["nodes"]] == ["mira", None, "mira", None]
    assert scene["metadata"]["pov_rewrite"]["monologue"] == "He promised."
    prompt = script.log()[0]["messages"][1]["content"]
    assert "n1 | narration | rewrite | The ferry is late." in prompt
    assert "n2 | Mira Vale | Where is he?" in prompt and "n4 | narration | Night falls." in prompt
    assert "Point of view: mira (Mira Vale) — A harbour pilot." in prompt


def test_rewriting_dialogue_or_an_end_is_refused_then_repaired(
    model_kernel: Callable[..., Kernel], script: Script
) -> None:
    kernel = model_kernel(comfyvn_scenario.plugin)
    _project(kernel)
    script.replies({**ANSWER, "narration": {"n2": "Mira wonders where he is."}}, ANSWER)
    assert pov_rewrite(kernel, "harbour", pov="mira", scene_id="pier")["rewritten"] == 2
    assert "narration/n2: not a rewrite line id you were given" in script.log()[1]["messages"][-1]["content"]


def test_invalid_twice_changes_nothing(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(comfyvn_scenario.plugin)
    version = _project(kernel)
    script.replies("{", '{"narration": {}}')
    with pytest.raises(UpstreamError) as raised:
        pov_rewrite(kernel, "harbour", pov="mira")
    assert raised.value.code == "invalid_model_answer"
    stored = ProjectStore.for_kernel(kernel).load("harbour")
    assert stored.version == version and stored.project.scenes["pier"] == SCENE


def test_an_unknown_pov_or_scene_is_not_found(offline_kernel: Callable[..., Kernel]) -> None:
    kernel = offline_kernel(comfyvn_scenario.plugin)
    _project(kernel)
    with pytest.raises(NotFound) as pov:
        pov_rewrite(kernel, "harbour", pov="nobody")
    assert pov.value.code == "pov_not_found"
    with pytest.raises(NotFound) as scene:
        pov_rewrite(kernel, "harbour", pov="mira", scene_id="nowhere")
    assert scene.value.code == "scene_not_found"


def test_offline_rewrites_nothing_and_says_so(offline_kernel: Callable[..., Kernel]) -> None:
    kernel = offline_kernel(comfyvn_scenario.plugin)
    version = _project(kernel)
    result = pov_rewrite(kernel, "harbour", pov="dax")
    assert (result["adapter"], result["rewritten"], result["version"]) == ("offline", 0, version)
    assert result == pov_rewrite(kernel, "harbour", pov="dax")
    assert ProjectStore.for_kernel(kernel).load("harbour").project.scenes["pier"] == SCENE


class PovRoutes:
    """What the lead wires into the narrator plugin: the POV route factory."""

    @hookimpl
    def register_routes(self, kernel: Kernel) -> list[Any]:
        return make_pov_routes(kernel)


def _http_kernel(factory: Callable[..., Kernel], *, enabled: bool) -> Kernel:
    kernel = factory(comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_narrator.plugin, PovRoutes())
    if enabled:
        kernel.flags.set(FLAG, True)
    _project(kernel)
    return kernel


def test_the_route_rewrites_with_the_flag_on(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = _http_kernel(model_kernel, enabled=True)
    script.replies(ANSWER)
    with TestClient(create_app(kernel)) as client:
        answer = client.post("/api/narrator/pov_rewrite", json={"project": "harbour", "pov": "mira", "scene": "pier"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] and body["rewritten"] == 2 and body["adapter"] == "openai" and body["pov"] == "mira"
    assert ProjectStore.for_kernel(kernel).load("harbour").version == body["version"]


def test_the_route_needs_the_flag(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = _http_kernel(model_kernel, enabled=False)
    with TestClient(create_app(kernel)) as client:
        refused = client.post("/api/narrator/pov_rewrite", json={"project": "harbour", "pov": "mira"})
        # The test client is no loopback peer, so force does not stand in for the flag either.
        forced = client.post("/api/narrator/pov_rewrite", json={"project": "harbour", "pov": "mira", "force": True})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == FLAG
    assert forced.status_code == 403
    # as on the session routes (docs/narrator.md): a refused force says why, and a force that is no boolean is 400
    assert "force" not in refused.json()["error"]
    assert "this machine" in forced.json()["error"]["force"]
    assert script.log() == []


def test_the_route_refuses_a_force_that_is_not_a_boolean(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = _http_kernel(model_kernel, enabled=False)
    with TestClient(create_app(kernel)) as client:
        answer = client.post("/api/narrator/pov_rewrite", json={"project": "harbour", "pov": "mira", "force": "1"})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "force"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"pov": "mira"}, 400, "project"),
        ({"project": "harbour", "pov": 3}, 400, "pov"),
        ({"project": "harbour", "pov": "mira", "colour": "red"}, 400, "colour"),
        ({"project": "harbour", "pov": "mira", "gate": []}, 400, "gate"),
        ({"project": "nowhere", "pov": "mira"}, 404, "project"),
        ({"project": "harbour", "pov": "ghost"}, 404, "pov"),
        ({"project": "harbour", "pov": "mira", "scene": "../x"}, 400, "scene"),
        ({"project": "harbour", "pov": "mira", "scene": "nowhere"}, 404, "scene"),
    ],
)
def test_bad_requests_name_the_field(
    model_kernel: Callable[..., Kernel], script: Script, body: dict[str, Any], status: int, field: str
) -> None:
    kernel = _http_kernel(model_kernel, enabled=True)
    with TestClient(create_app(kernel)) as client:
        answer = client.post("/api/narrator/pov_rewrite", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["field"] == field
    assert script.log() == []


def test_the_command_rewrites_and_prints(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = _http_kernel(model_kernel, enabled=False)
    cli = make_cli(kernel)
    cli.add_command(pov_rewrite_command)
    refused = CliRunner().invoke(cli, ["pov-rewrite", "harbour", "--pov", "mira"])
    assert refused.exit_code == 2 and "enable_narrator" in refused.output
    script.replies(ANSWER)
    done = CliRunner().invoke(cli, ["pov-rewrite", "harbour", "--pov", "mira", "--force", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rewritten"] == 2
    script.replies("x", "y")
    failed = CliRunner().invoke(cli, ["pov-rewrite", "harbour", "--pov", "dax", "--force"])
    assert failed.exit_code == 1 and "not valid after one repair" in failed.output
    missing = CliRunner().invoke(cli, ["pov-rewrite", "harbour", "--pov", "ghost", "--force"])
    assert missing.exit_code == 2 and "ghost" in missing.output

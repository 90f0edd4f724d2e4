"""What a session stores must stay readable: model answers and observed variables that JSON allows but the
kernel's reader refuses (NaN, Infinity, huge integers, lone surrogates, deep nesting) never reach a session file.

Found by review: such an answer was queued (a session then answered 422 ``session_unreadable`` for good) or
crashed the digest (500); deep variables set by ``mode`` made the session unreadable after the next apply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from comfyvn import Kernel
from starlette.testclient import TestClient

from .conftest import ScriptedModel, turn


def nested(depth: int) -> dict[str, Any]:
    """An object nesting ``depth`` levels of objects (``{"k": {"k": … 1}}``)."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    result: dict[str, Any] = value
    return result


def answer_with(literal: str) -> str:
    """A NARRATOR_TURN answer whose ``vars_patch.x`` is ``literal`` as written (JSON text, not a Python value)."""
    return '{"narration": "N", "rationale": "r", "choice_id": null, "vars_patch": {"x": ' + literal + "}}"


def status(client: TestClient, scene: str) -> httpx.Response:
    return client.get("/api/narrator/status", params={"scene_id": scene})


@pytest.mark.parametrize(
    "literal",
    ["NaN", "1e999", "-Infinity", "1" * 50, '"\\ud800"', json.dumps(nested(60))],
    ids=["nan", "overflow", "infinity", "huge-int", "surrogate", "deep"],
)
def test_an_unstorable_answer_is_repaired_and_never_queued(
    literal: str,
    narrator_kernel: Callable[..., Kernel],
    http_for: Callable[[Kernel], TestClient],
    scripted: ScriptedModel,
) -> None:
    client = http_for(narrator_kernel(scripted=True))
    assert client.post("/api/narrator/mode", json={"scene_id": "s", "mode": "propose", "node_id": "n"}).is_success
    scripted.answer(answer_with(literal), answer_with(literal))
    refused = client.post("/api/narrator/propose", json={"scene_id": "s"})
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "invalid_model_answer"
    after = status(client, "s")
    assert after.status_code == 200, after.text
    assert after.json()["state"]["queue"] == []
    # the repair round named the problem to the model, and a good answer still goes through
    assert "vars_patch" in scripted.requests[-1]["messages"][-1]["content"]
    scripted.answer(answer_with("1"))
    assert client.post("/api/narrator/propose", json={"scene_id": "s"}).is_success
    assert status(client, "s").json()["state"]["queue"][0]["vars_patch"]["x"] == 1


def test_deep_observed_variables_are_refused_and_the_session_stays_readable(
    narrator_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient], scripted: ScriptedModel
) -> None:
    client = http_for(narrator_kernel(scripted=True))
    deep = {"scene_id": "s", "mode": "propose", "node_id": "n", "variables": nested(61)}
    answer = client.post("/api/narrator/mode", json=deep)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"].startswith("variables")
    # within the bound, the whole cycle (the snapshot in the rollback ring nests deepest) stays readable
    assert client.post("/api/narrator/mode", json={**deep, "variables": nested(31)}).is_success
    scripted.answer(turn(patch={"y": 1}))
    assert client.post("/api/narrator/propose", json={"scene_id": "s"}).is_success
    assert client.post("/api/narrator/apply", json={"scene_id": "s", "proposal_id": "p0001"}).is_success
    assert status(client, "s").status_code == 200
    assert client.post("/api/narrator/rollback", json={"scene_id": "s"}).is_success
    assert status(client, "s").json()["state"]["variables"] == nested(31)

"""The /api/llm routes: offline by default and deterministic, SSE streaming, flags, gates (423), roles and budgets."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel, hookimpl
from hypothesis import given
from hypothesis import strategies as st

from .conftest import OPENAI_KEY, fake_env

CHAT = {"messages": [{"role": "user", "content": "Where were you last night?"}]}
CONTEXT = {"scene": "the harbour", "speaker": "Mira", "last_lines": [{"speaker": "Mira", "text": "I waited."}]}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test: the offline path must not touch a socket."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_test_call_with_no_configuration_answers_offline_deterministically(
    llm_kernel: Callable[..., Kernel], http_for: Any, no_network: None
) -> None:
    http = http_for(llm_kernel())
    body = {**CHAT, "context": CONTEXT}
    first, second = (http.post("/api/llm/test-call", json=body) for _ in range(2))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["adapter"] == "offline" and answer["model"] == "codex/offline-narrator"
    assert "the harbour" in answer["reply"] and "Mira" in answer["reply"] and "I waited." in answer["reply"]
    assert set(answer["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert answer["reply"] == second.json()["reply"] and answer["raw"] == second.json()["raw"]


@given(
    text=st.text(min_size=1, max_size=200),
    scene=st.text(max_size=40),
    role=st.sampled_from(["narrator", "mc", "antagonist", "extras", "translator", "worldbuilder"]),
)
def test_the_offline_adapter_is_a_function_of_its_request(text: str, scene: str, role: str) -> None:
    import anyio
    from comfyvn_llm.adapters import ChatRequest
    from comfyvn_llm.adapters.offline import OfflineAdapter
    from comfyvn_llm.registry import default_providers

    adapter = OfflineAdapter(default_providers()[0])
    request = ChatRequest(
        "codex/offline-narrator", ({"role": "user", "content": text},), {}, {"scene": scene, "role": role}
    )
    one, two = anyio.run(adapter.chat, request), anyio.run(adapter.chat, request)
    assert one == two and one.reply


def test_streamed_chat_is_server_sent_events(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    http = http_for(llm_kernel())
    response = http.post("/api/llm/chat", json={**CHAT, "stream": True, "context": CONTEXT})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f]
    events = [
        (f.split("\n")[0].removeprefix("event: "), json.loads(f.split("\n")[1].removeprefix("data: "))) for f in frames
    ]
    deltas = "".join(d["text"] for kind, d in events if kind == "delta")
    assert events[-1][0] == "done" and events[-1][1]["reply"] == deltas
    whole = http.post("/api/llm/chat", json={**CHAT, "context": CONTEXT}).json()
    assert whole["reply"] == deltas


def test_streamed_chat_through_the_openai_fake(
    llm_kernel: Callable[..., Kernel], http_for: Any, fake_base: str, fake: Any
) -> None:
    kernel = llm_kernel(env=fake_env(fake_base, COMFYVN_FEATURE_ENABLE_LLM_EXTERNAL_PROVIDERS="1"))
    kernel.secrets.set("openai", "api_key", OPENAI_KEY)
    http = http_for(kernel)
    response = http.post("/api/llm/chat", json={**CHAT, "registry_id": "openai", "model": "fake-chat", "stream": True})
    assert response.status_code == 200
    assert "Echo:" in response.text and "event: done" in response.text
    broken = http.post("/api/llm/chat", json={**CHAT, "registry_id": "openai", "model": "cut", "stream": True})
    assert "event: error" in broken.text and "broken_stream" in broken.text
    denied = http.post("/api/llm/test-call", json={**CHAT, "registry_id": "openai", "model": "denied"})
    assert denied.status_code == 502 and denied.json()["error"]["code"] == "llm_upstream_error"
    assert OPENAI_KEY not in denied.text and OPENAI_KEY not in http.get("/api/llm/registry").text


def test_external_providers_are_off_by_default(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    http = http_for(llm_kernel())
    response = http.post("/api/llm/test-call", json={**CHAT, "registry_id": "openai"})
    assert response.status_code == 403 and response.json()["error"]["field"] == "enable_llm_external_providers"
    health = {p["id"]: p for p in http.get("/api/llm/health").json()["providers"]}
    assert health["openai"]["status"] == "disabled" and health["offline"]["status"] == "ok"


def test_bad_input_is_a_400_naming_the_field(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    http = http_for(llm_kernel())
    bad = http.post("/api/llm/test-call", json={"messages": [{"role": "robot", "content": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "messages[0].role"
    unknown = http.post("/api/llm/test-call", json={**CHAT, "registry_id": "nope"})
    assert unknown.status_code == 404
    param = http.post("/api/llm/test-call", json={**CHAT, "frobnicate": 1})
    assert param.status_code == 400 and param.json()["error"]["field"] == "frobnicate"


def test_runtime_adapters_and_keys_refused_in_the_registry(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    http = http_for(llm_kernel())
    keyed = http.post(
        "/api/llm/runtime",
        json={"id": "mine", "adapter": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-abcdefghijk"},
    )
    assert keyed.status_code == 400 and keyed.json()["error"]["code"] == "secret_in_registry"
    assert "sk-abcdefghijk" not in keyed.text
    added = http.post("/api/llm/runtime", json={"id": "mine", "adapter": "openai", "base_url": "http://127.0.0.1:9/v1"})
    assert added.status_code == 200 and added.json()["provider"]["source"] == "runtime"
    assert "mine" in [p["id"] for p in http.get("/api/llm/registry").json()["providers"]]
    assert http.delete("/api/llm/runtime/mine").status_code == 200
    assert http.delete("/api/llm/runtime/mine").status_code == 404


class BlockingGate:
    """A gate plugin that blocks prompts mentioning 'forbidden' (the contract any gate plugin follows)."""

    @hookimpl
    def llm_call_gate(self, prompt: str, options: dict[str, Any]) -> dict[str, Any] | None:
        if options.get("ack") == "yes":
            return {"allow": True, "warnings": ["acknowledged"]}
        return {"reason": "forbidden topic", "ack_token": "tok-1"} if "forbidden" in prompt else None


def test_hook_llm_call_gate(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    kernel = llm_kernel(BlockingGate())
    http = http_for(kernel)
    body = {"messages": [{"role": "user", "content": "a forbidden thing"}]}
    for route, extra in (("/api/llm/test-call", {}), ("/api/llm/chat", {"stream": True})):
        blocked = http.post(route, json={**body, **extra})
        assert blocked.status_code == 423, blocked.text
        error = blocked.json()["error"]
        assert error["code"] == "llm_blocked" and error["ack_token"] == "tok-1"
    assert not [e for e in kernel.events.history() if e.event == "on_llm_request"]  # nothing was sent
    allowed = http.post("/api/llm/test-call", json={**body, "gate": {"ack": "yes"}})
    assert allowed.status_code == 200 and allowed.json()["gate"]["warnings"] == ["acknowledged"]


def _roles_kernel(llm_kernel: Callable[..., Kernel]) -> Kernel:
    return llm_kernel(env={"COMFYVN_FEATURE_ENABLE_LLM_ROLE_MAPPING": "1"})


def test_roles_need_their_flag(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    assert http_for(llm_kernel()).get("/api/llm/roles").status_code == 403


def test_a_role_over_budget_is_refused_or_truncated_and_says_which(
    llm_kernel: Callable[..., Kernel], http_for: Any
) -> None:
    http = http_for(_roles_kernel(llm_kernel))
    long = [
        {"role": "system", "content": "You narrate."},
        {"role": "user", "content": "word " * 200},
        {"role": "assistant", "content": "reply " * 200},
        {"role": "user", "content": "And now?"},
    ]
    assert (
        http.post(
            "/api/llm/assign", json={"role": "narrator", "budget_tokens": 100, "over_budget": "refuse"}
        ).status_code
        == 200
    )
    refused = http.post("/api/llm/chat", json={"role": "narrator", "scene_id": "s1", "messages": long})
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert (
        error["code"] == "llm_budget_exceeded"
        and error["budget"]["action"] == "refused"
        and "refused" in error["message"]
    )

    http.post("/api/llm/assign", json={"role": "narrator", "budget_tokens": 100, "over_budget": "truncate"})
    answer = http.post("/api/llm/chat", json={"role": "narrator", "scene_id": "s1", "messages": long})
    assert answer.status_code == 200, answer.text
    budget = answer.json()["plan"]["budget"]
    assert budget["action"] == "truncated" and budget["dropped"] == 2 and budget["sent"] <= 100 < budget["estimated"]
    preview = http.post("/api/llm/chat", json={"role": "narrator", "scene_id": "s2", "messages": long, "dry_run": True})
    plan = preview.json()["plan"]
    assert plan["messages"] == [long[0], long[3]] and plan["provider"] == "offline"


def test_sessions_stick_to_a_scene(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    kernel = _roles_kernel(llm_kernel)
    http = http_for(kernel)
    http.post("/api/llm/runtime", json={"id": "other", "adapter": "offline", "models": ["other-model"]})
    first = http.post("/api/llm/chat", json={**CHAT, "role": "mc", "scene_id": "harbour"}).json()
    assert first["provider"] == "offline" and first["plan"]["sticky"] is False
    http.post("/api/llm/assign", json={"role": "mc", "provider": "other"})
    again = http.post("/api/llm/chat", json={**CHAT, "role": "mc", "scene_id": "harbour"}).json()
    assert again["provider"] == "offline" and again["plan"]["sticky"] is True
    fresh = http.post("/api/llm/chat", json={**CHAT, "role": "mc", "scene_id": "attic", "dry_run": True}).json()
    assert fresh["plan"]["provider"] == "other"
    roles = http.get("/api/llm/roles").json()
    assert roles["sessions"]["harbour"]["mc"]["provider"] == "offline" and roles["roles"]["mc"]["provider"] == "other"

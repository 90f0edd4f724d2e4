"""The CLI (classify, ack, mode, overrides; the exporter's exit 3 and --rating-ack-token), the LLM call gate
the llm plugin is to call, the store's failure modes, and that nothing here calls a network service."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import comfyvn_advisory.plugin
import comfyvn_rating.store as store_module
import pytest
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl, hookspec
from comfyvn.cli import exit_code, make_cli
from comfyvn.errors import Blocked, OperationFailed
from comfyvn_advisory import enforce
from comfyvn_rating import RatingService, llm_call_gate, require_llm_call
from comfyvn_rating.store import RatingStore
from comfyvn_renpy import ExportRequest, run_export
from comfyvn_scenario import ProjectStore
from comfyvn_server.errors import http_status
from rating_fixtures import import_adult_chat


def _cli(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args))


def test_cli_export_is_blocked_then_passes_with_the_acknowledged_token(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    project_id = import_adult_chat(kernel)
    blocked = _cli(kernel, "export", "renpy", project_id)
    assert blocked.exit_code == 3, blocked.output
    line = blocked.output.strip().splitlines()[-1]
    assert line.startswith("error: export blocked by comfyvn_rating: rated Adult")
    token = line.split("comfyvn rating ack ", 1)[1].split("`", 1)[0]
    assert len(token) == 32 and f"--rating-ack-token {token} --rating-acknowledged" in line
    acked = _cli(kernel, "rating", "ack", token, "--user", "ana", "--notes", "adult romance")
    assert acked.exit_code == 0 and f"acknowledged project:{project_id} (Adult, export.renpy) as ana" in acked.output
    unflagged = _cli(kernel, "export", "renpy", project_id, "--rating-ack-token", token)
    assert unflagged.exit_code == 3
    passed = _cli(kernel, "export", "renpy", project_id, "--rating-ack-token", token, "--rating-acknowledged", "--json")
    assert passed.exit_code == 0, passed.output
    result = json.loads(passed.output[passed.output.index("{") :])
    assert result["ok"] is True and not [w for w in result["warnings"] if w.startswith("rating:")]
    manifest = json.loads(
        (kernel.paths.data / "projects" / project_id / "exports/renpy/export_manifest.json").read_text()
    )
    assert manifest["rating"]["rating"] == "Adult"


def test_cli_classify_text_and_project(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    text = _cli(kernel, "rating", "classify", "a wholesome puzzle", "--json")
    assert text.exit_code == 0 and json.loads(text.output)["rating"]["rating"] == "E"
    tagged = _cli(kernel, "rating", "classify", "quiet evening", "--tag", "R18")
    assert tagged.exit_code == 0 and tagged.output.startswith("Adult (confidence 0.85, classifier): tag:r18")
    assert "needs an acknowledgement; run `comfyvn rating ack " in tagged.output
    project_id = import_adult_chat(kernel)
    shown = _cli(kernel, "rating", "classify", project_id)
    assert shown.exit_code == 0 and shown.output.startswith("Adult")
    assert "  node      scene_0001/n0012  keyword:explicit, keyword:sexual" in shown.output
    as_text = _cli(kernel, "rating", "classify", project_id, "--text", "--mode", "warn")
    assert as_text.exit_code == 0 and as_text.output.startswith("T ") and "mode warn: not required" in as_text.output


def test_cli_mode_overrides_and_bad_input(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    assert _cli(kernel, "rating", "mode").output.strip() == "rating mode: sfw (settings)"
    assert _cli(kernel, "rating", "mode", "warn").output.strip() == "rating mode: warn (settings)"
    assert RatingService(rating_kernel()).mode() == "warn"
    pinned = _cli(kernel, "rating", "override", "set", "project:x", "m", "--reason", "house rule", "--reviewer", "ana")
    assert pinned.exit_code == 0 and "project:x is M (by ana)" in pinned.output
    listed = json.loads(_cli(kernel, "rating", "override", "list", "--json").output)
    assert [(o["item_id"], o["rating"], o["reason"]) for o in listed] == [("project:x", "M", "house rule")]
    assert _cli(kernel, "rating", "override", "remove", "project:x").exit_code == 0
    missing = _cli(kernel, "rating", "override", "remove", "project:x")
    assert missing.exit_code == 2 and "no override for 'project:x'" in missing.output
    bad = _cli(kernel, "rating", "override", "set", "x", "PG13", "--reason", "r")
    assert bad.exit_code == 2 and bad.output.strip().splitlines()[-1].startswith("error: rating must be one of")
    unknown = _cli(kernel, "rating", "ack", "nope")
    assert unknown.exit_code == 2 and "unknown acknowledgement token" in unknown.output


def test_llm_call_gate(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    assert llm_call_gate(kernel, "Write a wholesome puzzle.", {}) is None
    assert llm_call_gate(kernel, "Describe the storm.", {}) is None  # T: allowed in sfw
    answer = llm_call_gate(kernel, "Write an explicit scene.", {"item_id": "prompt:42"})
    assert answer is not None and answer["ack_status"] == "issued" and answer["rating"]["rating"] == "Adult"
    token = answer["ack_token"]
    assert f"comfyvn rating ack {token}" in answer["reason"] and "call again" in answer["reason"]
    with pytest.raises(Blocked) as caught:
        require_llm_call(kernel, "Write an explicit scene.", {"item_id": "prompt:42"})
    assert (http_status(caught.value), exit_code(caught.value), caught.value.code) == (423, 3, "llm_blocked")
    assert caught.value.details["ack_token"] == token
    RatingService(kernel).acknowledge(token, "ana", None)
    options = {"item_id": "prompt:42", "rating_ack_token": token, "rating_acknowledged": True}
    assert require_llm_call(kernel, "Write an explicit scene.", options) is None
    # A call can tighten the installation's mode, never loosen it.
    assert llm_call_gate(kernel, "gore", {"mode": "unrestricted"})["ack_status"] == "issued"  # type: ignore[index]
    RatingService(kernel).set_mode("warn")
    warned = llm_call_gate(kernel, "gore", {})
    assert warned is not None and warned["allow"] is True and warned["warnings"] == ["rating: the prompt is rated M"]
    assert llm_call_gate(kernel, "gore", {"mode": "unrestricted"}) == warned
    assert llm_call_gate(kernel, "gore", {"mode": "sfw"})["ack_status"] == "issued"  # type: ignore[index]
    RatingService(kernel).set_mode("unrestricted")
    assert llm_call_gate(kernel, "gore", {}) is None
    off = rating_kernel(env={"COMFYVN_FEATURE_ENABLE_RATING_API": "0"})
    assert llm_call_gate(off, "Write an explicit scene.", {}) is None


def test_an_unreadable_store_is_reported_and_never_overwritten(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    service = RatingService(kernel)
    service.store.folder.mkdir(parents=True)
    service.store.path.write_text("{not json")
    with pytest.raises(OperationFailed) as caught:
        service.put_override("x", "E", "r", "why", "asset")
    assert caught.value.code == "store_unreadable" and str(kernel.paths.config) not in caught.value.message
    with pytest.raises(OperationFailed):
        service.classify("x", {"text": "hi"}, service.store.overrides())
    assert service.store.path.read_text() == "{not json"


def test_tokens_are_bounded_and_the_first_acknowledgement_stands(
    rating_kernel: Callable[..., Kernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_ACKS", 3)
    store = RatingStore(rating_kernel().paths.config / "rating")
    first = store.issue("a", "export", "M")["token"]
    store.acknowledge(first, "ana", "first")
    assert store.acknowledge(first, "bob", "second")["user"] == "ana"
    later = [store.issue(f"i{n}", "export", "M")["token"] for n in range(3)]
    assert {e["token"] for e in store.acks()} == set(later)  # the oldest acknowledged one went first
    assert store.issue("i2", "export", "M")["token"] == later[2]  # the open one for the same item is reused
    assert store.verified(later[0], "i0", "M") is None  # issued, not acknowledged


def test_nothing_calls_a_network_service(rating_kernel: Callable[..., Kernel], monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = rating_kernel(comfyvn_advisory.plugin)
    project_id = import_adult_chat(kernel)
    stored = ProjectStore.for_kernel(kernel).load(project_id)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network call: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    service = RatingService(kernel)
    assert service.classify_project(stored.project).result.rating == "Adult"
    assert llm_call_gate(kernel, "explicit", {}) is not None
    service.set_mode("warn")
    result = run_export(kernel, ExportRequest(project=stored.path, source=stored, out=stored.path / "exports" / "r"))
    assert any(w.startswith("rating:") for w in result["warnings"])
    assert any(w.startswith("policy: card_credit_missing") for w in result["warnings"])
    assert enforce(kernel, "check", project=stored.project)["allow"] is True


class LlmSpecs:
    """The llm plugin's gate spec, as comfyvn-llm publishes it (so this test does not need that plugin)."""

    @hookspec
    def llm_call_gate(self, prompt: str, options: dict[str, Any], kernel: Any) -> dict[str, Any] | None: ...


class PublishesTheLlmGate:
    @hookimpl
    def add_hookspecs(self, pm: Any) -> None:
        pm.add_hookspecs(LlmSpecs)


def test_the_rating_plugin_answers_the_llm_plugins_gate_hook(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel(PublishesTheLlmGate())
    answers = kernel.plugins.call_each(
        "llm_call_gate", prompt="Write an explicit scene.", options={"provider": "x"}, kernel=kernel
    )
    ((plugin, answer),) = answers
    assert plugin == "comfyvn_rating"
    assert answer["ack_status"] == "issued" and "comfyvn rating ack" in answer["reason"]
    assert kernel.plugins.call_each("llm_call_gate", prompt="Hello.", options={}, kernel=kernel)[0][1] is None

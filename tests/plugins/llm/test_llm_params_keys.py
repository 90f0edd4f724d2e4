"""Sampling parameters are checked against their own ranges (the message states the range); an empty prompt is
refused; a provider that needs a key says whether one is set, and without one no call leaves the machine."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import comfyvn_llm.service as service_module
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import Invalid, UpstreamError
from comfyvn_llm.service import check_params
from hypothesis import given
from hypothesis import strategies as st

EXTERNAL = {"COMFYVN_FEATURE_ENABLE_LLM_EXTERNAL_PROVIDERS": "1"}
HI = [{"role": "user", "content": "hi"}]


def _run(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), obj=kernel)


@pytest.mark.parametrize(
    ("key", "good", "bad", "says"),
    [
        ("temperature", [0, 0.0, 1.5, 2], [-1, -0.01, 2.5, 9], "between 0 and 2"),
        ("top_p", [0.01, 0.5, 1], [0, -0.5, 1.5, 2], "greater than 0 and at most 1"),
        ("presence_penalty", [-2, 0, 2], [-2.5, 3], "between -2 and 2"),
        ("frequency_penalty", [-2, 0, 2], [-3, 2.1], "between -2 and 2"),
        ("max_tokens", [1, 512, 1_000_000], [0, -1, 1_000_001, 1.5], "between 1 and 1,000,000"),
    ],
)
def test_each_parameter_has_its_own_range(key: str, good: list[Any], bad: list[Any], says: str) -> None:
    for value in good:
        assert check_params({key: value}) == {key: value}
    for value in [*bad, True, "1", math.nan, math.inf]:
        with pytest.raises(Invalid) as caught:
            check_params({key: value})
        assert caught.value.field == key and says in caught.value.message, (value, caught.value.message)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_temperature_is_accepted_exactly_in_0_to_2(value: float) -> None:
    inside = 0 <= value <= 2
    try:
        check_params({"temperature": value})
    except Invalid:
        assert not inside
    else:
        assert inside


def test_cli_and_http_state_the_range(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    kernel = llm_kernel()
    for value in ("2.5", "-1"):
        refused = _run(kernel, "llm", "test", "hi", "--temperature", value)
        assert refused.exit_code == 2 and "temperature: must be a number between 0 and 2" in refused.stderr
    assert _run(kernel, "llm", "test", "hi", "--temperature", "2").exit_code == 0
    http = http_for(kernel)
    answer = http.post("/api/llm/test-call", json={"messages": HI, "temperature": 9})
    assert answer.status_code == 400 and answer.json()["error"]["message"] == (
        "temperature: must be a number between 0 and 2"
    )


def test_an_empty_prompt_is_refused(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    kernel = llm_kernel()
    for prompt in ("", "   "):
        refused = _run(kernel, "llm", "test", prompt)
        assert refused.exit_code == 2 and "give a prompt" in refused.stderr, refused.output
    empty = http_for(kernel).post("/api/llm/test-call", json={"messages": [{"role": "user", "content": ""}]})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_prompt"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every adapter the service would build (the only way a call reaches a provider), recorded and refused as
    unreachable (health probes the loopback ones too)."""
    built: list[str] = []

    def refuse(provider: Any, key: Any) -> Any:
        built.append(provider.id)
        raise UpstreamError("unreachable in this test", details={"reason": "unreachable"})

    monkeypatch.setattr(service_module, "make_adapter", refuse)
    return built


def test_a_missing_key_is_reported_and_the_call_refused(
    llm_kernel: Callable[..., Kernel], http_for: Any, no_network: list[str]
) -> None:
    kernel = llm_kernel(env=EXTERNAL)
    listed = {p["id"]: p for p in json.loads(_run(kernel, "llm", "list", "--json").stdout)}
    assert (listed["openai"]["requires_key"], listed["openai"]["key_configured"]) == (True, False)
    assert (listed["offline"]["requires_key"], listed["offline"]["key_configured"]) == (False, None)
    lines = {line.split()[0]: line for line in _run(kernel, "llm", "list").stdout.splitlines()}
    assert lines["openai"].endswith("key: MISSING") and "key:" not in lines["lmstudio_local"]
    refused = _run(kernel, "llm", "test", "openai", "hi")
    assert refused.exit_code == 2 and "comfyvn secrets set openai api_key" in refused.stderr, refused.output
    http = http_for(kernel)
    got = http.get("/api/llm/registry")
    assert got.status_code == 200, got.text
    registry = {p["id"]: p for p in got.json()["providers"]}
    assert registry["anthropic"]["key_configured"] is False
    health = {p["id"]: p for p in http.get("/api/llm/health").json()["providers"]}
    assert health["openrouter"]["status"] == "no_key" and health["openrouter"]["key_configured"] is False
    call = http.post("/api/llm/test-call", json={"registry_id": "anthropic", "messages": HI})
    assert call.status_code == 422 and call.json()["error"]["code"] == "api_key_missing"
    assert "comfyvn secrets set anthropic api_key" in call.json()["error"]["message"]
    assert not {"openai", "openrouter", "anthropic"} & set(no_network), no_network


def test_a_configured_key_is_reported_never_shown(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    secret = "sk-test-keyconfigured0123456789"
    kernel = llm_kernel(env={**EXTERNAL, "COMFYVN_LLM_OPENAI_API_KEY": secret})
    listed = _run(kernel, "llm", "list", "--json").stdout
    assert {p["id"]: p["key_configured"] for p in json.loads(listed)}["openai"] is True
    response = http_for(kernel).get("/api/llm/registry")
    assert secret not in listed and secret not in response.text

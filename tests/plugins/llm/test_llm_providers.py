"""Each adapter against the fake server over real HTTP on loopback: replies, streamed deltas, usage, errors
(401, 429 then success, 500, timeout, a connection closed mid-stream), and where the API key goes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from comfyvn import Kernel
from comfyvn.errors import UpstreamError
from comfyvn_llm import service_for

from .conftest import ANTHROPIC_KEY, OPENAI_KEY, fake_env

# (provider id, model the fake echoes with, the chat path it must hit)
PROVIDERS = [
    ("openai", "fake-chat", "/v1/chat/completions"),
    ("ollama_local", "llama3:8b", "/api/chat"),
    ("anthropic", "claude-fake", "/v1/messages"),
]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "the lantern flickers"}]


@pytest.fixture
def kernel(llm_kernel: Callable[..., Kernel], fake_base: str) -> Kernel:
    env = fake_env(fake_base, COMFYVN_FEATURE_ENABLE_LLM_EXTERNAL_PROVIDERS="1")
    k = llm_kernel(env=env)
    # Keys through the vault itself (not the env override), as `comfyvn secrets set openai api_key` stores them.
    k.secrets.set("openai", "api_key", OPENAI_KEY)
    k.secrets.set("anthropic", "api_key", ANTHROPIC_KEY)
    return k


def _call(kernel: Kernel, provider: str, model: str, **params: Any) -> dict[str, Any]:
    service = service_for(kernel)
    p, request = service.prepare(provider, model, MESSAGES, params)
    return anyio.run(lambda: service.call(p, request))


def _stream(kernel: Kernel, provider: str, model: str) -> tuple[list[str], Any]:
    service = service_for(kernel)
    p, request = service.prepare(provider, model, MESSAGES, {})

    async def run() -> tuple[list[str], Any]:
        deltas, result = [], None
        events = await service.stream(p, request)
        async for event in events:
            if event.kind == "delta":
                deltas.append(event.text)
            else:
                result = event.result
        return deltas, result

    return anyio.run(run)


@pytest.mark.parametrize(("provider", "model", "path"), PROVIDERS)
def test_a_whole_reply_with_usage(kernel: Kernel, fake: Any, provider: str, model: str, path: str) -> None:
    answer = _call(kernel, provider, model, temperature=0.2, max_tokens=50)
    assert answer["reply"] == "Echo: the lantern flickers"
    # The fake counts words: prompt 2 ("Be brief.") + 3, completion 4 pieces.
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    sent = [r for r in fake() if r["path"] == path]
    assert len(sent) == 1 and sent[0]["body"]["model"] == model
    body = sent[0]["body"]
    if provider == "anthropic":  # system lifted out, max_tokens as given
        assert body["system"] == "Be brief." and body["max_tokens"] == 50 and body["temperature"] == 0.2
        assert body["messages"] == [{"role": "user", "content": "the lantern flickers"}]
    elif provider == "ollama_local":
        assert body["stream"] is False and body["options"] == {"temperature": 0.2, "top_p": 0.95, "num_predict": 50}
    else:
        assert body["temperature"] == 0.2 and body["max_tokens"] == 50 and "stream" not in body


@pytest.mark.parametrize(("provider", "model", "path"), PROVIDERS)
def test_streamed_deltas_and_usage(kernel: Kernel, fake: Any, provider: str, model: str, path: str) -> None:
    deltas, result = _stream(kernel, provider, model)
    assert deltas == ["Echo:", " the", " lantern", " flickers"]
    assert result.reply == "Echo: the lantern flickers"
    assert result.usage["completion_tokens"] == 4 and result.usage["prompt_tokens"] == 5
    body = next(r["body"] for r in fake() if r["path"] == path)
    if provider == "openai":
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    elif provider == "ollama_local":
        assert body["stream"] is True


def test_keys_arrive_as_each_provider_expects(kernel: Kernel, fake: Any) -> None:
    _call(kernel, "openai", "fake-chat")
    _call(kernel, "anthropic", "claude-fake")
    log = fake()
    openai_headers = next(r["headers"] for r in log if r["path"] == "/v1/chat/completions")
    anthropic_headers = next(r["headers"] for r in log if r["path"] == "/v1/messages")
    assert openai_headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert anthropic_headers["x-api-key"] == ANTHROPIC_KEY and anthropic_headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in anthropic_headers


@pytest.mark.parametrize(("provider", "path"), [(p, path) for p, _, path in PROVIDERS])
def test_429_is_retried_then_succeeds(kernel: Kernel, fake: Any, provider: str, path: str) -> None:
    answer = _call(kernel, provider, "flaky")
    assert answer["reply"] == "Echo: the lantern flickers"
    assert len([r for r in fake() if r["path"] == path]) == 2


@pytest.mark.parametrize(("provider", "path"), [(p, path) for p, _, path in PROVIDERS])
def test_500_after_retries_is_a_502_with_the_providers_message(
    kernel: Kernel, fake: Any, provider: str, path: str
) -> None:
    with pytest.raises(UpstreamError) as caught:
        _call(kernel, provider, "boom")
    assert caught.value.details["status"] == 500
    assert "The server had an error while processing your request." in caught.value.message
    assert len([r for r in fake() if r["path"] == path]) == 3  # the first try and max_retries (2) more


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_401_quoting_the_key_is_redacted(kernel: Kernel, fake: Any, provider: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        _call(kernel, provider, "denied")
    error = caught.value
    assert error.details["status"] == 401 and "Incorrect API key provided" in error.message
    text = json.dumps(error.to_dict())
    assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text and "[redacted]" in text


@pytest.mark.parametrize("provider", ["openai", "ollama_local", "anthropic"])
def test_a_connection_closed_mid_stream_is_an_error_not_a_short_reply(kernel: Kernel, fake: Any, provider: str) -> None:
    with pytest.raises(UpstreamError) as caught:
        _stream(kernel, provider, "cut")
    assert caught.value.details["reason"] == "broken_stream"


@pytest.mark.parametrize("provider", ["openai", "ollama_local", "anthropic"])
def test_timeouts_name_the_url(llm_kernel: Callable[..., Kernel], fake_base: str, fake: Any, provider: str) -> None:
    variable = {"openai": "OPENAI", "ollama_local": "OLLAMA_LOCAL", "anthropic": "ANTHROPIC"}[provider]
    env = fake_env(fake_base, COMFYVN_FEATURE_ENABLE_LLM_EXTERNAL_PROVIDERS="1")
    env[f"COMFYVN_LLM_{variable}_TIMEOUT"] = "0.5"
    kernel = llm_kernel(env=env)
    file = kernel.paths.config / "llm_registry.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"providers": [{"id": provider, "max_retries": 0}]}))
    with pytest.raises(UpstreamError) as caught:
        _call(kernel, provider, "slow")
    assert caught.value.details["reason"] == "timeout" and fake_base in caught.value.message


def test_an_unreachable_server_names_its_url(llm_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    kernel = llm_kernel(env={"COMFYVN_LLM_LMSTUDIO_LOCAL_BASE_URL": url, "COMFYVN_LLM_LMSTUDIO_LOCAL_TIMEOUT": "2"})
    file = kernel.paths.config / "llm_registry.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps({"providers": [{"id": "lmstudio_local", "max_retries": 0}]}))
    with pytest.raises(UpstreamError) as caught:
        _call(kernel, "lmstudio_local", "m")
    assert caught.value.details["reason"] == "unreachable" and url in caught.value.message


def test_model_listing(kernel: Kernel, fake: Any) -> None:
    service = service_for(kernel)
    assert anyio.run(service.models, service.provider("openai")) == ["fake-chat", "fake-json"]
    assert anyio.run(service.models, service.provider("ollama_local")) == ["llama3:8b"]
    assert anyio.run(service.models, service.provider("anthropic")) == ["claude-fake"]


def test_the_key_never_reaches_events_or_logs(kernel: Kernel, fake: Any) -> None:
    _call(kernel, "openai", "fake-chat")
    _stream(kernel, "anthropic", "claude-fake")
    with pytest.raises(UpstreamError):
        _call(kernel, "openai", "denied")
    history = json.dumps([e.as_dict() for e in kernel.events.history()])
    assert "on_llm_request" in history and "on_llm_response" in history
    assert OPENAI_KEY not in history and ANTHROPIC_KEY not in history
    assert "lantern" not in history  # no content without the debug flag
    for path in kernel.paths.logs.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text

"""A provider's base_url carries no credential: user:password@ and secret-looking query parameters are refused
(400 ``secret_in_registry`` naming the field, never echoing the value) over HTTP, in the config file and in
the environment, so /api/llm/registry, /api/llm/health and ``comfyvn llm list`` never show one."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import Invalid
from comfyvn_llm.registry import check_base_url
from hypothesis import given
from hypothesis import strategies as st

SECRET = "sk-SECRET123456"

REFUSED = [
    f"https://user:{SECRET}@api.example.com/v1?key={SECRET}",
    f"https://user:{SECRET}@api.example.com/v1",
    f"https://{SECRET}@api.example.com/v1",
    f"https://api.example.com/v1?key={SECRET}",
    f"https://api.example.com/v1?api-version=2024-01-01&api_key={SECRET}",
    f"https://api.example.com/v1?access_token={SECRET}",
    f"https://api.example.com/v1?TOKEN={SECRET}",
    f"https://api.example.com/v1?x-goog-api-key={SECRET}",
    f"https://api.example.com/v1?X-Amz-Signature={SECRET}",
    f"https://api.example.com/v1?sig={SECRET}",
    f"https://api.example.com/v1?password={SECRET}",
    f"https://api.example.com/v1?client_secret={SECRET}",
    f"https://api.example.com/v1?%6Bey={SECRET}",  # "key", percent-encoded
    f"https://api.example.com/v1#access_token={SECRET}",
]


@pytest.mark.parametrize("url", REFUSED)
def test_runtime_adapter_with_a_credential_in_its_url_is_refused(
    llm_kernel: Callable[..., Kernel], http_for: Any, url: str
) -> None:
    http = http_for(llm_kernel())
    reply = http.post("/api/llm/runtime", json={"id": "r-x2", "adapter": "openai", "base_url": url})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "secret_in_registry" and error["field"] == "body.base_url"
    assert SECRET not in reply.text
    assert "r-x2" not in [p["id"] for p in http.get("/api/llm/registry").json()["providers"]]
    assert SECRET not in http.get("/api/llm/health").text


def test_a_plain_query_parameter_is_kept(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    http = http_for(llm_kernel())
    url = "http://127.0.0.1:9/openai?api-version=2024-02-01&monkey=1"
    reply = http.post("/api/llm/runtime", json={"id": "azure-ish", "adapter": "openai", "base_url": url})
    assert reply.status_code == 200, reply.text
    assert reply.json()["provider"]["base_url"] == url


def test_the_config_file_refuses_a_credential_in_a_url(llm_kernel: Callable[..., Kernel]) -> None:
    kernel = llm_kernel()
    file = kernel.paths.config / "llm_registry.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    entry = {"id": "mine", "adapter": "openai", "base_url": f"https://api.example.com/v1?token={SECRET}"}
    file.write_text(json.dumps({"providers": [entry]}))
    result = CliRunner().invoke(make_cli(kernel), ["llm", "list"], obj=kernel)
    assert result.exit_code == 2, result.output
    assert "secret_in_registry" in result.output or "credential" in result.output
    assert "llm_registry.json.providers[0].base_url" in result.output
    assert SECRET not in result.output


def test_the_environment_refuses_a_credential_in_a_url(llm_kernel: Callable[..., Kernel]) -> None:
    kernel = llm_kernel(env={"COMFYVN_LLM_OPENAI_BASE_URL": f"https://me:{SECRET}@api.example.com/v1"})
    result = CliRunner().invoke(make_cli(kernel), ["llm", "list"], obj=kernel)
    assert result.exit_code == 2, result.output
    assert "COMFYVN_LLM_OPENAI_BASE_URL" in result.output and SECRET not in result.output


@given(
    name=st.sampled_from(["key", "api_key", "apikey", "token", "access_token", "secret", "password", "sig"]),
    value=st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_", min_size=8, max_size=40),
    before=st.sampled_from(["", "api-version=1&", "model=x&"]),
)
def test_refusals_name_the_field_and_never_the_value(name: str, value: str, before: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_base_url(f"https://api.example.com/v1?{before}{name}=Z9{value}", "body.base_url")
    assert caught.value.field == "body.base_url" and caught.value.code == "secret_in_registry"
    assert f"Z9{value}" not in caught.value.message and name in caught.value.message

"""The llm proxy's overhead over calling the provider directly: per request and per streamed token.

Run: ``python3 -m pytest tests/bench/test_bench_llm.py --benchmark-enable -q -s``. Both sides talk to the same
fake OpenAI-compatible server (tests/plugins/llm/fake_llm.py, its own process on loopback) in the same run:
"direct" is one reused ``openai.AsyncOpenAI`` client; "proxy" is `LLMService.call`/`stream` (provider
resolution, the call gate, events, a client per call, error translation). Rounds alternate between the two and
the best round of each is compared. Targets: at most 25 ms extra per request, at most 0.2 ms per streamed token.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest
from bench_targets import at_most
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn_llm import plugin as llm_plugin
from comfyvn_llm import service_for

FAKE = Path(__file__).parents[1] / "plugins" / "llm" / "fake_llm.py"
REQUESTS, ROUNDS, WORDS = 30, 6, 400
SHORT = [{"role": "user", "content": "hello there"}]
LONG = [{"role": "user", "content": " ".join(f"w{i}" for i in range(WORDS))}]  # the fake echoes WORDS + 1 pieces


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, str(FAKE)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    process.terminate()
    process.wait(10)
    process.stdout.close()


@pytest.fixture
def kernel(tmp_path: Path, base: str) -> Kernel:
    # Not strict: production kernels skip the payload schema checks tests run on every emit.
    env = {"COMFYVN_LLM_LMSTUDIO_LOCAL_BASE_URL": f"{base}/v1"}
    return create_kernel(plugins=[llm_plugin], paths=RuntimePaths.under(tmp_path), env=env)


async def _direct(client: openai.AsyncOpenAI, messages: list[Any], stream: bool) -> float:
    started = time.perf_counter()
    for _ in range(1 if stream else REQUESTS):
        if stream:
            chunks = await client.chat.completions.create(
                model="fake-chat", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            async for _chunk in chunks:
                pass
        else:
            await client.chat.completions.create(model="fake-chat", messages=messages)
    return time.perf_counter() - started


async def _proxy(kernel: Kernel, messages: list[Any], stream: bool) -> float:
    service = service_for(kernel)
    provider, request = service.prepare("lmstudio_local", "fake-chat", messages, {})
    started = time.perf_counter()
    for _ in range(1 if stream else REQUESTS):
        if stream:
            events = await service.stream(provider, request)
            async for _event in events:
                pass
        else:
            await service.call(provider, request)
    return time.perf_counter() - started


def _rounds(kernel: Kernel, base: str, messages: list[Any], stream: bool) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        direct, proxy = [], []
        try:
            await _direct(client, messages, stream)  # warm both paths
            await _proxy(kernel, messages, stream)
            for _ in range(ROUNDS):
                direct.append(await _direct(client, messages, stream))
                proxy.append(await _proxy(kernel, messages, stream))
        finally:
            await client.close()
        return min(direct), min(proxy)

    return anyio.run(run)


def test_bench_llm_overhead_per_request(kernel: Kernel, base: str, benchmark: Any) -> None:
    benchmark.group = "llm"
    direct, proxy = _rounds(kernel, base, SHORT, stream=False)
    benchmark.pedantic(lambda: anyio.run(_proxy, kernel, SHORT, False), rounds=1, iterations=1)
    per_request = (proxy - direct) / REQUESTS * 1e3
    benchmark.extra_info.update(direct_ms=direct / REQUESTS * 1e3, proxy_ms=proxy / REQUESTS * 1e3)
    print(f"\nllm: {proxy / REQUESTS * 1e3:.2f} ms/request via the proxy vs {direct / REQUESTS * 1e3:.2f} direct")
    at_most("llm proxy overhead per request", per_request, 25.0, " ms")


def test_bench_llm_overhead_per_streamed_token(kernel: Kernel, base: str, benchmark: Any) -> None:
    benchmark.group = "llm"
    direct, proxy = _rounds(kernel, base, LONG, stream=True)
    benchmark.pedantic(lambda: anyio.run(_proxy, kernel, LONG, True), rounds=1, iterations=1)
    tokens = WORDS + 1
    # The per-request fixed cost is shared with the test above; what is left is spread over the tokens.
    per_token = (proxy - direct) / tokens * 1e3
    benchmark.extra_info.update(direct_ms_per_token=direct / tokens * 1e3, proxy_ms_per_token=proxy / tokens * 1e3)
    print(f"\nllm: {proxy / tokens * 1e3:.4f} ms/token streamed via the proxy vs {direct / tokens * 1e3:.4f} direct")
    at_most("llm proxy overhead per streamed token", per_token, 0.2, " ms")

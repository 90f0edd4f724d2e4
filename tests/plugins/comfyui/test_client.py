"""ComfyClient against the fake ComfyUI over real HTTP and WebSocket: runs, events, errors, cancel, auth."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import structlog
from comfyvn.errors import Invalid
from comfyvn_comfyui import client as client_module
from comfyvn_comfyui.client import (
    ComfyCancelled,
    ComfyClient,
    ComfyExecutionError,
    ComfyRejected,
    ComfyUnavailable,
    RunResult,
)
from comfyvn_comfyui.workflows import bind, builtin
from PIL import Image

from .fakecomfy import FakeComfy

TOKEN = "tok-0123456789-SECRET-abcdef"


def sprite(seed: int = 1, steps: int = 4, **params: Any) -> dict[str, Any]:
    base = {"prompt": "1girl, red hair, smiling", "seed": seed, "steps": steps, "width": 256, "height": 384}
    return bind(builtin("sprite"), {**base, **params})


def requests(fake: FakeComfy, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in fake.log()["requests"]
        if (method is None or r["method"] == method) and (path is None or r["path"] == path)
    ]


def test_run_follows_events_to_the_end_and_downloads_the_image(comfy: FakeComfy) -> None:
    seen: list[tuple[float, str]] = []
    with ComfyClient(comfy.url) as client:
        result = client.run(sprite(steps=6), on_progress=lambda f, text: seen.append((f, text)))
    assert isinstance(result, RunResult)
    assert result.server == comfy.url
    [image] = result.images
    assert (image.node_id, image.type, image.subfolder) == ("9", "output", "comfyvn")
    assert image.filename.startswith("sprite_") and image.filename.endswith("_.png")
    with Image.open(io.BytesIO(image.data)) as png:
        assert png.format == "PNG" and png.size == (256, 384)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("node 3 (KSampler) step 3/6" in text for _, text in seen)
    assert result.history["status"]["status_str"] == "success"
    # The socket was open before the prompt went in, and the prompt carried this client's id and chosen prompt id.
    log = comfy.log()
    order = [(r["method"], r["path"]) for r in log["requests"]]
    assert order.index(("WEBSOCKET", "/ws")) < order.index(("POST", "/prompt"))
    assert log["prompts"] == [{"prompt_id": result.prompt_id, "client_id": client.client_id, "number": 0}]
    assert requests(comfy, "GET", "/view")[0]["query"] == {
        "filename": image.filename,
        "subfolder": "comfyvn",
        "type": "output",
    }


def test_two_clients_each_hear_only_their_own_prompt(comfy: FakeComfy) -> None:
    results: dict[str, RunResult] = {}
    texts: dict[str, list[str]] = {"a": [], "b": []}

    def work(name: str, seed: int, steps: int) -> None:
        with ComfyClient(comfy.url, client_id=f"client-{name}") as client:
            results[name] = client.run(sprite(seed, steps), on_progress=lambda f, t: texts[name].append(t))

    runs = (("a", 1, 4), ("b", 2, 7))
    threads = [threading.Thread(target=work, args=run) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(results) == {"a", "b"}
    assert results["a"].images[0].data != results["b"].images[0].data
    # Each heard its own sampler's steps only (4 for a, 7 for b).
    assert any("step 4/4" in t for t in texts["a"]) and not any("/7" in t for t in texts["a"])
    assert any("step 7/7" in t for t in texts["b"]) and not any("/4" in t for t in texts["b"])
    owner = {p["prompt_id"]: p["client_id"] for p in comfy.log()["prompts"]}
    events = [e for e in comfy.log()["events"] if e["prompt_id"] is not None]
    assert events and all(e["sid"] == owner[e["prompt_id"]] for e in events)
    assert {e["sid"] for e in events} == {"client-a", "client-b"}


def test_events_of_another_prompt_on_the_same_client_id_are_ignored(comfy: FakeComfy) -> None:
    import httpx

    comfy.fail("hang")
    body = {"prompt": sprite(seed=3, steps=9), "client_id": "shared"}
    stale = httpx.post(f"{comfy.url}/prompt", json=body, timeout=5).json()["prompt_id"]
    while not any(e["type"] == "progress" for e in comfy.log()["events"]):
        time.sleep(0.02)
    comfy.fail("none")
    texts: list[str] = []

    def progress(fraction: float, text: str) -> None:
        texts.append(text)
        if len(texts) == 1:  # now stop the stale prompt: its interruption is not this run's business
            httpx.post(f"{comfy.url}/interrupt", json={"prompt_id": stale}, timeout=5)

    with ComfyClient(comfy.url, client_id="shared") as client:
        client._connect = _connect_then_progress(client._connect, progress)  # type: ignore[method-assign]
        result = client.run(sprite(seed=4, steps=5), on_progress=progress)
    assert len(result.images) == 1 and result.prompt_id != stale
    assert any("step 5/5" in t for t in texts) and not any("/9" in t for t in texts)


def _connect_then_progress(connect: Callable[..., Any], progress: Callable[[float, str], None]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        ws = connect(*args)
        progress(0.0, "connected")
        return ws

    return wrapped


def test_unknown_node_class_is_rejected_naming_the_node(comfy: FakeComfy) -> None:
    graph = sprite()
    graph["99"] = {"class_type": "FancyUpscaler", "inputs": {}}
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyRejected) as caught:
        client.run(graph)
    message = caught.value.message
    assert "node 99" in message and "FancyUpscaler does not exist" in message
    assert caught.value.details["node_id"] == "99"


def test_node_errors_become_a_rejection_naming_node_and_class(comfy: FakeComfy) -> None:
    graph = sprite()
    del graph["3"]["inputs"]["seed"]
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyRejected) as caught:
        client.run(graph)
    assert "node 3 (KSampler): Required input is missing: seed" in caught.value.message
    assert caught.value.node_errors["3"]["class_type"] == "KSampler"


def test_a_checkpoint_the_server_lacks_is_rejected(comfy: FakeComfy) -> None:
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyRejected) as caught:
        client.run(sprite(checkpoint="nope.safetensors"))
    assert "node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: 'nope.safetensors'" in caught.value.message


def test_execution_error_names_node_and_exception(comfy: FakeComfy) -> None:
    comfy.fail("execution_error")
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyExecutionError) as caught:
        client.run(sprite())
    error = caught.value
    assert (error.node_id, error.node_type) == ("3", "KSampler")
    assert "node 3 (KSampler): OutOfMemoryError: Allocation on device 0" in error.message


@pytest.mark.parametrize("mode", ["none", "execution_error"])
def test_without_a_websocket_the_run_polls_history(
    comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(ComfyClient, "_connect", lambda self, deadline, stack: None)
    comfy.fail(mode)
    with ComfyClient(comfy.url) as client:
        if mode == "none":
            assert len(client.run(sprite()).images) == 1
        else:
            with pytest.raises(ComfyExecutionError, match=r"node 3 \(KSampler\)"):
                client.run(sprite())
    assert len(requests(comfy, "GET")) > 2
    assert not requests(comfy, "WEBSOCKET")


def test_a_dropped_websocket_falls_back_to_polling_history(comfy: FakeComfy) -> None:
    comfy.fail("drop_ws")
    with ComfyClient(comfy.url) as client:
        result = client.run(sprite(steps=8))
    assert len(result.images) == 1
    assert requests(comfy, "GET", f"/history/{result.prompt_id}")


def test_a_server_dying_mid_run_is_unavailable(fake_comfyui: Callable[..., FakeComfy]) -> None:
    fake = fake_comfyui()
    fake.fail("die")
    started = time.monotonic()
    with ComfyClient(fake.url) as client, pytest.raises(ComfyUnavailable, match="unreachable"):
        client.run(sprite())
    assert time.monotonic() - started < 15
    assert fake.process.wait(5) == 1


def test_a_server_killed_from_outside_mid_run_is_unavailable(fake_comfyui: Callable[..., FakeComfy]) -> None:
    fake = fake_comfyui()
    fake.fail("hang")

    def kill_when_running(fraction: float, text: str) -> None:
        if "step" in text:
            fake.kill()

    with ComfyClient(fake.url) as client, pytest.raises(ComfyUnavailable):
        client.run(sprite(), on_progress=kill_when_running, timeout=30)


def test_connection_refused_is_unavailable(fake_comfyui: Callable[..., FakeComfy]) -> None:
    fake = fake_comfyui()
    fake.stop()
    with ComfyClient(fake.url, timeout=5) as client, pytest.raises(ComfyUnavailable, match="unreachable"):
        client.run(sprite())


def test_cancel_interrupts_the_running_prompt(comfy: FakeComfy) -> None:
    comfy.fail("hang")
    stop = threading.Event()

    def progress(fraction: float, text: str) -> None:
        if "step" in text:
            stop.set()

    with ComfyClient(comfy.url) as client, pytest.raises(ComfyCancelled):
        client.run(sprite(), on_progress=progress, cancelled=stop.is_set)
    [interrupt] = requests(comfy, "POST", "/interrupt")
    assert interrupt["headers"]["content-type"] == "application/json"
    prompt_id = comfy.log()["prompts"][0]["prompt_id"]
    deadline = time.monotonic() + 10
    while not (history := _history(comfy, prompt_id)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [m[0] for m in history["status"]["messages"]][-1] == "execution_interrupted"


def _history(fake: FakeComfy, prompt_id: str) -> dict[str, Any]:
    import httpx

    entry: dict[str, Any] = httpx.get(f"{fake.url}/history/{prompt_id}", timeout=5).json().get(prompt_id, {})
    return entry


def test_cancelling_a_pending_prompt_deletes_it_and_never_interrupts_the_running_one(comfy: FakeComfy) -> None:
    comfy.fail("hang")  # the first prompt hangs: the second waits in the queue
    blocker = threading.Thread(target=_run_quietly, args=(comfy.url,), daemon=True)
    blocker.start()
    while not comfy.log()["prompts"]:
        time.sleep(0.02)
    polls = iter(range(1000))
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyCancelled):
        client.run(sprite(seed=9), cancelled=lambda: next(polls) > 3)
    pending_id = comfy.log()["prompts"][1]["prompt_id"]
    assert requests(comfy, "POST", "/queue")
    assert not requests(comfy, "POST", "/interrupt")
    import httpx

    queue = httpx.get(f"{comfy.url}/queue", timeout=5).json()
    assert all(item[1] != pending_id for item in queue["queue_pending"])
    assert queue["queue_running"]  # the other client's prompt still runs
    comfy.reset()  # which interrupts it
    blocker.join(20)
    assert not blocker.is_alive()


def _run_quietly(url: str) -> None:
    with ComfyClient(url) as client, pytest.raises((ComfyCancelled, ComfyExecutionError, ComfyUnavailable)):
        client.run(sprite(), timeout=20)


def test_a_run_past_its_timeout_interrupts_and_is_unavailable(comfy: FakeComfy) -> None:
    comfy.fail("hang")
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyUnavailable, match="in time"):
        client.run(sprite(), timeout=1.0)
    assert requests(comfy, "POST", "/interrupt")


def test_a_retry_with_the_same_prompt_id_never_queues_twice(comfy: FakeComfy) -> None:
    with ComfyClient(comfy.url) as client:
        first = client.run(sprite(), prompt_id="11111111-2222-3333-4444-555555555555")
        again = client.run(sprite(), prompt_id="11111111-2222-3333-4444-555555555555")
    assert len(comfy.log()["prompts"]) == 1
    assert again.images == first.images


def test_upload_feeds_an_image_to_image_render(comfy: FakeComfy) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 400), (200, 20, 20)).save(buffer, format="PNG")
    with ComfyClient(comfy.url) as client:
        name = client.upload_image(buffer.getvalue(), "card-portrait.png")
        assert name == "comfyvn/card-portrait.png"
        params = {"prompt": "1girl", "seed": 3, "steps": 3, "width": 256, "height": 384, "init_image": name}
        result = client.run(bind(builtin("sprite_img2img"), {**params, "denoise": 0.3}))
        with pytest.raises(Invalid):
            client.upload_image(b"x", "../escape.png")
    with Image.open(io.BytesIO(result.images[0].data)) as png:
        red, green, blue = png.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    assert red > green + 60 and red > blue + 60  # 70% of the uploaded red survives the blend


def test_object_info_is_fetched_once_and_system_stats_lists_devices(comfy: FakeComfy) -> None:
    with ComfyClient(comfy.url) as client:
        assert "KSampler" in client.object_info()
        assert client.object_info() is client.object_info()
        assert client.system_stats()["devices"][0]["type"] == "cuda"
    assert len(requests(comfy, "GET", "/object_info")) == 1


def test_an_oversized_output_image_is_refused(comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_IMAGE", 1000)
    with ComfyClient(comfy.url) as client, pytest.raises(ComfyUnavailable, match="over 1000 bytes"):
        client.run(sprite())


def test_the_token_is_sent_everywhere_and_never_leaks(
    fake_comfyui: Callable[..., FakeComfy], caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_comfyui(token=TOKEN)
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with structlog.testing.capture_logs() as captured:
        with ComfyClient(fake.url, token="wrong-" + TOKEN) as client, pytest.raises(ComfyUnavailable) as refused:
            client.run(sprite())
        messages += [refused.value.message, str(refused.value.to_dict()), repr(client)]
        assert "401" in refused.value.message
        with ComfyClient(fake.url, token=TOKEN) as client:
            result = client.run(sprite(), on_progress=lambda f, t: messages.append(t))
            messages += [repr(client), repr(result)]
    assert len(result.images) == 1
    good = [r for r in fake.log()["requests"] if r["status"] is None]
    assert good and all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in good)
    assert {"WEBSOCKET", "POST", "GET"} <= {r["method"] for r in good}
    everything = "\n".join([*messages, caplog.text, *(str(c) for c in captured)])
    assert TOKEN not in everything
    assert "websocket" in caplog.text.lower() or captured  # the logs did capture something


def test_credentials_in_the_url_stay_out_of_the_server_label() -> None:
    client = ComfyClient("http://user:pa55word@127.0.0.1:9/comfy/")
    assert client.server == "http://127.0.0.1:9/comfy"
    assert "pa55word" not in repr(client)
    client.close()
    with pytest.raises(Invalid):
        ComfyClient("ftp://example.org")

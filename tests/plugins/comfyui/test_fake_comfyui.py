"""The fake ComfyUI keeps ComfyUI's contract (comfyui.md): the client tests are only as good as this server."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from comfyvn_comfyui.workflows import bind, builtin
from PIL import Image
from websockets.sync.client import connect

from .fakecomfy import FakeComfy


def graph(prompt: str = "1girl, smiling", seed: int = 1, size: tuple[int, int] = (128, 192)) -> dict[str, Any]:
    return bind(builtin("sprite"), {"prompt": prompt, "seed": seed, "steps": 3, "width": size[0], "height": size[1]})


def queue(fake: FakeComfy, prompt: dict[str, Any], client_id: str = "tester") -> httpx.Response:
    return httpx.post(f"{fake.url}/prompt", json={"prompt": prompt, "client_id": client_id}, timeout=10)


def wait_history(fake: FakeComfy, prompt_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        entry: dict[str, Any] = httpx.get(f"{fake.url}/api/history/{prompt_id}", timeout=5).json()
        if entry:
            found: dict[str, Any] = entry[prompt_id]
            return found
        time.sleep(0.05)
    raise AssertionError("the prompt never finished")


def render(fake: FakeComfy, prompt: dict[str, Any]) -> np.ndarray[Any, Any]:
    prompt_id = queue(fake, prompt).json()["prompt_id"]
    [image] = wait_history(fake, prompt_id)["outputs"]["9"]["images"]
    data = httpx.get(f"{fake.url}/view", params=image, timeout=5).content
    with Image.open(io.BytesIO(data)) as png:
        return np.asarray(png.convert("RGB"), dtype=np.int16)


def test_execution_events_go_only_to_the_queuing_client(comfy: FakeComfy) -> None:
    with (
        connect(f"ws://127.0.0.1:{comfy.port}/ws?clientId=alice") as alice,
        connect(f"ws://127.0.0.1:{comfy.port}/ws?clientId=bob") as bob,
    ):
        hello = json.loads(alice.recv(timeout=5))
        assert hello == {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "alice"}}
        bob.recv(timeout=5)
        response = queue(comfy, graph(), client_id="alice")
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"prompt_id", "number", "node_errors"} and body["node_errors"] == {}
        kinds: list[str] = []
        binary = 0
        while True:
            frame = alice.recv(timeout=10)
            if isinstance(frame, bytes):
                assert frame[:8] == b"\x00\x00\x00\x01\x00\x00\x00\x02" and frame[8:12] == b"\x89PNG"
                binary += 1
                continue
            event = json.loads(frame)
            kinds.append(event["type"])
            if event["type"] == "executing" and event["data"]["node"] is None:
                assert event["data"]["prompt_id"] == body["prompt_id"]
                break
        assert binary == 1
        assert kinds[kinds.index("execution_start") :][:2] == ["execution_start", "execution_cached"]
        assert "progress" in kinds and "executed" in kinds and "execution_success" in kinds
        bob_kinds = set()
        while True:
            try:
                bob_kinds.add(json.loads(bob.recv(timeout=0.3))["type"])
            except TimeoutError:
                break
        assert bob_kinds <= {"status"}


def test_history_is_empty_until_done_then_has_comfyuis_shape(comfy: FakeComfy) -> None:
    comfy.fail("hang")
    prompt_id = queue(comfy, graph()).json()["prompt_id"]
    time.sleep(0.2)
    assert httpx.get(f"{comfy.url}/history/{prompt_id}", timeout=5).json() == {}
    running = httpx.get(f"{comfy.url}/queue", timeout=5).json()["queue_running"]
    assert [item[1] for item in running] == [prompt_id]
    httpx.post(f"{comfy.url}/interrupt", json={"prompt_id": "someone-else"}, timeout=5)
    time.sleep(0.2)
    assert httpx.get(f"{comfy.url}/history/{prompt_id}", timeout=5).json() == {}  # not ours to interrupt
    comfy.fail("none")
    httpx.post(f"{comfy.url}/interrupt", json={"prompt_id": prompt_id}, timeout=5)
    entry = wait_history(comfy, prompt_id)
    assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_interrupted",
    ]
    done = wait_history(comfy, queue(comfy, graph(seed=2)).json()["prompt_id"])
    assert set(done) == {"prompt", "outputs", "status", "meta"}
    assert done["status"]["status_str"] == "success" and done["status"]["completed"] is True
    [image] = done["outputs"]["9"]["images"]
    assert image["subfolder"] == "comfyvn" and image["type"] == "output"


def test_validation_errors_have_comfyuis_shapes(comfy: FakeComfy) -> None:
    unknown = queue(comfy, {"1": {"class_type": "Nope", "inputs": {}}})
    assert unknown.status_code == 400
    assert unknown.json() == {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because node Nope does not exist.",
            "details": "Node ID '#1'",
            "extra_info": {},
        },
        "node_errors": {},
    }
    no_outputs = queue(comfy, {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}}})
    assert no_outputs.json()["error"]["type"] == "prompt_no_outputs"
    broken = graph()
    del broken["3"]["inputs"]["steps"]
    answer = queue(comfy, broken).json()
    assert answer["error"]["type"] == "prompt_outputs_failed_validation"
    assert answer["node_errors"] == {
        "3": {
            "errors": [
                {
                    "type": "required_input_missing",
                    "message": "Required input is missing",
                    "details": "steps",
                    "extra_info": {"input_name": "steps"},
                }
            ],
            "dependent_outputs": ["9"],
            "class_type": "KSampler",
        }
    }
    no_prompt = httpx.post(f"{comfy.url}/prompt", json={"client_id": "x"}, timeout=5)
    assert no_prompt.status_code == 400 and no_prompt.json()["error"]["type"] == "no_prompt"


def test_view_refuses_traversal_and_serves_pngs(comfy: FakeComfy) -> None:
    view = f"{comfy.url}/view"
    assert httpx.get(view, params={"filename": "../secret.png"}, timeout=5).status_code == 400
    assert httpx.get(view, params={"filename": "/etc/passwd"}, timeout=5).status_code == 400
    assert httpx.get(view, params={"filename": "a.png", "subfolder": "../.."}, timeout=5).status_code == 403
    assert httpx.get(view, params={"filename": "missing.png"}, timeout=5).status_code == 404
    upload = httpx.post(
        f"{comfy.url}/upload/image",
        files={"image": ("face.png", b"\x89PNG fake", "image/png")},
        data={"subfolder": "comfyvn", "type": "input"},
        timeout=5,
    )
    assert upload.json() == {"name": "face.png", "subfolder": "comfyvn", "type": "input"}
    again = httpx.post(f"{comfy.url}/upload/image", files={"image": ("face.png", b"other")}, timeout=5)
    assert again.json()["name"] == "face.png"  # top level: a different folder from comfyvn/
    renamed = httpx.post(f"{comfy.url}/upload/image", files={"image": ("face.png", b"third")}, timeout=5)
    assert renamed.json()["name"] == "face (1).png"  # no overwrite flag: a new name
    got = httpx.get(view, params={"filename": "face.png", "subfolder": "comfyvn", "type": "input"}, timeout=5)
    assert got.content == b"\x89PNG fake"
    listed = httpx.get(f"{comfy.url}/api/object_info/LoadImage", timeout=5).json()
    assert listed["LoadImage"]["input"]["required"]["image"][0] == ["face (1).png", "face.png"]


def test_loopback_host_with_a_foreign_origin_is_forbidden(comfy: FakeComfy) -> None:
    host = f"127.0.0.1:{comfy.port}"
    foreign = httpx.get(f"{comfy.url}/queue", headers={"Origin": "http://evil.example"}, timeout=5)
    same = httpx.get(f"{comfy.url}/queue", headers={"Origin": f"http://{host}"}, timeout=5)
    assert (foreign.status_code, same.status_code) == (403, 200)


def test_a_token_guards_http_and_websocket(fake_comfyui: Callable[..., FakeComfy]) -> None:
    fake = fake_comfyui(token="s3cret")
    assert httpx.get(f"{fake.url}/system_stats", timeout=5).status_code == 401
    ok = httpx.get(f"{fake.url}/system_stats", headers={"Authorization": "Bearer s3cret"}, timeout=5)
    assert ok.status_code == 200
    with pytest.raises(Exception, match="401"):
        connect(f"ws://127.0.0.1:{fake.port}/ws?clientId=x").__enter__()


def test_renders_are_deterministic_sprites_on_a_flat_backdrop_and_scenes_fill_the_frame(comfy: FakeComfy) -> None:
    sprite = render(comfy, graph(seed=4))
    border = np.concatenate([sprite[0], sprite[-1], sprite[:, 0], sprite[:, -1]])
    assert np.abs(border - border.mean(axis=0)).max() <= 6  # flat (a little noise, as a real render)
    centre = sprite[sprite.shape[0] // 2, sprite.shape[1] // 2]
    assert np.abs(centre - border.mean(axis=0)).max() > 40  # a figure stands in the middle
    comfy.reset()  # a new server state: the same inputs must still give the same pixels
    assert np.array_equal(render(comfy, graph(seed=4)), sprite)
    assert not np.array_equal(render(comfy, graph(seed=5)), sprite)
    scene = render(comfy, graph("scenery, city street at night", seed=4))
    edge = np.concatenate([scene[0], scene[-1], scene[:, 0], scene[:, -1]])
    assert np.abs(edge - edge.mean(axis=0)).max() > 40


def test_an_identical_prompt_is_served_from_the_cache(comfy: FakeComfy) -> None:
    first = wait_history(comfy, queue(comfy, graph(seed=8)).json()["prompt_id"])
    second = wait_history(comfy, queue(comfy, graph(seed=8)).json()["prompt_id"])
    assert second["outputs"] == first["outputs"]
    cached = second["status"]["messages"][1]
    assert cached[0] == "execution_cached" and set(cached[1]["nodes"]) == set(graph())

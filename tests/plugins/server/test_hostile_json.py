"""Every JSON route of the studio app, read from its own /openapi.json, against hostile bodies.

Deep nesting, huge integers, lone surrogates, NaN and Infinity in every field (and as the whole body)
are refused by the one decoding policy (`comfyvn.wire`) with a 400 naming the field; random values
that do decode never cause a 5xx; and afterwards the server's state endpoints still answer 200.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from comfyvn import Kernel
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[3]
STUDIO = json.loads((ROOT / "config" / "plugin-sets.json").read_text())["studio"]
PATH_VALUES = {
    "slot": "fuzz",
    "id": "fuzz",
    "uid": "0123456789abcdef",
    "scene_uid": "fuzz:scene",
    "scene": "fuzz",
    "version": "1",
    "project_id": "fuzz",
    "token": "fuzz",
}
STATE_ENDPOINTS = [
    "/health",
    "/status",
    "/api/flags",
    "/api/modder/hooks",
    "/api/modder/hooks/history",
    "/api/pov/get",
    "/api/save/list",
    "/api/weather/state",
    "/api/weather/history",
]
# Raw JSON text for each attack (what a hostile client would put on the wire).
ATTACKS = {
    "deep": "[" * 100_000 + "]" * 100_000,
    "5000-digit integer": "9" * 5000,
    "4000-digit integer": "-" + "7" * 4000,
    "lone surrogate": '"\\ud800"',
    "lone surrogate in a key": '{"\\udc00": 1}',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
}


@pytest.fixture
def studio(make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]) -> Iterator[TestClient]:
    """The studio app with every feature flag forced on (so gated routes read their bodies too)."""
    plugins = [importlib.import_module(f"comfyvn_{name}.plugin") for name in STUDIO]
    probe = make_kernel(*plugins)
    env = {f"COMFYVN_FEATURE_{state.name.upper()}": "1" for state in probe.flags.states()}
    yield http_for(make_kernel(*plugins, env=env))


def json_operations(client: TestClient) -> list[tuple[str, str, list[str]]]:
    """``(method, path, top-level field names)`` of every operation that takes a JSON body."""
    spec = client.get("/openapi.json").json()
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = (operation.get("requestBody") or {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = content["application/json"].get("schema", {})
            names = list(schema.get("properties", {}))
            for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
                names += [n for n in alternative.get("properties", {}) if n not in names]
            found.append((method.upper(), path.format(**PATH_VALUES), names or ["enable_battle"]))
    return found


def send(client: TestClient, method: str, path: str, body: str) -> Any:
    return client.request(method, path, content=body.encode("utf-8"), headers={"content-type": "application/json"})


def assert_state_endpoints_answer(client: TestClient) -> None:
    for path in STATE_ENDPOINTS:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text[:300])


def test_the_studio_app_documents_its_json_routes(studio: TestClient) -> None:
    operations = {(method, path) for method, path, _ in json_operations(studio)}
    for expected in [
        ("POST", "/api/flags"),
        ("POST", "/api/battle/sim"),
        ("POST", "/api/pov/set"),
        ("POST", "/api/modder/hooks/test"),
        ("POST", "/api/roleplay/import"),
        ("POST", "/api/themes/apply"),
        ("POST", "/api/weather/state"),
        ("POST", "/api/export/renpy"),
        ("POST", "/api/save/fuzz"),
    ]:
        assert expected in operations
    assert len(operations) >= 20


def test_every_attack_in_every_json_route_is_a_400_naming_the_field(studio: TestClient) -> None:
    failures = []
    for method, path, names in json_operations(studio):
        for attack, token in ATTACKS.items():
            field = names[0]
            placements = {"body": token, field: "{" + json.dumps(field) + ": " + token + "}"}
            for where, body in placements.items():
                response = send(studio, method, path, body)
                error = response.json().get("error", {}) if response.status_code >= 400 else {}
                fields = {where}
                if attack == "deep":  # past the recursion limit the decoder stops: it cannot say where
                    fields = {"body", field}
                elif attack == "lone surrogate in a key" and where == "body":
                    fields = {"\\udc00"}  # the key itself, escaped
                if response.status_code == 404 and error.get("field") in PATH_VALUES:
                    continue  # refused by its path before any body was read (DELETE …/webhooks/{id})
                if response.status_code != 400 or (error.get("field") or "").split(".")[0].split("[")[0] not in fields:
                    failures.append((method, path, attack, where, response.status_code, response.text[:200]))
    assert failures == [], "\n".join(map(str, failures))
    assert_state_endpoints_answer(studio)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40) + 1, max_value=10**40 - 1),
    st.sampled_from([0, -1, 1, 2**31, 2**32 + 5, 2**63, 2**64, 10**39, 100_000, 100_001]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    st.sampled_from(["", " ", "..", "../../x", "/etc/passwd", "a" * 5000, "\x00", "\u202e", "on_modder_test", "dark"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
small_attacks = st.sampled_from(
    ["[" * 80 + "]" * 80, "9" * 41, "-" + "9" * 300, '"\\udbff"', '"a\\udc00b"', "NaN", "Infinity", "-1e999"]
)


def test_random_bodies_never_cause_a_5xx_and_state_survives(studio: TestClient) -> None:
    operations = json_operations(studio)

    @settings(max_examples=200)
    @given(st.data())
    def one_request(data: st.DataObject) -> None:
        method, path, names = data.draw(st.sampled_from(operations), label="operation")
        keys = data.draw(st.lists(st.sampled_from([*names, "unexpected"]), unique=True, max_size=4), label="keys")
        parts = []
        for key in keys:
            hostile = data.draw(st.integers(0, 3), label="hostile") == 0
            text = data.draw(small_attacks) if hostile else json.dumps(data.draw(values, label=key))
            parts.append(f"{json.dumps(key)}: {text}")
        body = "{" + ", ".join(parts) + "}"
        if data.draw(st.integers(0, 9), label="whole body") == 0:
            body = data.draw(small_attacks | values.map(json.dumps))
        response = send(studio, method, path, body)
        assert response.status_code < 500, (method, path, body[:300], response.text[:300])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert len(error["message"]) <= 400 and len(error.get("field") or "") <= 200

    one_request()
    assert_state_endpoints_answer(studio)


def test_errors_never_echo_a_whole_input(studio: TestClient) -> None:
    name = "enable_" + "x" * 5_000_000
    response = studio.post("/api/flags", json={name: True})
    assert response.status_code == 404
    assert len(response.content) < 2_000 and response.json()["error"]["message"].endswith("…")


def test_errors_never_show_server_paths(studio: TestClient, runtime: Any) -> None:
    projects = runtime.data / "projects"
    (projects / "half").mkdir(parents=True)
    (projects / "half" / "project.json").write_text(
        json.dumps({"id": "half", "title": "Half", "scenes": ["gone"], "start": "gone"})
    )
    for body in ({"project": "nowhere"}, {"project": "half"}):
        response = studio.post("/api/export/renpy", json=body)
        assert response.status_code in (404, 422), response.text
        assert str(runtime.data) not in response.text and "/projects/" not in response.text, response.text

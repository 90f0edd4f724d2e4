"""The generated OpenAPI document covers every route; generated bad requests never produce a 5xx."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from comfyvn import Kernel
from comfyvn_server import create_app
from comfyvn_server.openapi import build_openapi, route_operations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def module_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # One app for all fuzz examples (hypothesis forbids function-scoped fixtures per example).
    import comfyvn_server.plugin as server_plugin
    from comfyvn import RuntimePaths, create_kernel

    from .conftest import Probe

    kernel = create_kernel(
        plugins=[server_plugin, Probe()], paths=RuntimePaths.under(tmp_path_factory.mktemp("rt")), env={}, strict=True
    )
    with TestClient(create_app(kernel)) as client:
        yield client


def test_every_route_appears_with_schemas(kernel: Kernel) -> None:
    app = create_app(kernel)
    document = build_openapi(app.routes, app.state.server.route_owner)
    for route in app.routes:
        path = re.sub(r"{([^}:]+)(:[^}]+)?}", r"{\1}", route.path)  # type: ignore[attr-defined]
        assert path in document["paths"], path
        if isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    assert method.lower() in document["paths"][path], (method, path)
        elif isinstance(route, WebSocketRoute):
            assert document["paths"][path]["get"]["x-websocket"] is True
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "4XX" in responses and "500" in responses, (method, path)
            if operation.get("x-websocket"):
                continue
            ok = [v for k, v in responses.items() if k.startswith("2")]
            assert ok and all("schema" in r["content"]["application/json"] for r in ok), (method, path)
            if "{" in path:
                assert any(p["in"] == "path" for p in operation["parameters"]), path


def test_server_routes_are_fully_documented(kernel: Kernel) -> None:
    app = create_app(kernel)
    document = build_openapi(app.routes, app.state.server.route_owner)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            owner = operation.get("tags", [None])[0]
            if owner == "comfyvn_server":
                assert not operation.get("x-undocumented"), (method, path)
                if method in ("post", "put", "patch"):
                    assert "schema" in operation["requestBody"]["content"]["application/json"], (method, path)
    # The probe's gated route has no YAML: it still appears, flagged.
    assert document["paths"]["/api/probe/gated"]["get"]["x-undocumented"] is True
    assert document["paths"]["/api/probe/item/{id}"]["get"]["tags"] == ["probe"]


def test_openapi_route_serves_the_document(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert "/api/modder/hooks/ws" in document["paths"] and "/openapi.json" in document["paths"]
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]


def _operations(client: TestClient) -> list[tuple[str, str]]:
    document = client.get("/openapi.json").json()
    return [
        (path, method)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if not op.get("x-websocket")
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
segments = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#%"), max_size=12
)
query = st.dictionaries(
    st.sampled_from(["since", "limit", "event", "events", "all", "id", "x"]), st.text(max_size=12), max_size=3
)


@settings(
    max_examples=250, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None
)
@given(data=st.data())
def test_generated_bad_requests_never_give_5xx(module_client: TestClient, data: st.DataObject) -> None:
    operations = _operations(module_client)
    path, method = data.draw(st.sampled_from(operations))
    if path == "/api/probe/boom":
        return  # exists to prove 500s are JSON; not client input
    concrete = re.sub(r"{[^}]+}", lambda _: data.draw(segments) or "x", path)
    body_kind = data.draw(st.sampled_from(["json", "raw", "none"]))
    kwargs: dict[str, Any] = {"params": data.draw(query)}
    if body_kind == "json":
        kwargs["json"] = data.draw(json_values)
    elif body_kind == "raw":
        kwargs["content"] = data.draw(st.binary(max_size=64))
    response = module_client.request(method.upper(), concrete, **kwargs)
    assert response.status_code < 500, (method, concrete, kwargs, response.text)
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message", "field"}


def test_route_operations_handle_mounts() -> None:
    from starlette.routing import Mount

    async def inner(request: Any) -> None:
        """Inner.
        ---
        responses: {200: {description: ok}}
        """

    routes = [Mount("/api/m", routes=[Route("/x/{n:int}", inner, methods=["PUT"])])]
    assert route_operations(routes) == [("/api/m/x/{n:int}", "put", inner, False)]
    document = build_openapi(routes)
    operation = document["paths"]["/api/m/x/{n}"]["put"]
    assert operation["parameters"][0]["name"] == "n"
    assert operation["x-request-body"] == "none documented"

"""``/api/layers/*`` on the studio's server with the real jobs plugin: a split of an upload, an asset and a
store project's background runs as a ``layers.split`` job and its planes come back over HTTP; every client
mistake is a 4xx JSON error that names no server path."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_assets.plugin
import comfyvn_jobs.plugin
import comfyvn_layers.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import pytest
from comfyvn import Kernel
from comfyvn_assets import AssetRegistry
from comfyvn_jobs import jobs_for
from comfyvn_jobs.service import close_jobs
from comfyvn_scenario import ProjectStore
from PIL import Image
from starlette.testclient import TestClient

from .surfaces import alpha_at, bad_models, band_centre, banded_png, good_model

PLUGINS = (
    comfyvn_server.plugin,
    comfyvn_scenario.plugin,
    comfyvn_jobs.plugin,
    comfyvn_assets.plugin,
    comfyvn_layers.plugin,
)
DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
Client = Callable[..., TestClient]


@pytest.fixture
def client(make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]) -> Iterator[Client]:
    """``client(model=None, **env)``: the app of a strict kernel whose COMFYVN_DEPTH_MODEL is ``model``."""
    made: list[Kernel] = []

    def factory(model: Path | None = None, **env: str) -> TestClient:
        kernel = make_kernel(*PLUGINS, env={**({"COMFYVN_DEPTH_MODEL": str(model)} if model else {}), **env})
        made.append(kernel)
        test_client = http_for(kernel)
        test_client.kernel = kernel  # type: ignore[attr-defined]
        return test_client

    yield factory
    for kernel in made:
        close_jobs(kernel)
        AssetRegistry.forget(kernel)


def _upload(http: TestClient, data: bytes, name: str = "park.png", **fields: str) -> Any:
    return http.post("/api/layers/split", files={"file": (name, data, "image/png")}, data=fields)


def _finished(http: TestClient, job_id: str) -> dict[str, Any]:
    record = jobs_for(http.kernel).wait(job_id, timeout=120)  # type: ignore[attr-defined]
    assert record["status"] == "done", record
    answer = http.get(f"/api/layers/{job_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _no_url(plane: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in plane.items() if k != "url"}


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


def test_an_uploaded_png_splits_through_a_job_into_planes_served_back(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path))
    picture = banded_png()
    accepted = _upload(http, picture, planes="3", feather="2")
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["id"]
    assert accepted.json()["job"]["kind"] == "layers.split"
    assert accepted.headers["location"] == f"/api/layers/{job_id}"
    # Kept before it was read, under its sha256 and its own (safe) name.
    kept = list((http.kernel.paths.plugin_dir("layers") / "uploads").glob("*/park.png"))  # type: ignore[attr-defined]
    assert len(kept) == 1 and kept[0].read_bytes() == picture

    done = _finished(http, job_id)
    layers = done["layers"]
    assert (layers["format"], layers["source"]["file"], layers["feather"]) == ("comfyvn-layers", "park.png", 2)
    assert done["files"] == ["layers.json", "depth.png", "plane0.png", "plane1.png", "plane2.png"]
    assert done["folder"] == f"splits/{job_id}"
    urls = [plane["url"] for plane in layers["planes"]]
    assert urls == [f"/api/layers/{job_id}/files/plane{n}.png" for n in range(3)]
    for url in urls:
        got = http.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(got.content)) as image:
            assert (image.mode, image.size) == ("RGBA", (96, 64))
    near = http.get(urls[2]).content
    assert alpha_at(near, band_centre(0)) == 255 and alpha_at(near, band_centre(2)) == 0
    served = http.get(done["urls"]["layers.json"])
    assert served.headers["content-type"] == "application/json"
    assert json.loads(served.content) == json.loads(
        json.dumps(layers | {"planes": json.loads(served.content)["planes"]})
    )
    assert str(tmp_path) not in json.dumps(done)


def test_a_store_projects_background_splits_into_its_layers_folder(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path))
    stored = ProjectStore.for_kernel(http.kernel).create_from_folder(DEMO, project_id="night")  # type: ignore[attr-defined]
    background = "assets/backgrounds/carriage.png"
    accepted = http.post("/api/layers/split", json={"project": "night", "background": background, "planes": 2})
    assert accepted.status_code == 202, accepted.text
    done = _finished(http, accepted.json()["id"])
    # The exporter's convention: <dir>/<stem>.layers/ next to the background, inside the project.
    folder = stored.path / "assets" / "backgrounds" / "carriage.layers"
    assert done["folder"] == "night:assets/backgrounds/carriage.layers"
    layers = done["layers"]
    assert json.loads((folder / "layers.json").read_text()) == {
        **layers,
        "planes": [_no_url(p) for p in layers["planes"]],
    }
    assert sorted(p.name for p in folder.iterdir()) == ["depth.png", "layers.json", "plane0.png", "plane1.png"]


def test_an_asset_splits_by_its_uid(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path))
    asset = AssetRegistry.for_kernel(http.kernel).register_bytes(  # type: ignore[attr-defined]
        banded_png(), asset_type="background", dest_path="backgrounds/park.png"
    )
    accepted = http.post("/api/layers/split", json={"asset": asset.uid, "device": "cpu"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["job"]["resources"] == {}
    done = _finished(http, accepted.json()["id"])
    assert done["layers"]["source"]["file"] == "park.png" and done["layers"]["device"] == "cpu"


def test_the_model_route_says_when_none_is_configured(client: Client, tmp_path: Path) -> None:
    answer = client().get("/api/layers/model")
    assert answer.status_code == 200
    body = answer.json()
    assert body["configured"] is False and "COMFYVN_DEPTH_MODEL" in body["hint"]
    assert "--model" not in body["hint"]  # an HTTP client has no command-line option to give
    assert "CPUExecutionProvider" in body["runtime"]["providers"]
    configured = client(good_model(tmp_path)).get("/api/layers/model").json()
    assert configured["configured"] is True and configured["source"] == "COMFYVN_DEPTH_MODEL"
    assert configured["model"]["file"] == "bright.onnx" and str(tmp_path) not in json.dumps(configured)


def test_a_split_without_a_model_is_refused_with_how_to_get_one(client: Client) -> None:
    http = client()
    error = _error(_upload(http, banded_png()), 404, "model_not_configured")
    assert "COMFYVN_DEPTH_MODEL" in error["message"] and "layers.model" in error["message"]
    assert "--model" not in error["message"]  # an HTTP client has no command-line option to give
    assert jobs_for(http.kernel).list() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["not_onnx", "truncated", "two_inputs", "wrong_rank"])
def test_a_bad_model_is_422_on_submit_and_on_the_model_route(client: Client, tmp_path: Path, kind: str) -> None:
    bad = bad_models(tmp_path)[kind]
    http = client(bad)
    for response in (http.get("/api/layers/model"), _upload(http, banded_png())):
        error = _error(response, 422, "invalid_model")
        assert bad.name in error["message"] and str(tmp_path) not in response.text


def test_a_missing_model_file_is_404_naming_its_base_name(client: Client, tmp_path: Path) -> None:
    http = client(tmp_path / "gone.onnx")
    error = _error(_upload(http, banded_png()), 404, "model_not_found")
    assert "'gone.onnx'" in error["message"] and str(tmp_path) not in error["message"]


def test_bad_uploads_are_4xx_json_errors(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path))
    _error(_upload(http, b""), 400, "empty_upload")
    _error(_upload(http, b"GIF89a not really", name="x.png"), 422, "invalid_image")
    _error(http.post("/api/layers/split", files={"picture": ("a.png", banded_png())}), 400, "unknown_field")
    _error(http.post("/api/layers/split", files={"planes": (None, "3")}), 400, "no_file")
    _error(http.post("/api/layers/split", data={"planes": "3"}), 400, "invalid_json")  # a urlencoded form is no upload
    _error(_upload(http, banded_png(), planes="many"), 400, "invalid_request")
    _error(_upload(http, banded_png(), planes="9"), 400, "invalid_params")
    _error(_upload(http, banded_png(), method="median"), 400, "invalid_params")
    _error(_upload(http, banded_png(), device="tpu"), 400, "invalid_device")
    # A hostile file name is kept under a safe one; nothing lands outside the uploads folder.
    accepted = _upload(http, banded_png(), name="../../etc/passwd.png")
    assert accepted.status_code == 202
    assert accepted.json()["job"]["params"]["source"]["name"] == "passwd.png"
    assert jobs_for(http.kernel).wait(accepted.json()["id"], timeout=120)["status"] == "done"  # type: ignore[attr-defined]


def test_bad_json_requests_are_4xx_json_errors(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path))
    ProjectStore.for_kernel(http.kernel).create_from_folder(DEMO, project_id="night")  # type: ignore[attr-defined]

    def post(body: dict[str, Any]) -> Any:
        return http.post("/api/layers/split", json=body)

    _error(post({}), 400, "invalid_request")
    _error(post({"asset": "0123456789abcdef", "project": "night", "background": "x.png"}), 400, "invalid_request")
    _error(post({"model": "/etc/passwd"}), 400, "invalid_request")  # requests never name a model file
    _error(post({"asset": "0123456789abcdef"}), 404, "asset_not_found")
    _error(post({"asset": "../x"}), 400, "invalid_params")
    _error(post({"project": "nope", "background": "a.png"}), 404, "project_not_found")
    _error(post({"project": "night", "background": "../../../outside.png"}), 400, "invalid_path")
    _error(post({"project": "night", "background": "project.json"}), 400, "not_an_image")
    _error(post({"project": "night", "background": "assets/backgrounds/none.png"}), 404, "background_not_found")
    _error(
        post({"project": "night", "background": "assets/backgrounds/carriage.png", "planes": 1}), 400, "invalid_params"
    )
    _error(
        http.post("/api/layers/split", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_json",
    )
    assert jobs_for(http.kernel).list() == []  # type: ignore[attr-defined]


def test_unknown_splits_and_files_are_404(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path))
    _error(http.get("/api/layers/job-0123"), 404, "job_not_found")
    other = jobs_for(http.kernel).submit("test.noop", {})  # type: ignore[attr-defined]
    _error(http.get(f"/api/layers/{other}"), 404, "split_not_found")
    job_id = _upload(http, banded_png()).json()["id"]
    _finished(http, job_id)
    _error(http.get(f"/api/layers/{job_id}/files/plane7.png"), 404, "file_not_found")
    _error(http.get(f"/api/layers/{job_id}/files/..%2F..%2Fjobs.sqlite3"), 404, "not_found")  # no route takes it
    _error(http.get(f"/api/layers/{job_id}/files/..jobs.sqlite3"), 404, "file_not_found")
    _error(http.get(f"/api/layers/{job_id}?verbose=1"), 400, "unknown_field")


def test_the_flag_off_refuses_every_route_naming_it(client: Client, tmp_path: Path) -> None:
    http = client(good_model(tmp_path), COMFYVN_FEATURE_ENABLE_FLAT2LAYERS="0")
    for response in (
        _upload(http, banded_png()),
        http.post("/api/layers/split", json={"asset": "0123456789abcdef"}),
        http.get("/api/layers/model"),
        http.get("/api/layers/job-0123"),
        http.get("/api/layers/job-0123/files/plane0.png"),
    ):
        error = _error(response, 403, "feature_disabled")
        assert error["flag"] == "enable_flat2layers" and "enable_flat2layers" in error["message"]
    assert not (http.kernel.paths.data / "plugins" / "layers" / "uploads").exists()  # type: ignore[attr-defined]

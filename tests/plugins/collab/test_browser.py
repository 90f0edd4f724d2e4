"""The y-websocket provider in a real browser (Debian's headless Chromium through Selenium) edits a room on real
hypercorn alongside a Python pycrdt client: both see each other's typing and presence, the snapshot shows it.

The page is served by a separate loopback server, as a studio's own editor would be: its origin must be in
the server's ``allowed_origins`` (the cross-site guard), and a page from any other origin never connects.
The npm packages (``yjs``, ``y-websocket`` and what they import) are served as ES modules with an import
map built from their package.json ``exports``; nothing is bundled or downloaded.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import comfyvn_collab.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import httpx
import pytest
from comfyvn import Kernel
from comfyvn_collab.hub import Hub
from comfyvn_scenario.store import ProjectStore
from live_server import live_server
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from websockets.asyncio.client import connect

from .test_hub import _project
from .yclient import YClient

JS = Path(__file__).resolve().parent / "js"
PACKAGES = ("yjs", "y-websocket", "y-protocols", "lib0", "isomorphic.js")
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>collab</title>
<script type="importmap">{imports}</script>
<script type="module">
import * as Y from "yjs";
import {{ WebsocketProvider }} from "y-websocket";
const params = new URLSearchParams(location.search);
const doc = new Y.Doc();
const provider = new WebsocketProvider(params.get("server"), params.get("scene"), doc);
provider.awareness.setLocalState({{ user: {{ id: "web", name: "Browser", color: "#3366ff" }}, node: "a" }});
window.collab = {{
  synced: false,
  status: "connecting",
  type(text) {{ doc.getMap("nodes").get("a").get("text").insert(0, text); }},
  addNode(id, text) {{
    const node = new Y.Map();
    doc.transact(() => {{
      doc.getMap("nodes").set(id, node);
      node.set("id", id);
      node.set("text", new Y.Text(text));
      doc.getArray("order").push([id]);
    }});
  }},
  text(id) {{ const n = doc.getMap("nodes").get(id); return n ? n.get("text").toString() : null; }},
  order() {{ return doc.getArray("order").toArray(); }},
  peers() {{ return [...provider.awareness.getStates().values()].map((s) => s.user && s.user.name); }},
}};
provider.on("sync", (synced) => {{ window.collab.synced = synced; }});
provider.on("status", (event) => {{ window.collab.status = event.status; }});
</script>
"""


def _pick(target: Any) -> str | None:
    """The browser's file for one package.json ``exports`` target (conditions in the browser's order)."""
    if isinstance(target, str):
        return target
    if isinstance(target, dict):
        for condition in ("browser", "module", "import", "default"):
            if condition in target:
                return _pick(target[condition])
    return None


def import_map() -> dict[str, Any]:
    """Bare specifiers (``yjs``, ``lib0/encoding``, …) -> the ES module files under /node_modules/."""
    imports: dict[str, str] = {}
    for name in PACKAGES:
        manifest = json.loads((JS / "node_modules" / name / "package.json").read_text())
        exports = manifest.get("exports") or {".": manifest.get("module") or manifest["main"]}
        for key, target in exports.items():
            file = _pick(target)
            if key == "./package.json" or file is None or not file.endswith((".js", ".mjs")):
                continue
            imports[name if key == "." else f"{name}/{key[2:]}"] = f"/node_modules/{name}/{file[2:]}"
    return {"imports": imports}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The editor page and the npm packages on their own loopback server (another origin than the studio)."""
    assert (JS / "node_modules" / "yjs").is_dir(), (
        "the npm packages are not installed: run `nox -s tests`, or `npm ci` in tests/plugins/collab/js"
    )
    root = tmp_path_factory.mktemp("pages")
    (root / "node_modules").symlink_to(JS / "node_modules")
    (root / "index.html").write_text(PAGE.format(imports=json.dumps(import_map())))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), (
        "Chromium is not installed: `apt-get install -y chromium chromium-driver` (the noxfile does it)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=800,600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def studio(make_kernel: Callable[..., Kernel], pages: str) -> Iterator[tuple[Kernel, str]]:
    """The studio on real hypercorn, allowing the pages' origin (as a studio allows its own editor's)."""
    kernel = make_kernel(comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_collab.plugin)
    ProjectStore.for_kernel(kernel).create(_project(), project_id="story")
    try:
        with live_server(kernel, allowed_origins=(pages,)) as base:
            yield kernel, base
    finally:
        Hub.forget(kernel)


def _wait(browser: WebDriver, script: str, expected: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = browser.execute_script(f"return {script};")
        if value == expected:
            return value
        assert time.monotonic() < deadline, f"{what}: {value!r}"
        time.sleep(0.05)


def test_the_browser_provider_and_a_python_client_edit_one_scene_together(
    browser: WebDriver, pages: str, studio: tuple[Kernel, str]
) -> None:
    _, base = studio
    ws = base.replace("http://", "ws://") + "/api/collab/yjs/story"
    browser.get(f"{pages}/index.html?server={ws}&scene=intro")
    _wait(browser, "window.collab && window.collab.synced", True, "the browser did not sync")
    assert browser.execute_script("return window.collab.text('a');") == "Hello"

    async def python_side() -> None:
        async with YClient(f"{ws}/intro") as python:
            python.set_awareness({"user": {"id": "py", "name": "Python", "color": "#ff0000"}})
            await python.type_text("b", "[py] ", 0)
            browser.execute_script("window.collab.type('[web] '); window.collab.addNode('w', 'From the web');")
            await python.wait_for(lambda: "w" in python.to_json()["nodes"])
            await python.wait_for(lambda: python.to_json()["nodes"]["a"]["text"] == "[web] Hello")
            _wait(browser, "window.collab.text('b')", "[py] The end.", "Python's edit did not reach the browser")
            _wait(browser, "window.collab.peers().sort().join()", "Browser,Python", "presence")
            # A JSON-protocol client's first presence.update shows in the browser's awareness too.
            json_url = base.replace("http://", "ws://") + "/api/collab/ws?scene_id=story/intro&user=jo&name=Jo"
            async with connect(json_url) as json_client:
                assert json.loads(await json_client.recv())["type"] == "room.joined"
                await json_client.send(json.dumps({"type": "presence.update", "presence": {"node": "b"}}))
                _wait(browser, "window.collab.peers().sort().join()", "Browser,Jo,Python", "JSON presence")
            names = {s.get("user", {}).get("name") for s in python.awareness_states().values()}
            assert "Browser" in names

    asyncio.run(python_side())
    snapshot = httpx.get(f"{base}/api/collab/snapshot/story/intro").json()["scene"]
    assert [n["id"] for n in snapshot["nodes"]] == ["a", "b", "w"]
    assert snapshot["nodes"][0]["text"] == "[web] Hello" and snapshot["nodes"][1]["text"] == "[py] The end."
    assert snapshot["nodes"][2] == {"id": "w", "text": "From the web"}


def test_a_page_from_an_origin_the_studio_does_not_allow_never_connects(
    browser: WebDriver, pages: str, make_kernel: Callable[..., Kernel]
) -> None:
    kernel = make_kernel(comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_collab.plugin)
    ProjectStore.for_kernel(kernel).create(_project(), project_id="story")
    with live_server(kernel) as base:  # no allowed_origins: only the studio's own origin may connect
        ws = base.replace("http://", "ws://") + "/api/collab/yjs/story"
        browser.get(f"{pages}/index.html?server={ws}&scene=intro")
        _wait(browser, "typeof window.collab", "object", "the page did not load")
        time.sleep(2)
        assert browser.execute_script("return window.collab.synced;") is False
        assert httpx.get(f"{base}/api/collab/health").json()["rooms"] == []
    Hub.forget(kernel)

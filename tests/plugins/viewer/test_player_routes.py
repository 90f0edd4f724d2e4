"""The web player's JSON over HTTP (no browser): frames from the runner, text paged exactly as the Ren'Py
export pages it, assets only from the export's plan, client mistakes as 4xx, and the expiring share links."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import comfyvn_viewer.share
import pytest
from comfyvn import Kernel
from comfyvn.errors import NotFound
from comfyvn_renpy.export import ExportOptions, build_bundle
from comfyvn_renpy.layout import build_layout
from comfyvn_renpy.text import Parsed, render
from comfyvn_scenario.project import Project, load_project
from comfyvn_scenario.store import ProjectStore
from comfyvn_viewer.share import ShareLinks
from hypothesis import given
from hypothesis import strategies as st

from .stories import SIDE_LINES, long_project, side_project

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"


@pytest.fixture
def player(make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], Any], tmp_path: Path) -> Any:
    def build(**env: str) -> Any:
        kernel = make_kernel(
            comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_renpy.plugin, comfyvn_viewer.plugin, env=env
        )
        store = ProjectStore.for_kernel(kernel)
        if not store.exists("demo"):
            store.create_from_folder(DEMO, project_id="demo")
            store.create_from_folder(long_project(tmp_path / "long"), project_id="long")
            store.create_from_folder(side_project(tmp_path / "side"), project_id="side")
        http = http_for(kernel)
        http.kernel = kernel  # the tests look at the kernel's data folder
        return http

    return build


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert "/tmp" not in response.text and "Traceback" not in response.text
    return error


def test_a_run_through_the_json_api_shows_the_stage_the_speaker_and_the_choices(player: Any) -> None:
    http = player()
    info = http.get("/api/viewer/play/demo/info").json()
    assert info["title"] == "The Last Train" and [p["id"] for p in info["povs"]] == ["alice", "bob"]
    frame = http.post("/api/viewer/play/demo/start", json={"seed": 7}).json()
    assert frame["state"]["current_node"] == "arrival" and frame["mode"] == "menu"
    assert frame["node"]["speaker"] is None
    assert frame["stage"]["background"].endswith(".png") and frame["stage"]["sprites"] == []
    assert (
        http.get(frame["stage"]["background"]).content == (DEMO / "assets/backgrounds/platform_night.png").read_bytes()
    )
    frame = http.post("/api/viewer/play/demo/step", json={"state": frame["state"], "choice_id": "look_around"}).json()
    assert frame["node"]["speaker"] == {"id": "alice", "name": "Alice", "color": "#e07a5f"}
    assert frame["node"]["pages"] == [[["You made it! I was starting to think you'd miss it.", 0]]]
    [alice] = frame["stage"]["sprites"]
    assert alice["xalign"] == 0.5
    assert http.get(alice["url"]).content == (DEMO / "assets/characters/alice/smile.png").read_bytes()
    assert [c["id"] for c in frame["choices"]] == ["help_bags", "go_machine"]
    # A POV switch keeps the node and the variables and answers with the choices that POV sees.
    viewed = http.post("/api/viewer/play/demo/view", json={"state": frame["state"], "pov": "bob"}).json()
    assert viewed["state"]["pov"] == "bob" and viewed["state"]["current_node"] == "alice_greets"
    # The weighted ticket machine is drawn by the runner's LCG when the reader advances.
    frame = http.post("/api/viewer/play/demo/step", json={"state": frame["state"], "choice_id": "go_machine"}).json()
    assert frame["state"]["current_node"] == "ticket_machine" and frame["mode"] == "draw"
    assert frame["stage"]["sprites"] == []  # Alice was hidden
    drawn = http.post("/api/viewer/play/demo/step", json={"state": frame["state"]}).json()
    assert drawn["state"]["current_node"] in ("ticket_ok", "ticket_jam") and drawn["state"]["rng"]["uses"] == 1


def test_pages_and_markup_are_the_ones_the_renpy_export_writes(player: Any) -> None:
    http = player()
    frame = http.post("/api/viewer/play/long/start", json={}).json()
    pages = frame["node"]["pages"]
    assert len(pages) >= 2, "the long line should need more than one text box"
    script = build_bundle(load_project(_long_dir(http)), ExportOptions()).files
    text = "\n".join(data.decode("utf-8") for path, data in script.items() if path.endswith(".rpy"))
    said = re.findall(r'^\s*c_cora "(.*)"$', text, flags=re.M)
    # The same pages, in order, with the same bold and italic: each page's runs render to the export's string.
    rendered = []
    for runs in pages:
        visible = "".join(part for part, _style in runs)
        offsets, at = [], 0
        for part, style in runs:
            offsets.append((at, at + len(part), style))
            at += len(part)
        rendered.append(render(Parsed(visible, tuple(offsets))))
    assert rendered == said
    assert any(style & 2 and part == "twice" for runs in pages for part, style in runs)


def test_the_side_image_shows_on_the_lines_of_who_the_export_gives_one(player: Any, tmp_path: Path) -> None:
    http = player()
    art = tmp_path / "side" / "art"
    frame = http.post("/api/viewer/play/side/start", json={}).json()
    for node_id, speaker, side in SIDE_LINES:
        assert frame["state"]["current_node"] == node_id
        assert (frame["node"]["speaker"] or {}).get("id") == speaker
        if side is None:
            assert frame["stage"]["side"] is None, node_id
        else:
            assert http.get(frame["stage"]["side"]).content == (art / side).read_bytes(), node_id
        # The face-only character never stands on the stage; the other one stands only while shown.
        assert [s["id"] for s in frame["stage"]["sprites"]] == (["rook"] if node_id in ("rook_in", "moth_glad") else [])
        if not frame["finished"]:
            frame = http.post("/api/viewer/play/side/step", json={"state": frame["state"], "choice_id": "on"}).json()
    assert frame["finished"]


_MUSIC = re.compile(
    r"^(?:play music '(?P<dest>[^']+)'(?: fadein (?P<fadein>[\d.]+))? (?P<loop>loop|noloop)(?: volume (?P<vol>[\d.]+))?"
    r"|stop music(?: fadeout (?P<fadeout>[\d.]+))?)$"
)
_SOUND = re.compile(r"^play audio '(?P<dest>[^']+)'(?: volume (?P<vol>[\d.]+))?$")
_VOICE = re.compile(r"^voice '(?P<dest>[^']+)'$")


def _label_blocks(files: dict[str, bytes]) -> dict[str, list[str]]:
    """Each label of the exported game's scene scripts -> its statements before its say/menu."""
    blocks: dict[str, list[str]] = {}
    for path, data in files.items():
        if not path.startswith("game/scenes/"):
            continue
        label = None
        for raw in data.decode("utf-8").splitlines():
            if raw.startswith("label "):
                label = raw[len("label ") : -1]
                blocks[label] = []
            elif label is not None and raw.startswith("    ") and not raw.startswith("     "):
                blocks[label].append(raw.strip())
    return blocks


def _expected_audio(statements: list[str], base: str, playing: dict[str, Any] | None) -> dict[str, Any]:
    """What the export's statements on arriving at a node play: the music after them (and the music
    statement that ran, if one did), the effects and the voice."""
    cue = None
    sounds, voice = [], None
    for line in statements:
        if m := _MUSIC.match(line):
            if m["dest"]:
                cue = {"url": f"{base}/asset/{m['dest']}", "fade": float(m["fadein"] or 0), "loop": m["loop"] == "loop"}
                cue["volume"] = float(m["vol"] or 1.0)
            else:
                cue = {"url": None, "fade": float(m["fadeout"] or 0), "loop": False, "volume": 1.0}
            playing = cue if cue["url"] else None
        elif m := _SOUND.match(line):
            sounds.append({"url": f"{base}/asset/{m['dest']}", "delay": 0.0, "volume": float(m["vol"] or 1.0)})
        elif m := _VOICE.match(line):
            voice = f"{base}/asset/{m['dest']}"
    return {"music": playing, "music_cue": cue, "sounds": sounds, "voice": voice}


@pytest.mark.parametrize("seed", [7, 1_456])
@pytest.mark.parametrize("pick", [0, -1])
def test_frames_play_the_music_effects_and_voice_the_exported_script_plays(player: Any, seed: int, pick: int) -> None:
    http = player()
    project = load_project(DEMO)
    files = build_bundle(project, ExportOptions()).files
    blocks = _label_blocks(files)
    labels = build_layout(project).node_labels
    base = "/api/viewer/play/demo"
    frame = http.post(f"{base}/start", json={"seed": seed}).json()
    scene, playing, heard, urls = None, None, set(), set()
    while True:
        node = frame["state"]["current_node"]
        statements = []
        if frame["scene"] != scene:  # entering a scene runs its label: background and music
            scene = frame["scene"]
            statements += blocks[f"scene_{scene}"]
        statements += blocks[labels[(scene, node)]]
        expected = _expected_audio(statements, base, playing)
        assert frame["audio"] == expected, node
        playing = expected["music"]
        heard.update(k for k in ("music_cue", "voice") if expected[k])
        heard.update(["stop"] if expected["music_cue"] and not expected["music_cue"]["url"] else [])
        heard.update(["sounds"] if expected["sounds"] else [])
        urls.update(s["url"] for s in expected["sounds"])
        urls.update(u for u in (expected["voice"], (playing or {}).get("url")) if u)
        if frame["finished"]:
            break
        choice = frame["choices"][pick]["id"] if frame["mode"] == "menu" else None
        frame = http.post(f"{base}/step", json={"state": frame["state"], "choice_id": choice}).json()
    # Every run here hears a track start, an effect and Alice's voiced line; the one left behind hears the
    # music stop. The files come through the asset endpoint (the export plan lists them).
    assert {"music_cue", "sounds", "voice"} <= heard and ("stop" in heard) == (node == "left_behind")
    for url in urls:
        response = http.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "audio/wav", url


def _long_dir(http: Any) -> Path:
    """The stored copy of the long project (in the kernel's data folder)."""
    folder = Path(http.kernel.paths.data) / "projects" / "long"
    assert folder.is_dir()
    return folder


def test_client_mistakes_are_4xx_without_server_paths(player: Any) -> None:
    http = player()
    _error(http.get("/play/nope"), 404, "project_not_found")
    _error(http.post("/api/viewer/play/nope/start", json={}), 404, "project_not_found")
    _error(http.post("/api/viewer/play/demo/start", json={"seed": -1}), 400, "invalid_seed")
    _error(http.post("/api/viewer/play/demo/start", json={"seed": "7"}), 400, "invalid_seed")
    _error(http.post("/api/viewer/play/demo/start", json={"pov": "carol"}), 400, "unknown_pov")
    _error(http.post("/api/viewer/play/demo/start", content=b"[1]"), 400, "invalid_request")
    _error(http.post("/api/viewer/play/demo/step", json={}), 400, "invalid_state")
    _error(http.post("/api/viewer/play/demo/view", json={"state": 3}), 400, "invalid_state")
    start = http.post("/api/viewer/play/demo/start", json={}).json()
    _error(
        http.post("/api/viewer/play/demo/step", json={"state": start["state"], "choice_id": "x"}),
        422,
        "choice_unavailable",
    )
    bad_node = {**start["state"], "current_node": "nowhere"}
    _error(http.post("/api/viewer/play/demo/step", json={"state": bad_node}), 422, "unknown_node")
    # Only files the export plan names are served: no way to the project's JSON or out of the project.
    for path in ("project.json", "../project.json", "..%2F..%2Fproject.json", "images/bg/../../project.json"):
        assert http.get(f"/api/viewer/play/demo/asset/{path}").status_code == 404


def test_the_flag_off_refuses_the_player(player: Any) -> None:
    http = player(COMFYVN_FEATURE_ENABLE_VIEWER_WEBMODE="0")
    for response in (
        http.get("/play/demo"),
        http.get("/api/viewer/play/demo/info"),
        http.post("/api/viewer/play/demo/start", json={}),
        http.post("/api/viewer/share", json={"project": "demo"}),
        http.get("/play/"),
    ):
        _error(response, 403, "feature_disabled")


def test_the_server_address_opens_a_list_of_the_projects_to_play(player: Any) -> None:
    http = player()
    home = http.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/play/"
    for path in ("/play", "/play/"):
        page = http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        links = re.findall(r'<a href="(/play/[^"]+)">([^<]+)</a>', page.text)
        assert ("/play/demo", "The Last Train") in links
        assert {link for link, _ in links} == {"/play/demo", "/play/long", "/play/side"}
        assert "/tmp" not in page.text
    # Every link opens a player page.
    for link, _ in links:
        assert http.get(link).status_code == 200


def test_the_project_list_escapes_titles_and_says_how_to_add_one(player: Any) -> None:
    http = player()
    store = ProjectStore.for_kernel(http.kernel)
    for project_id in ("demo", "long", "side"):
        store.delete(project_id)
    empty = http.get("/play/")
    assert "No projects yet" in empty.text and "comfyvn projects add" in empty.text
    project = load_project(DEMO)
    odd = Project(meta={**project.meta, "title": '<script>alert("x")</script> & co'}, scenes=project.scenes)
    store.create(odd, project_id="odd-title")
    page = http.get("/play/").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page


def test_a_share_link_plays_the_project_until_it_expires(player: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    http = player()
    now = [1_800_000_000.0]
    monkeypatch.setattr(comfyvn_viewer.share, "_now", lambda: now[0])
    issued = http.post("/api/viewer/share", json={"project": "demo", "ttl": 3600}).json()
    assert issued["expires_at"] == 1_800_003_600 and issued["url"] == f"/api/viewer/web/{issued['token']}/"
    assert "demo" not in issued["url"]
    page = http.get(issued["url"])
    assert page.status_code == 200 and f'content="/api/viewer/web/{issued["token"]}"' in page.text
    base = issued["url"].rstrip("/")
    frame = http.post(f"{base}/start", json={"seed": 1}).json()
    assert frame["state"]["current_node"] == "arrival" and frame["stage"]["background"].startswith(base + "/asset/")
    assert http.get(frame["stage"]["background"]).status_code == 200
    assert http.get(f"{base}/info").json()["title"] == "The Last Train"
    # A changed letter, another project's claim or a token from another key: not valid.
    token = issued["token"]
    payload, signature = token.split(".")
    forged = f"{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    _error(http.get(f"/api/viewer/web/{forged}/"), 404, "share_link_invalid")
    other = ShareLinks(Path(http.kernel.paths.data) / "other.key").issue("demo")["token"]
    _error(http.post(f"/api/viewer/web/{other}/start", json={}), 404, "share_link_invalid")
    now[0] += 3600
    _error(http.get(issued["url"]), 404, "share_link_expired")
    _error(http.get(frame["stage"]["background"]), 404, "share_link_expired")
    _error(http.post("/api/viewer/share", json={"project": "demo", "ttl": 5}), 400, "invalid_ttl")
    _error(http.post("/api/viewer/share", json={"project": "nope"}), 404, "project_not_found")
    _error(http.post("/api/viewer/share", json={}), 400, "invalid_project")
    key = Path(http.kernel.paths.data) / "plugins" / "viewer" / "share.key"
    assert key.stat().st_mode & 0o777 == 0o600


@given(st.text(max_size=200))
def test_any_text_is_a_valid_token_or_a_404(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    links = ShareLinks(tmp_path_factory.getbasetemp() / "prop.key")
    with pytest.raises(NotFound):
        links.check(text)


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", fullmatch=True), st.integers(60, 30 * 24 * 3600))
def test_an_issued_token_names_its_project(tmp_path_factory: pytest.TempPathFactory, project: str, ttl: int) -> None:
    links = ShareLinks(tmp_path_factory.getbasetemp() / "prop.key", clock=lambda: 1_700_000_000.0)
    assert links.check(links.issue(project, ttl)["token"]) == project

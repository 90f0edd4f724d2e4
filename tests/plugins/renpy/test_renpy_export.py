"""The exporter without the engine: escaping, names, determinism, dry runs, zips, hooks, CLI and routes."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel, hookimpl
from comfyvn.cli import exit_code, make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_renpy import ExportOptions, ExportRequest, build_bundle, publish_zip, run_export
from comfyvn_renpy.names import NameRegistry, say_string
from comfyvn_scenario import load_project
from comfyvn_server.errors import http_status
from hypothesis import given
from hypothesis import strategies as st

_LABEL = re.compile(r"^[A-Za-z][0-9A-Za-z_]*$")


def _unescape(literal: str) -> str:
    """What Ren'Py 8.0's parser + substitution make of a say string (parser.py dequote, then [[ {{ %%)."""
    assert literal.startswith('"') and literal.endswith('"')
    body = re.sub(r"\s+", " ", literal[1:-1])

    def dequote(m: re.Match[str]) -> str:
        c = m.group(1)
        if c == "n":
            return "\n"
        if c[0] == "u" and m.group(2):
            return chr(int(m.group(2), 16))
        return c

    body = re.sub(r"\\(u([0-9a-fA-F]{1,4})|.)", dequote, body)
    return body.replace("[[", "[").replace("{{", "{").replace("%%", "%")


@given(st.text())
def test_say_string_round_trips_through_the_renpy_parser_rules(text: str) -> None:
    literal = say_string(text)
    assert "\n" not in literal and '"' not in literal[1:-1].replace('\\"', "")
    expected = "".join(" " if (c.isspace() and c != "\n") else c for c in text)
    expected = re.sub(r"[^\S\n]+", " ", expected)
    got = _unescape(literal)
    # Ren'Py collapses whitespace runs; compare after the same collapse, control characters decoded.
    assert re.sub(r"[^\S\n]+", " ", got) == expected.replace("\ud800", "\ufffd") or any(
        0xD800 <= ord(c) <= 0xDFFF for c in text
    )


def test_say_string_escapes_in_the_documented_order() -> None:
    assert say_string('a "b" \\ [c] {d} 100%\nx') == '"a \\"b\\" \\\\ [[c] {{d} 100%%\\nx"'


@given(st.lists(st.text(min_size=1), min_size=1, max_size=30))
def test_registry_names_are_unique_and_stable(bases: list[str]) -> None:
    first, second = NameRegistry(), NameRegistry()
    names = [first.claim(b) for b in bases]
    assert len(set(names)) == len(names)
    assert names == [second.claim(b) for b in bases]


def test_demo_bundle_labels_are_valid_unique_and_every_jump_resolves(demo_project: Path) -> None:
    bundle = build_bundle(load_project(demo_project), ExportOptions())
    script = "\n".join(
        data.decode() for path, data in bundle.files.items() if path.endswith(".rpy") and not path.startswith("forks/")
    )
    labels = re.findall(r"^label (\S+):", script, re.M)
    assert len(labels) == len(set(labels)) and all(_LABEL.match(label) for label in labels)
    assert set(re.findall(r"^\s*jump (\S+)\s*$", script, re.M)) <= set(labels)
    assert (
        "define c_alice = Character('Alice', color='#e07a5f', image='alice')"
        in bundle.files["game/characters.rpy"].decode()
    )
    assert bundle.export_manifest["pov"]["mode"] == "both"
    assert [f["path"] for f in bundle.export_manifest["pov"]["forks"]] == ["forks/alice", "forks/bob"]
    assert "forks/bob/game/script.rpy" in bundle.files
    assert bundle.export_manifest["missing_assets"] == {"backgrounds": [], "portraits": [], "audio": []}
    for path, sha in bundle.export_manifest["files"].items():
        assert len(sha) == 64 and path in bundle.files


def test_missing_assets_become_placeholders_and_warnings(demo_project: Path) -> None:
    (demo_project / "assets/backgrounds/carriage.png").unlink()
    (demo_project / "assets/characters/bob/grin.png").unlink()
    bundle = build_bundle(load_project(demo_project), ExportOptions(pov_mode="disabled"))
    images = bundle.files["game/images.rpy"].decode()
    assert re.search(r"^image bg carriage = Solid\('#[0-9a-f]{6}'\)$", images, re.M)
    # A missing sprite is the neutral figure, tinted and fitted to the stage like a real sprite.
    assert re.search(
        r"^image bob grin = Transform\('gui/placeholder_sprite\.png', zoom=[0-9.]+, "
        r"matrixcolor=TintMatrix\('#[0-9a-f]{6}'\)\)$",
        images,
        re.M,
    )
    assert "game/gui/placeholder_sprite.png" in bundle.files
    missing = bundle.export_manifest["missing_assets"]
    assert missing["backgrounds"] == ["assets/backgrounds/carriage.png"]
    assert missing["portraits"] == ["assets/characters/bob/grin.png"]
    assert any("carriage.png" in w for w in bundle.warnings)
    # Told in the player's words: a character's missing picture is a sprite, not a "portrait".
    assert "missing background 'assets/backgrounds/carriage.png': exported as a placeholder colour" in bundle.warnings
    assert "missing sprite 'assets/characters/bob/grin.png': exported as a placeholder figure" in bundle.warnings


def test_same_input_gives_identical_bytes_and_zip(demo_project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "demo"
    copy.parent.mkdir()
    import shutil

    shutil.copytree(demo_project, copy)
    a = build_bundle(load_project(demo_project), ExportOptions(testcases=True))
    b = build_bundle(load_project(copy), ExportOptions(testcases=True))
    assert a.all_files() == b.all_files()
    zip_a, _ = publish_zip(a, ["windows", "linux"], version="1.0")
    zip_b, _ = publish_zip(b, ["linux", "windows"], version="1.0")
    assert zip_a == zip_b
    with zipfile.ZipFile(__import__("io").BytesIO(zip_a)) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {"publish_manifest.json", "platforms/linux/README.txt", "game/script.rpy"} <= set(names)
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in archive.infolist()} == {0o100644}


def test_dry_run_after_a_one_line_edit_reports_exactly_that_file(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    kernel, out, forked = renpy_kernel(), tmp_path / "game_out", tmp_path / "forked"
    master = ExportOptions(pov_mode="master")
    run_export(kernel, ExportRequest(project=demo_project, out=out, options=master))
    run_export(kernel, ExportRequest(project=demo_project, out=forked))
    scene_file = demo_project / "scenes" / "night_train.json"
    scene_file.write_text(scene_file.read_text().replace("Pancakes. You're paying.", "Waffles. You're paying."))
    preview = run_export(kernel, ExportRequest(project=demo_project, out=out, options=master, dry_run=True))["preview"]
    modified = [e["path"] for e in preview["files"] if e["status"] != "unchanged"]
    assert modified == ["game/scenes/scene_night_train.rpy"]
    # With POV forks the same scene file exists once per build, and only those copies change.
    forks = run_export(kernel, ExportRequest(project=demo_project, out=forked, dry_run=True))["preview"]
    assert [e["path"] for e in forks["files"] if e["status"] != "unchanged"] == [
        "forks/alice/game/scenes/scene_night_train.rpy",
        "forks/bob/game/scenes/scene_night_train.rpy",
        "game/scenes/scene_night_train.rpy",
    ]
    diff = next(e["diff"] for e in preview["files"] if e["status"] == "modified")
    assert '-    c_bob "Pancakes. You\'re paying."' in diff and '+    c_bob "Waffles. You\'re paying."' in diff
    assert "Pancakes" in (out / "game/scenes/scene_night_train.rpy").read_text()  # nothing written


def test_no_per_scene_and_pov_modes(demo_project: Path) -> None:
    project = load_project(demo_project)
    single = build_bundle(project, ExportOptions(per_scene=False, pov_mode="master", pov_switch=False))
    assert not any(p.startswith(("game/scenes/", "forks/")) for p in single.files)
    script = single.files["game/script.rpy"].decode()
    assert "label night_train_terminus:" in script and "cvn_switch_pov" not in script
    forks = build_bundle(project, ExportOptions(pov_mode="forks"))
    assert "default cvn_pov = 'bob'" in forks.files["forks/bob/game/script.rpy"].decode()
    assert "menu:" not in forks.files["game/script.rpy"].decode()


class Blocker:
    @hookimpl
    def renpy_export_gate(self, project: Any) -> dict[str, Any]:
        return {"reason": f"rating of {project.id} not acknowledged", "ack_token": "t-1"}


class Weather:
    @hookimpl
    def renpy_export_contributions(self, project: Any, options: dict[str, Any]) -> dict[str, Any] | None:
        if not options["bake_weather"]:
            return None
        return {
            "files": {"game/weather.rpy": "define weather_kind = 'rain'\n"},
            "scene_lines": {"night_train": ["$ renpy.notify('rain')"]},
            "node_lines": {"platform:arrival": ["play sound 'audio/coins.wav'"]},
        }


def test_hook_renpy_export_gate(renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path) -> None:
    kernel = renpy_kernel(Blocker())
    with pytest.raises(Exception) as caught:
        run_export(kernel, ExportRequest(project=demo_project, out=tmp_path / "o"))
    exc = caught.value
    assert isinstance(exc, ComfyVNError)
    assert (http_status(exc), exit_code(exc), exc.code) == (423, 3, "export_blocked")
    assert exc.details["blocked_by"][0]["ack_token"] == "t-1"
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(make_cli(kernel), ["export", "renpy", str(demo_project), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3 and "not acknowledged" in result.output


def test_hook_renpy_export_contributions(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    kernel = renpy_kernel(Weather())
    plain = run_export(kernel, ExportRequest(project=demo_project, out=tmp_path / "a"))
    assert not (tmp_path / "a/game/weather.rpy").exists() and plain["ok"]
    run_export(
        kernel,
        ExportRequest(
            project=demo_project, out=tmp_path / "b", options=ExportOptions(bake_weather=True, pov_mode="disabled")
        ),
    )
    assert (tmp_path / "b/game/weather.rpy").read_text() == "define weather_kind = 'rain'\n"
    scene = (tmp_path / "b/game/scenes/scene_night_train.rpy").read_text()
    assert "    $ renpy.notify('rain')\n    jump night_train_carriage" in scene
    assert (
        "label platform_arrival:\n    play sound 'audio/coins.wav'"
        in (tmp_path / "b/game/scenes/scene_platform.rpy").read_text()
    )
    label_manifest = json.loads((tmp_path / "b/label_manifest.json").read_text())
    assert label_manifest["weather_bake"] == {"requested": True, "contributors": ["weather"]}


class Registry:
    """Answers for ``asset:`` references from a folder of files (what the assets plugin does for its registry)."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    @hookimpl
    def renpy_resolve_asset(self, ref: str) -> dict[str, Any] | None:
        uid = ref.removeprefix("asset:")
        if not ref.startswith("asset:") or uid not in self.files:
            return None
        path = self.files[uid]
        return {"path": str(path), "uid": uid, "sha256": "f" * 64, "provenance": {"seed": 7}, "license": "CC0"}


def test_hook_renpy_resolve_asset(renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path) -> None:
    """``asset:<uid>`` references are copied like project files, their provenance kept in the manifest;
    a reference nobody resolves is a missing asset, as a missing file is."""
    art = tmp_path / "registry"
    art.mkdir()
    shutil.copy(demo_project / "assets/characters/bob/grin.png", art / "a.png")
    shutil.copy(demo_project / "assets/backgrounds/carriage.png", art / "b.png")
    project_file = demo_project / "project.json"
    project = json.loads(project_file.read_text())
    project["characters"]["alice"]["sprites"]["smile"] = "asset:a1"
    project["characters"]["alice"]["sprites"]["worried"] = "asset:gone"
    project_file.write_text(json.dumps(project))
    scene_file = demo_project / "scenes/night_train.json"
    scene = json.loads(scene_file.read_text())
    scene["background"] = "asset:b2"
    scene_file.write_text(json.dumps(scene))
    kernel = renpy_kernel(Registry({"a1": art / "a.png", "b2": art / "b.png"}))
    result = run_export(kernel, ExportRequest(project=demo_project, out=tmp_path / "o", options=ExportOptions()))
    manifest = json.loads((tmp_path / "o/export_manifest.json").read_text())
    smile = next(a for a in manifest["assets"]["portraits"] if a["source"] == "asset:a1")
    assert (tmp_path / "o" / smile["path"]).read_bytes() == (art / "a.png").read_bytes()
    assert smile["asset"] == {
        "uid": "a1",
        "sha256": "f" * 64,
        "provenance": {"seed": 7},
        "license": "CC0",
        "source": None,
    }
    background = next(a for a in manifest["assets"]["backgrounds"] if a["source"] == "asset:b2")
    assert (tmp_path / "o" / background["path"]).read_bytes() == (art / "b.png").read_bytes()
    assert "asset:gone" in result["missing_assets"]["portraits"]
    plain = next(a for a in manifest["assets"]["portraits"] if a["source"] == "assets/characters/bob/grin.png")
    assert "asset" not in plain
    # Without a resolver the same references are missing, never read from anywhere else.
    bare = run_export(renpy_kernel(), ExportRequest(project=demo_project, out=tmp_path / "p", options=ExportOptions()))
    assert {"asset:a1", "asset:gone"} <= set(bare["missing_assets"]["portraits"])
    assert "asset:b2" in bare["missing_assets"]["backgrounds"]


def test_bake_weather_needs_its_flag(renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path) -> None:
    kernel = renpy_kernel(env={"COMFYVN_FLAG_ENABLE_EXPORT_BAKE": "0"})
    kernel.flags.set("enable_export_bake", False)
    with pytest.raises(Exception) as caught:
        run_export(
            kernel, ExportRequest(project=demo_project, out=tmp_path / "o", options=ExportOptions(bake_weather=True))
        )
    assert isinstance(caught.value, ComfyVNError) and http_status(caught.value) == 403


def test_events_are_emitted(renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path) -> None:
    kernel = renpy_kernel()
    seen: list[tuple[str, dict[str, Any]]] = []
    kernel.events.subscribe(
        lambda env: seen.append((env.event, dict(env.payload))), events=["on_export_started", "on_export_completed"]
    )
    run_export(kernel, ExportRequest(project=demo_project, out=tmp_path / "o", dry_run=True))
    assert [name for name, _ in seen] == ["on_export_started", "on_export_completed"]
    # Events reach webhooks: an export outside the data root is named by its folder, never its server path.
    assert [payload["out"] for _, payload in seen] == ["o", "o"]
    assert all(str(tmp_path) not in repr(payload) for _, payload in seen)
    seen.clear()
    inside = kernel.paths.data / "projects" / "demo" / "exports" / "renpy"
    run_export(kernel, ExportRequest(project=demo_project, out=inside, dry_run=True))
    assert [payload["out"] for _, payload in seen] == ["projects/demo/exports/renpy"] * 2


def test_event_schema_refuses_an_absolute_out(renpy_kernel: Callable[..., Kernel]) -> None:
    kernel = renpy_kernel()
    payload = {"project": "p", "out": "/srv/comfyvn/data/projects/p/exports/renpy", "dry_run": True}
    with pytest.raises(ValueError, match="out"):
        kernel.events.emit("on_export_started", {**payload, "pov_mode": "auto"})


def test_cli_export_json_dry_run_and_publish(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path
) -> None:
    cli, out = make_cli(renpy_kernel()), tmp_path / "game"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            "renpy",
            str(demo_project),
            "--out",
            str(out),
            "--json",
            "--publish",
            "--publish-out",
            str(tmp_path / "g.zip"),
            "--platform",
            "linux",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["publish"]["platforms"] == ["linux"] and (tmp_path / "g.zip").is_file()
    again = CliRunner().invoke(cli, ["export", "renpy", str(demo_project), "--out", str(out), "--dry-run"])
    assert again.exit_code == 0 and "0 new, 0 modified" in again.output
    bad = CliRunner().invoke(cli, ["export", "renpy", str(demo_project), "--out", str(out), "--pov-mode", "x"])
    assert bad.exit_code == 2


def test_invalid_project_is_a_422(renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path) -> None:
    scene_file = demo_project / "scenes" / "platform.json"
    scene_file.write_text(scene_file.read_text().replace('"target": "bags"', '"target": "nowhere"'))
    with pytest.raises(Exception) as caught:
        run_export(renpy_kernel(), ExportRequest(project=demo_project, out=tmp_path / "o"))
    assert isinstance(caught.value, ComfyVNError) and http_status(caught.value) == 422


def test_routes_export_preview_and_path_safety(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, http_for: Callable[..., Any]
) -> None:
    kernel = renpy_kernel()
    import shutil

    shutil.copytree(demo_project, kernel.paths.data / "projects" / "demo")
    http = http_for(kernel)
    done = http.request("POST", "/api/export/renpy", json={"project": "demo", "pov_mode": "master"})
    assert done.status_code == 200, done.text
    # A store project's game goes to its own exports/renpy, named relative to the project (no server path).
    assert done.json()["out"] == "exports/renpy" and str(kernel.paths.data) not in done.text
    assert (kernel.paths.data / "projects" / "demo" / "exports" / "renpy" / "game" / "script.rpy").is_file()
    preview = http.request("GET", "/api/export/renpy/preview", params={"project": "demo", "pov_mode": "master"})
    assert preview.status_code == 200 and preview.json()["preview"]["summary"]["modified"] == 0
    for body, field in (
        ({"project": "../../etc"}, "project"),
        ({"project": "/etc"}, "project"),
        ({"project": "demo", "dry_run": "yes"}, "dry_run"),
        ({"project": "demo", "x": 1}, "x"),
        ({"project": "demo", "pov_mode": "all"}, "pov_mode"),
        ([], "body"),
    ):
        answer = http.request("POST", "/api/export/renpy", json=body)
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field, (body, answer.text)
    assert http.request("POST", "/api/export/renpy", content=b"{").status_code == 400
    assert http.request("POST", "/api/export/renpy", json={"project": "nope"}).status_code == 404


def test_route_gate_is_a_423(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, http_for: Callable[..., Any]
) -> None:
    kernel = renpy_kernel(Blocker())
    import shutil

    shutil.copytree(demo_project, kernel.paths.data / "projects" / "demo")
    answer = http_for(kernel).request("GET", "/api/export/renpy/preview", params={"project": "demo"})
    assert answer.status_code == 423 and answer.json()["error"]["code"] == "export_blocked"


def test_a_store_project_exports_into_its_own_exports_folder_on_its_stamp(
    renpy_kernel: Callable[..., Kernel],
    demo_project: Path,
    http_for: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import comfyvn_renpy.export as export_module
    from comfyvn_scenario import ProjectStore

    kernel = renpy_kernel()
    store = ProjectStore.for_kernel(kernel)
    project = store.create_from_folder(demo_project, project_id="night-story")
    calls: list[int] = []
    validate = export_module.validate_project
    monkeypatch.setattr(export_module, "validate_project", lambda p: calls.append(1) or validate(p))
    http = http_for(kernel)
    done = http.request("POST", "/api/export/renpy", json={"project": "night-story", "publish": True})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["out"] == "exports/renpy" and body["publish"]["path"] == "exports/night-story.zip"
    assert str(kernel.paths.data) not in done.text
    assert calls == []  # the store validated these very files: its stamp is the report
    assert (project.path / "exports" / "renpy" / "game" / "script.rpy").is_file()
    assert zipfile.is_zipfile(project.path / "exports" / "night-story.zip")
    assert [(e["name"], e["kind"]) for e in store.exports("night-story")] == [
        ("night-story.zip", "file"),
        ("renpy", "folder"),
    ]
    # Exports are not project files: the stamp still matches, and the project zip leaves them out.
    assert store.load("night-story").validated
    assert not [n for n in zipfile.ZipFile(io.BytesIO(store.export_zip("night-story"))).namelist() if "exports" in n]
    # A hand edit breaks the stamp: the export validates again (and refuses the broken project).
    scene = project.path / "scenes" / "platform.json"
    scene.write_text(scene.read_text().replace('"target": "bags"', '"target": "nowhere"'))
    refused = http.request("POST", "/api/renpy/export", json={"project": "night-story"})
    assert refused.status_code == 422 and calls == [1], refused.text


def test_cli_exports_a_store_project_by_id(
    renpy_kernel: Callable[..., Kernel], demo_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from comfyvn_scenario import ProjectStore

    kernel = renpy_kernel()
    project = ProjectStore.for_kernel(kernel).create_from_folder(demo_project, project_id="night-story")
    cli = make_cli(kernel)
    result = CliRunner().invoke(cli, ["export", "renpy", "night-story", "--json", "--publish"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert Path(data["out"]) == (project.path / "exports" / "renpy").resolve()
    assert Path(data["publish"]["path"]) == (project.path / "exports" / "night-story.zip").resolve()
    assert (project.path / "exports" / "renpy" / "game" / "script.rpy").is_file()
    elsewhere = CliRunner().invoke(cli, ["export", "renpy", "night-story", "--out", str(tmp_path / "g"), "--dry-run"])
    assert elsewhere.exit_code == 0 and not (tmp_path / "g").exists(), elsewhere.output
    # A folder still needs --out; an unknown name is one line, exit 2.
    folder = CliRunner().invoke(cli, ["export", "renpy", str(demo_project)])
    assert folder.exit_code == 2 and "--out is required" in folder.output
    missing = CliRunner().invoke(cli, ["export", "renpy", "no-such-project", "--out", str(tmp_path / "g")])
    assert missing.exit_code == 2 and "no-such-project" in missing.output

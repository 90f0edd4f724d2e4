"""The project store (issue 12): versions, history, validated writes, the validation stamp, zips, events."""

from __future__ import annotations

import copy
import io
import json
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound, PreconditionFailed, TooLarge, Unprocessable
from comfyvn_scenario import archive, load_project
from comfyvn_scenario.store import ProjectStore, parse_if_match
from comfyvn_server.errors import http_status
from hypothesis import given
from project_factory import copy_demo, projects, tree_bytes, two_scenes, write_folder


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    return ProjectStore(tmp_path / "projects", history=3)


def _scene(store: ProjectStore, project_id: str, scene_id: str) -> dict[str, Any]:
    return copy.deepcopy(store.scene(project_id, scene_id)[0])


# -- create, read, update, delete ---------------------------------------------------------------------


def test_create_list_get_update_delete(store: ProjectStore) -> None:
    created = store.create(two_scenes())
    assert (created.id, created.version, created.scene_versions) == ("tiny", 1, {"intro": 1, "outro": 1})
    assert created.validated and created.report is not None and created.report.valid
    assert [p["id"] for p in store.list_projects()] == ["tiny"]
    summary = store.list_projects()[0]
    assert summary["scenes"] == [{"id": "intro", "version": 1, "nodes": 2}, {"id": "outro", "version": 1, "nodes": 1}]
    assert summary["nodes"] == 3 and summary["title"] == "Tiny"
    assert "path" not in json.dumps(summary)  # no server paths in what the API returns

    again = store.create(two_scenes())  # a derived id that is taken gets a suffix
    assert again.id == "tiny-2"
    with pytest.raises(Conflict) as info:
        store.create(two_scenes(), project_id="tiny")  # a chosen one is a 409
    assert info.value.code == "project_exists"

    meta = dict(store.load("tiny").project.meta, title="Renamed")
    updated = store.update_project("tiny", meta)
    assert updated.version == 2 and updated.project.title == "Renamed"
    assert updated.scene_versions == {"intro": 1, "outro": 1}  # project.json only: scenes untouched

    assert store.delete("tiny") == 2
    assert not store.exists("tiny") and [p["id"] for p in store.list_projects()] == ["tiny-2"]
    with pytest.raises(NotFound) as info:
        store.load("tiny")
    assert info.value.code == "project_not_found" and str(store.root) not in info.value.message
    assert not [p for p in store.root.iterdir() if p.name.startswith(".deleted-")]


def test_versions_only_grow(store: ProjectStore) -> None:
    store.create(two_scenes())
    seen_project, seen_scene = [1], [1]
    for text in ("one", "two", "three", "four"):
        scene = _scene(store, "tiny", "outro")
        scene["nodes"][0]["text"] = text
        stored = store.put_scene("tiny", "outro", scene)
        seen_project.append(stored.version)
        seen_scene.append(stored.scene_versions["outro"])
    assert seen_project == [1, 2, 3, 4, 5] and seen_scene == [1, 2, 3, 4, 5]
    # Removing a scene and writing it again never hands an old number back out.
    meta = dict(store.load("tiny").project.meta)
    intro = _scene(store, "tiny", "intro")
    intro["nodes"][1]["choices"] = [{"id": "next", "target": "a"}]
    store.update_project("tiny", meta, {"intro": intro})
    assert "outro" not in store.load("tiny").project.scenes
    recreated = store.put_scene("tiny", "outro", {"start": "z", "nodes": [{"id": "z", "end": True}]})
    assert recreated.scene_versions["outro"] == 6 and recreated.version == 7


def test_a_write_that_changes_nothing_keeps_the_version(store: ProjectStore) -> None:
    store.create(two_scenes())
    stored = store.put_scene("tiny", "intro", _scene(store, "tiny", "intro"), if_match=1)
    assert (stored.version, stored.scene_versions["intro"]) == (1, 1)
    stored = store.update_project("tiny", store.load("tiny").project.meta, if_match=1)
    assert stored.version == 1
    assert [e["version"] for e in store.history("tiny", "intro")] == [1]


def test_stale_versions_are_refused_and_nothing_is_written(store: ProjectStore) -> None:
    store.create(two_scenes())
    scene = _scene(store, "tiny", "outro")
    scene["nodes"][0]["text"] = "first"
    store.put_scene("tiny", "outro", scene, if_match=1)
    before = tree_bytes(store.root / "tiny")
    scene["nodes"][0]["text"] = "second"
    with pytest.raises(PreconditionFailed) as info:
        store.put_scene("tiny", "outro", scene, if_match=1)
    assert info.value.details == {"current_version": 2} and info.value.field == "If-Match"
    with pytest.raises(PreconditionFailed) as info:
        store.update_project("tiny", store.load("tiny").project.meta, if_match=1)
    assert info.value.details == {"current_version": 2}
    with pytest.raises(PreconditionFailed):
        store.delete("tiny", if_match=7)
    assert tree_bytes(store.root / "tiny") == before
    assert _scene(store, "tiny", "outro")["nodes"][0]["text"] == "first"


def test_parse_if_match() -> None:
    assert parse_if_match(None) is None and parse_if_match("*") is None and parse_if_match(" ") is None
    assert parse_if_match('"3"') == 3 and parse_if_match("3") == 3 and parse_if_match('W/"12"') == 12
    for bad in ('"3", "4"', "abc", "-1", '"' + "9" * 13 + '"'):
        with pytest.raises(Invalid) as info:
            parse_if_match(bad)
        assert info.value.code == "invalid_if_match" and info.value.field == "If-Match"


def test_ids_are_checked(store: ProjectStore) -> None:
    for bad in ("", "../x", ".hidden", "a/b", "x" * 101, "tiny\n"):
        with pytest.raises(Invalid):
            store.create(two_scenes(), project_id=bad)
    # A trailing newline used to pass the id pattern (`$` matches before it).
    with pytest.raises(Invalid):
        store.load("tiny\n")
    assert not store.root.exists() or not [p for p in store.root.iterdir() if not p.name.startswith(".")]


# -- history and restore ---------------------------------------------------------------------------------


def test_history_keeps_the_last_n_and_restore_brings_one_back(store: ProjectStore) -> None:
    store.create(two_scenes())
    texts = {1: "The end"}
    for version in range(2, 7):
        scene = _scene(store, "tiny", "outro")
        scene["nodes"][0]["text"] = texts[version] = f"text {version}"
        store.put_scene("tiny", "outro", scene)
    history = store.history("tiny", "outro")
    assert [e["version"] for e in history] == [6, 5, 4]  # history=3
    assert [e["current"] for e in history] == [True, False, False]
    assert all(e["nodes"] == 1 and len(e["sha256"]) == 64 and e["bytes"] > 0 for e in history)
    assert store.scene_version("tiny", "outro", 4)["nodes"][0]["text"] == "text 4"
    with pytest.raises(NotFound) as info:
        store.scene_version("tiny", "outro", 2)  # pruned
    assert info.value.code == "version_not_found"

    restored = store.restore("tiny", "outro", 4, if_match=6)
    assert restored.scene_versions["outro"] == 7  # a new version, not 4 again
    assert _scene(store, "tiny", "outro")["nodes"][0]["text"] == texts[4]
    with pytest.raises(PreconditionFailed):
        store.restore("tiny", "outro", 5, if_match=6)


def test_a_deleted_scene_can_be_restored(store: ProjectStore) -> None:
    store.create(two_scenes())
    intro = _scene(store, "tiny", "intro")
    intro["nodes"][1]["choices"] = [{"id": "next", "target": "a"}]
    store.put_scene("tiny", "intro", intro)
    store.delete_scene("tiny", "outro", if_match=1)
    assert "outro" not in store.load("tiny").project.scenes
    assert not (store.root / "tiny" / "scenes" / "outro.json").exists()
    with pytest.raises(NotFound):
        store.scene("tiny", "outro")
    history = store.history("tiny", "outro")
    assert [(e["version"], e["current"]) for e in history] == [(1, False)]
    restored = store.restore("tiny", "outro", 1)
    assert restored.scene_versions["outro"] == 2 and list(restored.project.scenes) == ["intro", "outro"]
    assert restored.validated


def test_a_hand_made_projects_deleted_scene_can_be_restored(store: ProjectStore) -> None:
    # Before: a scene never edited through the store had no history, so deleting it lost it for good.
    copy_demo(store.root / "demo")
    original = (store.root / "demo" / "scenes" / "night_train.json").read_bytes()
    platform = _scene(store, "demo", "platform")
    for node in platform["nodes"]:
        for choice in node.get("choices", []):
            if choice["target"].startswith("night_train:"):
                choice["target"] = platform["start"]
    store.put_scene("demo", "platform", platform)
    store.delete_scene("demo", "night_train")
    assert [e["version"] for e in store.history("demo", "night_train")] == [1]
    store.restore("demo", "night_train", 1)
    assert json.loads((store.root / "demo" / "scenes" / "night_train.json").read_bytes()) == json.loads(original)


# -- validated writes ------------------------------------------------------------------------------------


def _refused(store: ProjectStore, write: Any) -> Unprocessable:
    before = tree_bytes(store.root / "tiny")
    with pytest.raises(Unprocessable) as info:
        write()
    assert tree_bytes(store.root / "tiny") == before  # byte for byte, bookkeeping included
    assert info.value.code == "invalid_project"
    errors = info.value.details["errors"]
    assert errors and all(e["path"].startswith("/") and e["severity"] == "error" for e in errors)
    assert info.value.details["error_count"] == len(errors)
    return info.value


def test_writes_that_would_break_the_project_are_refused_and_change_nothing(store: ProjectStore) -> None:
    store.create(two_scenes())
    bad_target = _scene(store, "tiny", "intro")
    bad_target["nodes"][0]["choices"][0]["target"] = "nowhere"
    error = _refused(store, lambda: store.put_scene("tiny", "intro", bad_target))
    assert [(e["path"], e["code"], e["document"]) for e in error.details["errors"]] == [
        ("/nodes/0/choices/0/target", "unknown_target", "scenes/intro.json")
    ]

    across = _scene(store, "tiny", "intro")
    across["nodes"][1]["choices"][0]["target"] = "outro:missing"
    error = _refused(store, lambda: store.put_scene("tiny", "intro", across))
    assert error.details["errors"][0]["path"] == "/nodes/1/choices/0/target"

    duplicate_node = _scene(store, "tiny", "intro")
    duplicate_node["nodes"][1]["id"] = "a"
    error = _refused(store, lambda: store.put_scene("tiny", "intro", duplicate_node))
    assert any((e["path"], e["code"]) == ("/nodes/1/id", "duplicate_node") for e in error.details["errors"])

    meta = store.load("tiny").project.meta
    error = _refused(store, lambda: store.update_project("tiny", {**meta, "scenes": ["intro", "outro", "intro"]}))
    assert [(e["path"], e["code"], e["document"]) for e in error.details["errors"]] == [
        ("/scenes/2", "duplicate_scene", "project.json")
    ]

    # Deleting a scene another scene's choice jumps into would leave a dangling target.
    error = _refused(store, lambda: store.delete_scene("tiny", "outro"))
    assert error.details["errors"][0]["document"] == "scenes/intro.json"
    assert store.load("tiny").version == 1 and store.load("tiny").validated


def test_an_invalid_project_is_never_created(store: ProjectStore) -> None:
    project = two_scenes()
    project.scenes["intro"]["nodes"][0]["choices"][0]["target"] = "nowhere"
    with pytest.raises(Unprocessable) as info:
        store.create(project)
    assert info.value.details["errors"][0]["path"] == "/nodes/0/choices/0/target"
    assert store.list_projects() == [] and not store.root.exists()  # validated before anything is written


# -- the validation stamp and hand-made projects -----------------------------------------------------------


def test_a_hand_edit_invalidates_the_stamp(store: ProjectStore) -> None:
    store.create(two_scenes())
    assert store.load("tiny").validated
    path = store.root / "tiny" / "scenes" / "outro.json"
    path.write_text(path.read_text(encoding="utf-8").replace("The end", "Edited by hand"), encoding="utf-8")
    stored = store.load("tiny")
    assert not stored.validated and stored.report is None
    assert stored.version == 1  # the store did not write it
    # The next store write validates again and stamps the files it leaves.
    stored = store.update_project("tiny", dict(stored.project.meta, title="Again"))
    assert stored.validated and stored.version == 2
    (store.root / "tiny" / "project.json").write_bytes(b" " + (store.root / "tiny" / "project.json").read_bytes())
    assert not store.load("tiny").validated  # whitespace counts: the stamp is over bytes


def test_a_legacy_folder_starts_at_version_one(store: ProjectStore) -> None:
    copy_demo(store.root / "demo")
    stored = store.load("demo")
    assert stored.version == 1 and stored.scene_versions == {"platform": 1, "night_train": 1}
    assert not stored.validated and not (store.root / "demo" / ".comfyvn").exists()
    assert [p["id"] for p in store.list_projects()] == ["demo"]
    scene = _scene(store, "demo", "night_train")
    scene["title"] = "Retitled"
    stored = store.put_scene("demo", "night_train", scene, if_match=1)
    assert stored.version == 2 and stored.scene_versions == {"platform": 1, "night_train": 2} and stored.validated
    # The hand-made version 1 was kept before it was replaced, so the first edit can be undone.
    assert [e["version"] for e in store.history("demo", "night_train")] == [2, 1]
    assert store.scene_version("demo", "night_train", 1)["title"] != "Retitled"


def test_resolve_takes_a_folder_or_an_id(store: ProjectStore, tmp_path: Path) -> None:
    store.create(two_scenes())
    folder = copy_demo(tmp_path / "elsewhere")
    assert store.resolve(folder) == folder
    assert store.resolve("tiny") == store.root / "tiny"
    with pytest.raises(NotFound):
        store.resolve("no-such-thing")


# -- events ----------------------------------------------------------------------------------------------


def test_events_carry_valid_payloads(make_kernel: Any) -> None:
    import comfyvn_scenario.plugin as scenario_plugin

    kernel: Kernel = make_kernel(scenario_plugin)  # a strict bus: an undeclared or off-schema payload raises
    seen: list[Any] = []
    kernel.events.subscribe(seen.append)
    store = ProjectStore.for_kernel(kernel)
    assert store.root == kernel.paths.data / "projects"
    store.create(two_scenes())
    scene = _scene(store, "tiny", "outro")
    scene["nodes"][0]["text"] = "changed"
    store.put_scene("tiny", "outro", scene)
    intro = _scene(store, "tiny", "intro")
    intro["nodes"][1]["choices"] = [{"id": "next", "target": "a"}]
    store.update_project("tiny", store.load("tiny").project.meta, {"intro": intro})
    store.delete("tiny")
    events = [(e.event, e.payload) for e in seen if e.event.startswith("on_project_")]
    assert events == [
        (
            "on_project_created",
            {"id": "tiny", "version": 1, "scenes": [{"id": "intro", "version": 1}, {"id": "outro", "version": 1}]},
        ),
        ("on_project_updated", {"id": "tiny", "version": 2, "scenes": [{"id": "outro", "version": 2}], "removed": []}),
        (
            "on_project_updated",
            {"id": "tiny", "version": 3, "scenes": [{"id": "intro", "version": 2}], "removed": ["outro"]},
        ),
        ("on_project_deleted", {"id": "tiny", "version": 3}),
    ]
    for name, payload in events:
        spec = kernel.events.spec(name)
        assert spec is not None and spec.schema is not None
        jsonschema.Draft202012Validator(spec.schema).validate(payload)


def test_history_setting_comes_from_the_config(make_kernel: Any, runtime: Any) -> None:
    import comfyvn_scenario.plugin as scenario_plugin

    assert ProjectStore.for_kernel(make_kernel(scenario_plugin)).history_limit == 20
    runtime.config.mkdir(parents=True, exist_ok=True)
    (runtime.config / "comfyvn.json").write_text('{"projects": {"history": 5}}', encoding="utf-8")
    assert ProjectStore.for_kernel(make_kernel(scenario_plugin)).history_limit == 5
    (runtime.config / "comfyvn.json").write_text('{"projects": {"history": 0}}', encoding="utf-8")
    with pytest.raises(ComfyVNError) as info:
        ProjectStore.for_kernel(make_kernel(scenario_plugin))
    assert info.value.field == "projects.history"


# -- zips ------------------------------------------------------------------------------------------------


def _zip(entries: dict[str, bytes], *, links: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive_file:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive_file.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _project_entries() -> dict[str, bytes]:
    project = two_scenes()
    entries = {"project.json": json.dumps(project.document()).encode()}
    entries.update({f"scenes/{sid}.json": json.dumps(scene).encode() for sid, scene in project.scenes.items()})
    return entries


def _refuse_zip(store: ProjectStore, data: bytes, code: str) -> ComfyVNError:
    with pytest.raises(ComfyVNError) as info:
        store.create_from_zip(data)
    assert info.value.code == code, info.value
    assert 400 <= http_status(info.value) < 500
    assert store.list_projects() == []
    assert not [p for p in store.root.iterdir() if p.name.startswith((".unzip-", ".staging-"))]
    return info.value


def test_a_project_zip_round_trips(store: ProjectStore) -> None:
    store.create(two_scenes())
    data = store.export_zip("tiny")
    assert data == store.export_zip("tiny")
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == [
        "project.json",
        "scenes/intro.json",
        "scenes/outro.json",
    ]
    copy = store.create_from_zip(data, project_id="copy")
    assert (
        copy.project.meta == store.load("tiny").project.meta
        and copy.project.scenes == store.load("tiny").project.scenes
    )
    # A zipped folder (everything under one top folder) works too.
    nested = _zip({f"tiny/{name}": body for name, body in _project_entries().items()})
    assert store.create_from_zip(nested).project.scenes == copy.project.scenes


def test_unsafe_zips_are_refused(store: ProjectStore, tmp_path: Path) -> None:
    good = _project_entries()
    _refuse_zip(store, b"PK\x03\x04 not really a zip", "invalid_zip")
    _refuse_zip(store, b"", "invalid_zip")
    for name in ("../evil.txt", "assets/../../evil.txt", "/etc/evil.txt", "C:/evil.txt", "assets\\..\\evil.txt"):
        _refuse_zip(store, _zip({**good, name: b"evil"}), "unsafe_zip_entry")
    assert not (tmp_path / "evil.txt").exists() and not (store.root.parent / "evil.txt").exists()
    _refuse_zip(store, _zip({**good, "assets/link": b"/etc/passwd"}, links=("assets/link",)), "unsafe_zip_entry")
    _refuse_zip(store, _zip({"scenes/intro.json": good["scenes/intro.json"]}), "invalid_zip")  # no project.json
    # A scene project.json lists but the zip lacks: the upload's fault (422), not a missing resource (404).
    missing = dict(good)
    del missing["scenes/outro.json"]
    error = _refuse_zip(store, _zip(missing), "invalid_zip")
    assert isinstance(error, Unprocessable)
    # An entry that is both a file and a folder cannot be unpacked: 422, not a crash.
    _refuse_zip(store, _zip({**good, "assets/x": b"file", "assets/x/y": b"inside"}), "invalid_zip")
    # A valid zip of an invalid project: the validator's errors.
    broken = dict(good)
    broken["scenes/intro.json"] = good["scenes/intro.json"].replace(b'"target": "b"', b'"target": "nowhere"')
    error = _refuse_zip(store, _zip(broken), "invalid_project")
    assert error.details["errors"][0]["path"] == "/nodes/0/choices/0/target"


def test_zip_bombs_and_damaged_zips_are_refused(store: ProjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    good = _project_entries()
    monkeypatch.setattr(archive, "MAX_UNPACKED_BYTES", 2**20)
    bomb = _zip({**good, "assets/zeros.bin": bytes(2 * 2**20)})
    assert len(bomb) < 20_000
    error = _refuse_zip(store, bomb, "zip_too_large")
    assert isinstance(error, TooLarge)
    # The directory lies about the size: zipfile stops at the claimed size and the CRC check fails.
    raw = bytearray(_zip({**good, "assets/zeros.bin": bytes(300_000)}))
    size_at = raw.rfind(b"PK\x01\x02") + 24  # the last central entry's uncompressed size
    assert int.from_bytes(raw[size_at : size_at + 4], "little") == 300_000
    raw[size_at : size_at + 4] = (10).to_bytes(4, "little")
    _refuse_zip(store, bytes(raw), "invalid_zip")
    monkeypatch.setattr(archive, "MAX_ZIP_ENTRIES", 5)
    _refuse_zip(store, _zip({**good, **{f"assets/{i}.txt": b"x" for i in range(5)}}), "zip_too_large")
    monkeypatch.setattr(archive, "MAX_ZIP_BYTES", 100)
    _refuse_zip(store, _zip(good), "zip_too_large")


def test_an_encrypted_zip_is_refused(store: ProjectStore) -> None:
    raw = bytearray(_zip(_project_entries()))
    at = 0
    while (at := raw.find(b"PK\x01\x02", at)) != -1:  # set the "encrypted" flag in every central entry
        raw[at + 8] |= 0x1
        at += 4
    _refuse_zip(store, bytes(raw), "invalid_zip")


def test_exports_are_listed_and_not_zipped(store: ProjectStore) -> None:
    store.create(two_scenes())
    folder = store.exports_dir("tiny", "renpy")
    (folder / "game").mkdir(parents=True)
    (folder / "game" / "script.rpy").write_text("label start:\n    return\n", encoding="utf-8")
    rows = store.exports("tiny")
    assert [(r["name"], r["kind"], r["files"]) for r in rows] == [("renpy", "folder", 1)]
    assert rows[0]["bytes"] == len("label start:\n    return\n")
    assert not any(
        n.startswith(("exports/", ".comfyvn/"))
        for n in zipfile.ZipFile(io.BytesIO(store.export_zip("tiny"))).namelist()
    )
    with pytest.raises(ComfyVNError):
        store.exports_dir("tiny", "..", "..", "escape")


@given(generated=projects())
def test_store_zip_store_gives_the_same_project(generated: tuple[Any, dict[str, bytes]]) -> None:
    project, assets = generated
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = ProjectStore(root / "projects")
        stored = store.create_from_folder(write_folder(project, assets, root / "source"), project_id="original")
        data = store.export_zip("original")
        assert data == store.export_zip("original")  # byte-deterministic
        again = store.create_from_zip(data, project_id="again")
        assert again.project.document() == stored.project.document() == project.document()
        assert again.project.scenes == stored.project.scenes == project.scenes
        assert list(again.project.scenes) == list(project.scenes)
        for name, body in assets.items():
            assert (again.path / name).read_bytes() == body
        assert again.validated
        # The same project zips to the same bytes wherever it is stored.
        assert store.export_zip("again") == data
        assert load_project(again.path).scenes == project.scenes


def test_a_project_folder_listing_a_scene_twice_is_refused_not_merged(tmp_path: Path) -> None:
    folder = tmp_path / "twice"
    (folder / "scenes").mkdir(parents=True)
    (folder / "scenes" / "s.json").write_text(
        json.dumps({"id": "s", "start": "a", "nodes": [{"id": "a", "type": "dialogue", "text": "Hi", "end": True}]})
    )
    (folder / "project.json").write_text(json.dumps({"id": "twice", "title": "Twice", "scenes": ["s", "s"]}))
    store = ProjectStore(tmp_path / "projects")
    with pytest.raises(ComfyVNError) as caught:
        store.create_from_folder(folder)
    assert caught.value.code == "duplicate_scene" and caught.value.field == "scenes/1"
    assert store.list_projects() == []

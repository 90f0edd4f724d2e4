"""Mini-VN stills: deterministic (same digest and bytes for the same inputs, different for another node),
the line drawn in the text box, CJK drawn as glyphs, sizes bounded, bad input answered 4xx JSON, the flag
off answered 403 naming it, and the event a strict kernel checks."""

from __future__ import annotations

import copy
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import pytest
from comfyvn import Kernel
from comfyvn.errors import Invalid, TooLarge
from comfyvn_renpy.fonts import find_base_font
from comfyvn_renpy.gui import gui_spec
from comfyvn_scenario import ProjectStore, load_project
from comfyvn_viewer.mini import Moment, parse_size, plan_still, render_still
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageDraw, ImageFont
from starlette.testclient import TestClient

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
PLUGINS = (comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_renpy.plugin, comfyvn_viewer.plugin)
SIZE = (640, 360)


@pytest.fixture
def make_client(make_kernel: Callable[..., Kernel], http_for: Callable[[Kernel], TestClient]) -> Callable[..., Any]:
    """``make_client(**env)``: the app of a strict kernel with the demo in its store as ``demo``."""

    def factory(**env: str) -> TestClient:
        kernel = make_kernel(*PLUGINS, env=env)
        ProjectStore.for_kernel(kernel).create_from_folder(DEMO, project_id="demo")
        client = http_for(kernel)
        client.kernel = kernel  # type: ignore[attr-defined]
        return client

    return factory


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> Iterator[TestClient]:
    yield make_client()


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def _dialogue_area(image: Image.Image) -> Image.Image:
    """The text box below the name, where the line is drawn (the export's geometry at this size)."""
    spec = gui_spec(*image.size)
    top = image.height - spec.textbox_height + spec.dialogue_ypos
    return image.crop((spec.dialogue_xpos, top, spec.dialogue_xpos + spec.dialogue_width, image.height))


def test_the_same_moment_gives_the_same_digest_and_bytes(client: TestClient) -> None:
    body = {"project": "demo", "scene": "platform", "node": "alice_greets", "seed": 3}
    first = client.post("/api/viewer/mini/snapshot", json=body).json()
    assert first["cached"] is False and first["node"] == "alice_greets" and (first["width"], first["height"]) == SIZE
    png = client.get(first["thumbnail_url"]).content
    # Drawn again from nothing (cache emptied), the still is byte for byte the same.
    shutil.rmtree(client.kernel.paths.cache / "viewer")  # type: ignore[attr-defined]
    again = client.post("/api/viewer/mini/snapshot", json=body).json()
    assert again["mini_digest"] == first["mini_digest"] and again["cached"] is False
    assert client.get(again["thumbnail_url"]).content == png
    assert client.post("/api/viewer/mini/snapshot", json=body).json()["cached"] is True
    assert _png(png).size == SIZE


def test_another_node_or_size_gives_another_still(client: TestClient) -> None:
    def shot(**extra: Any) -> tuple[str, bytes]:
        answer = client.post("/api/viewer/mini/snapshot", json={"project": "demo", **extra}).json()
        return answer["mini_digest"], client.get(answer["thumbnail_url"]).content

    greets = shot(node="alice_greets")
    bags = shot(node="bags")
    large = shot(node="alice_greets", size="960x540")
    assert len({greets[0], bags[0], large[0]}) == 3
    assert len({greets[1], bags[1], large[1]}) == 3


def test_a_changed_sprite_file_changes_the_digest(tmp_path: Path) -> None:
    from comfyvn_viewer.mini import still_digest

    folder = tmp_path / "demo"
    shutil.copytree(DEMO, folder)
    project = load_project(folder)
    plan = plan_still(project, Moment(node="alice_greets"))
    before = still_digest(plan, {}, SIZE, "demo")
    assert still_digest(plan, {}, SIZE, "demo") == before
    sprite = folder / "assets/characters/alice/smile.png"
    with Image.open(sprite) as image:
        image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(sprite)
    assert still_digest(plan, {}, SIZE, "demo") != before


def test_the_line_and_the_speaker_are_drawn(tmp_path: Path) -> None:
    project = load_project(DEMO)
    plan = plan_still(project, Moment(scene="platform", node="alice_greets"))
    assert (plan.speaker, plan.text) == ("Alice", "You made it! I was starting to think you'd miss it.")
    assert [s.character for s in plan.sprites] == ["alice"]
    drawn = _png(render_still(plan, SIZE))
    silent = _png(render_still(attrs.evolve(plan, text=""), SIZE))
    # The text box region is not one colour, and it differs from the same still without its line.
    area = _dialogue_area(drawn)
    low, high = area.convert("L").getextrema()
    assert isinstance(low, int) and isinstance(high, int) and high - low > 100
    assert ImageChops.difference(area, _dialogue_area(silent)).getbbox() is not None

    # The line's light text pixels: a sentence of ~50 characters covers a visible share of the area.
    def light(image: Image.Image) -> int:
        return image.convert("L").point(lambda p: 255 if p > 180 else 0).histogram()[255]

    assert light(area) - light(_dialogue_area(silent)) > 250
    # Nothing changes above the text box but the name: the sprite and background are the same.
    spec = gui_spec(*SIZE)
    top = SIZE[1] - spec.textbox_height - spec.name_text_size
    assert ImageChops.difference(drawn.crop((0, 0, SIZE[0], top)), silent.crop((0, 0, SIZE[0], top))).getbbox() is None


def _cjk_project(tmp_path: Path, line: str) -> Any:
    folder = tmp_path / f"cjk{len(list(tmp_path.iterdir()))}"
    shutil.copytree(DEMO, folder)
    scene_file = folder / "scenes" / "platform.json"
    scene = json.loads(scene_file.read_text())
    scene["nodes"][1]["text"] = line
    scene_file.write_text(json.dumps(scene, ensure_ascii=False))
    return load_project(folder)


def test_a_cjk_line_is_drawn_as_glyphs_not_boxes(tmp_path: Path) -> None:
    cats = _png(render_still(plan_still(_cjk_project(tmp_path, "猫猫猫猫"), Moment(node="alice_greets")), SIZE))
    dogs = _png(render_still(plan_still(_cjk_project(tmp_path, "犬犬犬犬"), Moment(node="alice_greets")), SIZE))
    # Boxes ("tofu") look alike for every character; real glyphs of different characters do not.
    assert ImageChops.difference(_dialogue_area(cats), _dialogue_area(dogs)).getbbox() is not None
    # The control: a font without CJK (DejaVu Sans) draws both lines as the same boxes.
    base = find_base_font()
    assert base is not None
    font = ImageFont.truetype(str(base[0]), 24)

    def without_cjk(text: str) -> bytes:
        image = Image.new("L", (200, 40))
        ImageDraw.Draw(image).text((4, 4), text, font=font, fill=255)
        return image.tobytes()

    assert without_cjk("猫猫猫猫") == without_cjk("犬犬犬犬")


@settings(max_examples=8)
@given(
    node=st.sampled_from(["arrival", "alice_greets", "bags", "ticket_machine"]),
    width=st.integers(160, 800),
    aspect=st.sampled_from([1.0, 4 / 3, 16 / 9, 2.5]),
)
def test_a_still_is_a_function_of_its_inputs(node: str, width: int, aspect: float) -> None:
    size = (width, max(90, round(width / aspect)))
    project = load_project(DEMO)
    first = render_still(plan_still(project, Moment(node=node)), size)
    again = render_still(plan_still(copy.deepcopy(project), Moment(node=node)), size)
    assert first == again
    assert _png(first).size == size


@pytest.mark.parametrize(
    ("size", "error"),
    [("4000x3000", TooLarge), ("1921x1081", TooLarge), ("100x100", Invalid), ("390x844", Invalid), ("big", Invalid)],
)
def test_sizes_are_bounded(size: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_size(size)
    assert parse_size("1920x1080") == (1920, 1080) and parse_size(None) == SIZE


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"project": "demo", "size": "4000x3000"}, 413, "size"),
        ({"project": "demo", "size": "390x844"}, 400, "size"),
        ({"project": "demo", "node": "nowhere"}, 404, "node"),
        ({"project": "demo", "scene": "nowhere"}, 404, "scene"),
        ({"project": "demo", "pov": "nobody"}, 404, "pov"),
        ({"project": "nothing"}, 404, "project"),
        ({"project": "../etc"}, 400, "project"),
        ({"project": "demo", "seed": -1}, 400, "seed"),
        ({"project": "demo", "seed": "7"}, 400, "seed"),
        ({"project": "demo", "extra": 1}, 400, "extra"),
        ({}, 400, "project"),
    ],
)
def test_bad_input_is_answered_4xx_json(client: TestClient, body: dict[str, Any], status: int, field: str) -> None:
    answer = client.post("/api/viewer/mini/snapshot", json=body)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["field"] == field and error["code"] and "/" not in error["message"].replace("../", "")


def test_bad_thumbnail_digests(client: TestClient) -> None:
    assert client.get("/api/viewer/mini/thumbnail/not-a-digest").json()["error"]["code"] == "invalid_digest"
    assert client.get("/api/viewer/mini/thumbnail/" + "0" * 64).status_code == 404


def test_the_flag_off_refuses_every_mini_route(make_client: Callable[..., TestClient]) -> None:
    client = make_client(COMFYVN_FEATURE_ENABLE_MINI_VN="0")
    for method, path, body in (
        ("POST", "/api/viewer/mini/snapshot", {"project": "demo"}),
        ("POST", "/api/viewer/mini/refresh", {"project": "demo"}),
        ("GET", "/api/viewer/mini/thumbnail/" + "0" * 64, None),
    ):
        answer = client.request(method, path, json=body)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "feature_disabled"
        assert "enable_mini_vn" in answer.json()["error"]["message"]


def test_each_still_emits_on_thumbnail_captured(client: TestClient) -> None:
    kernel: Kernel = client.kernel  # type: ignore[attr-defined]
    seen: list[dict[str, Any]] = []
    kernel.events.subscribe(lambda env: seen.append(dict(env.payload)), events=["on_thumbnail_captured"])
    answer = client.post("/api/viewer/mini/snapshot", json={"project": "demo", "pov": "bob", "seed": 9}).json()
    assert len(seen) == 1
    assert seen[0]["mini_digest"] == answer["mini_digest"]
    assert (seen[0]["project"], seen[0]["pov"], seen[0]["seed"]) == ("demo", "bob", 9)


def test_refresh_draws_every_node_once(client: TestClient) -> None:
    from comfyvn_viewer import thumbnails

    kernel: Kernel = client.kernel  # type: ignore[attr-defined]
    loaded = thumbnails.load(kernel, "demo")
    first = thumbnails.refresh(kernel, loaded, (320, 180))
    nodes = sum(len(scene["nodes"]) for scene in loaded.project.scenes.values())
    assert first["count"] == nodes == first["drawn"]
    assert len({t["mini_digest"] for t in first["thumbnails"]}) == nodes
    second = thumbnails.refresh(kernel, loaded, (320, 180))
    assert second["drawn"] == 0
    assert [t["mini_digest"] for t in second["thumbnails"]] == [t["mini_digest"] for t in first["thumbnails"]]


def _edited_demo(tmp_path: Path, name: str, edit: Callable[[dict[str, Any], dict[str, Any]], None]) -> Any:
    """A copy of the demo with ``edit(project_json, platform_scene)`` applied, loaded."""
    folder = tmp_path / name
    shutil.copytree(DEMO, folder)
    project_file, scene_file = folder / "project.json", folder / "scenes" / "platform.json"
    project, scene = json.loads(project_file.read_text()), json.loads(scene_file.read_text())
    edit(project, scene)
    project_file.write_text(json.dumps(project))
    scene_file.write_text(json.dumps(scene))
    return load_project(folder)


def _node(scene: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in scene["nodes"] if n["id"] == node_id)


def test_a_side_portrait_is_drawn_whole_over_the_text_box(tmp_path: Path) -> None:
    # An opaque (framed) card portrait in four flat colours, so that its scaled copy is easy to predict.
    portrait = Image.new("RGB", (64, 96), (200, 40, 40))
    ImageDraw.Draw(portrait).rectangle((0, 48, 63, 95), fill=(40, 60, 210))
    ImageDraw.Draw(portrait).rectangle((32, 0, 63, 47), fill=(230, 220, 60))

    def edit(project: dict[str, Any], _scene: dict[str, Any]) -> None:
        project["characters"]["alice"]["portrait"] = "portrait.png"

    project = _edited_demo(tmp_path, "side", edit)
    portrait.save(project.root / "portrait.png")
    plan = plan_still(project, Moment(node="alice_greets"))
    assert plan.side == project.root / "portrait.png"
    size = (1280, 720)
    still = _png(render_still(plan, size))
    # The export: fitted into gui.side_image_width x gui.side_image_height (240x300 here), then
    # `add SideImage() xalign 0.0 yalign 1.0` after the text box: bottom-left corner, over the panel.
    spec = gui_spec(*size)
    zoom = min(spec.side_image_width / 64, spec.side_image_height / 96)
    face = portrait.resize((round(64 * zoom), round(96 * zoom)), Image.Resampling.LANCZOS)
    assert face.height > spec.textbox_height  # part of it lies over the text box
    box = (0, size[1] - face.height, face.width, size[1])
    assert ImageChops.difference(still.crop(box), face).getbbox() is None


def _choice_area(image: Image.Image) -> Image.Image:
    """The space above the text box where the export's choice screen stacks its buttons."""
    spec = gui_spec(*image.size)
    return image.crop((0, spec.scale(70), image.width, image.height - spec.textbox_height - spec.scale(44)))


def _menu_node(labels: list[str], text: str) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """An edit that makes ``arrival`` a choice node (as an import with --swipes-as-choices makes them)."""

    def edit(_project: dict[str, Any], scene: dict[str, Any]) -> None:
        node = _node(scene, "arrival")
        node.update(type="choice", text=text)
        node["choices"] = [{"id": f"c{i}", "label": label, "target": "alice_greets"} for i, label in enumerate(labels)]

    return edit


def test_a_choice_node_shows_its_menu(tmp_path: Path) -> None:
    swipes = _edited_demo(tmp_path, "a", _menu_node(["The ferry bumps against the pier", "Rain on the roof"], ""))
    others = _edited_demo(tmp_path, "b", _menu_node(["**Run** for the last train", "Wait for morning"], ""))
    none = _edited_demo(tmp_path, "c", _menu_node([], ""))
    plan = plan_still(swipes, Moment(node="arrival"))
    assert plan.choices == ("The ferry bumps against the pier", "Rain on the roof") and plan.text == ""
    drawn = _png(render_still(plan, SIZE))
    area = _choice_area(drawn)
    # Light label text on the dark buttons: the area is far from one colour, and the labels' light pixels
    # are there (the bare backdrop has none this light).
    low, high = area.convert("L").getextrema()
    assert isinstance(low, int) and isinstance(high, int) and high - low > 120
    bare = _choice_area(_png(render_still(plan_still(none, Moment(node="arrival")), SIZE)))
    bare_high = bare.convert("L").getextrema()[1]
    assert isinstance(bare_high, int) and bare_high < 120
    # Other labels give other pixels there.
    other = _choice_area(_png(render_still(plan_still(others, Moment(node="arrival")), SIZE)))
    assert ImageChops.difference(area, other).getbbox() is not None
    assert render_still(plan, SIZE) == render_still(plan_still(copy.deepcopy(swipes), Moment(node="arrival")), SIZE)


def test_a_menu_keeps_its_caption_in_the_text_box(tmp_path: Path) -> None:
    project = _edited_demo(tmp_path, "a", _menu_node(["Go", "Stay"], "Which way?"))
    plan = plan_still(project, Moment(node="arrival"))
    with_caption = _png(render_still(plan, SIZE))
    without = _png(render_still(attrs.evolve(plan, text=""), SIZE))
    assert ImageChops.difference(_dialogue_area(with_caption), _dialogue_area(without)).getbbox() is not None
    assert _choice_area(with_caption) == _choice_area(without)


def test_only_a_real_menu_is_drawn() -> None:
    project = load_project(DEMO)
    # One unlabelled choice is a jump in the export; a labelled one is a menu of one.
    assert plan_still(project, Moment(node="alice_window")).choices == ()
    assert plan_still(project, Moment(node="arrival")).choices == ("Look for Alice",)
    assert plan_still(project, Moment(node="alice_greets")).choices == (
        "Help Alice with her bags",
        "Head straight for the ticket machine",
    )

"""The web player in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, through Selenium)
against the real app on real hypercorn on loopback: the demo plays to an ending by clicks and by the keyboard
alone, shows the project's lines and speakers, visits the Python runner's nodes for the same seed and choices,
survives save -> reload -> load, fits a phone, and draws CJK text.

One browser and one server for the module: starting Chromium costs more than most tests here.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import comfyvn_renpy.plugin
import comfyvn_scenario.plugin
import comfyvn_server.plugin
import comfyvn_viewer.plugin
import httpx
import pytest
from comfyvn import RuntimePaths, create_kernel
from comfyvn_renpy.text import parse_markdown
from comfyvn_scenario.project import load_project
from comfyvn_scenario.runner import compile_scenario, initial_state, step
from comfyvn_scenario.store import ProjectStore
from live_server import live_server
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from .stories import CJK_LINES, LONG, SIDE_LINES, choices_project, cjk_project, long_project, side_project

DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
Policy = Callable[[int, list[str]], str | None]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The studio app with the viewer on real hypercorn; the demo stored as ``demo``, a CJK project as ``cjk``."""
    root = tmp_path_factory.mktemp("player")
    kernel = create_kernel(
        plugins=[comfyvn_server.plugin, comfyvn_scenario.plugin, comfyvn_renpy.plugin, comfyvn_viewer.plugin],
        paths=RuntimePaths.under(root / "runtime"),
        env={},
        strict=True,
    )
    store = ProjectStore.for_kernel(kernel)
    store.create_from_folder(DEMO, project_id="demo")
    store.create_from_folder(cjk_project(root / "cjk"), project_id="cjk")
    store.create_from_folder(long_project(root / "long"), project_id="long")
    store.create_from_folder(side_project(root / "side"), project_id="side")
    store.create_from_folder(choices_project(root / "choices"), project_id="choices")
    with live_server(kernel) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), (
        "Chromium is not installed: `apt-get install -y chromium chromium-driver` (the noxfile does it)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Sound may start without a gesture here, so a test can see the page's <audio> elements play (the page
    # itself still waits for the reader's first interaction).
    flags = ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800", "--lang=en-US")
    for arg in (*flags, "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def desktop(browser: WebDriver) -> WebDriver:
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    )
    return browser


# -- driving the page ------------------------------------------------------------------------------------


def _state(driver: WebDriver) -> dict[str, Any] | None:
    result: dict[str, Any] | None = driver.execute_script("return window.comfyvn && window.comfyvn.state();")
    return result


def _settled(driver: WebDriver, after: int = 0) -> dict[str, Any]:
    """The page's state once it has shown something newer than revision ``after`` and is not waiting."""

    def ready(d: WebDriver) -> dict[str, Any] | Literal[False]:
        state = _state(d)
        return state if state and not state["busy"] and state["rev"] > after else False

    try:
        return WebDriverWait(driver, 15, poll_frequency=0.03).until(ready)
    except TimeoutException:
        toast = driver.find_element(By.ID, "toast").text
        raise AssertionError(f"the player did not move on (toast: {toast!r})") from None


def _open(driver: WebDriver, base: str, project: str, *, clear: bool = True) -> None:
    driver.get(f"{base}/play/{project}")
    if clear:
        driver.execute_script("localStorage.clear();")
    WebDriverWait(driver, 15).until(lambda d: d.find_element(By.ID, "player").get_attribute("data-ready") == "true")


def _start(driver: WebDriver, *, seed: int = 0, pov: str | None = None) -> dict[str, Any]:
    options = driver.find_element(By.CSS_SELECTOR, "details.title-options")
    if not options.get_attribute("open"):  # the seed is folded away from players: open it as a writer does
        options.find_element(By.TAG_NAME, "summary").click()
    seed_box = driver.find_element(By.ID, "title-seed")
    seed_box.clear()
    seed_box.send_keys(str(seed))
    if pov is not None:
        driver.execute_script("document.getElementById('title-pov').value = arguments[0];", pov)
    driver.find_element(By.ID, "btn-start").click()
    return _settled(driver)


def _shown(driver: WebDriver) -> tuple[str, str]:
    return (
        driver.find_element(By.CSS_SELECTOR, '[data-cvn="speaker"]').text,
        driver.find_element(By.CSS_SELECTOR, '[data-cvn="text"]').text,
    )


def _ended(driver: WebDriver) -> bool:
    return driver.find_element(By.ID, "ending").is_displayed()


def _play(
    driver: WebDriver,
    policy: Policy,
    *,
    reader: list[tuple[str, str, str]] | None = None,
    each: Callable[[], None] | None = None,
) -> list[str | None]:
    """Click through to the ending: choices by ``policy(step, ids)``, everything else by clicking the stage.
    Returns what the page sent at each step (the choice clicked, None where the runner drew: an advance on
    a random event or through a textless jump); ``reader`` collects the (node, speaker, text) shown, and
    ``each`` is called on every page shown (the ending included)."""
    state = _settled(driver)
    taken: list[str | None] = []
    for _ in range(200):
        if reader is not None:
            reader.append((state["node"], *_shown(driver)))
        if each is not None:
            each()
        if _ended(driver):
            moves: list[str | None] = state["moves"]
            assert [m for m in moves if m is not None] == taken
            return moves
        buttons = driver.find_elements(By.CSS_SELECTOR, '[data-cvn="choice"]')
        last_page = state["page"] >= max(state["pages"] - 1, 0)
        if buttons:
            assert state["mode"] == "menu" and last_page
            ids = [str(b.get_attribute("data-choice-id")) for b in buttons]
            pick = policy(len(taken), ids)
            assert pick in ids
            taken.append(pick)
            buttons[ids.index(pick)].click()
        else:
            driver.find_element(By.ID, "stage").click()
        if last_page and state["mode"] == "end":
            WebDriverWait(driver, 5).until(_ended)
            state = _settled(driver)
            continue
        state = _settled(driver, state["rev"])
    raise AssertionError("no ending after 200 moves")


def _runner_trail(project_dir: Path, seed: int, pov: str, taken: list[str | None]) -> list[str]:
    """The nodes the Python runner visits for ``seed``, ``pov`` and the choices taken (None: a draw)."""
    scenario = compile_scenario(load_project(project_dir))
    result = initial_state(scenario, seed=seed, pov=pov)
    trail = [result.state.node_id]
    for choice in taken:
        result = step(scenario, result.state, choice)
        trail.append(result.state.node_id)
    assert result.finished
    return trail


def _nodes(project_dir: Path) -> dict[str, dict[str, Any]]:
    project = load_project(project_dir)
    return {node["id"]: node for scene in project.scenes.values() for node in scene["nodes"]}


def _first(step_index: int, ids: list[str]) -> str:
    return ids[0]


# -- must-holds ------------------------------------------------------------------------------------------


def test_the_demo_plays_to_an_ending_by_clicking_and_shows_the_projects_lines(
    desktop: WebDriver, base_url: str
) -> None:
    _open(desktop, base_url, "demo")
    assert desktop.find_element(By.ID, "title-text").text == "The Last Train"
    _start(desktop, seed=3)
    seen: list[tuple[str, str, str]] = []
    _play(desktop, lambda i, ids: ids[-1], reader=seen)
    nodes = _nodes(DEMO)
    characters = load_project(DEMO).characters
    final = _state(desktop)
    assert final is not None and nodes[final["node"]].get("end") is True
    # Every line shown is the node's text (its pages in order), under the speaker's name (none for narration).
    texts: dict[str, str] = {}
    for node_id, speaker, text in seen:
        node = nodes[node_id]
        talking = node.get("type") != "narration" and node.get("speaker")
        expected_speaker = characters[node["speaker"]]["name"] if talking else ""
        assert speaker == expected_speaker, node_id
        if text and not texts.get(node_id, "").endswith(text):
            texts[node_id] = f"{texts.get(node_id, '')} {text}".strip()
    assert texts, "no line was shown"
    for node_id, text in texts.items():
        assert " ".join(text.split()) == " ".join(parse_markdown(nodes[node_id]["text"]).text.split()), node_id
    # The stage shows the demo's own pictures, served by the player.
    picture = desktop.find_element(By.ID, "background").get_attribute("src") or ""
    assert httpx.get(picture).headers["content-type"] == "image/png"


@pytest.mark.parametrize("pov", ["alice", "bob"])
def test_the_page_visits_the_nodes_the_python_runner_visits(desktop: WebDriver, base_url: str, pov: str) -> None:
    seeds = (7, 1_456, 3_900_000_000)  # the ticket machine: prints, jams, prints (first draws .24, .82, .70)

    def policy(step_index: int, ids: list[str]) -> str:
        return ids[(step_index * 7 + 3) % len(ids)]

    trails = []
    for seed in seeds:
        _open(desktop, base_url, "demo")
        _start(desktop, seed=seed, pov=pov)
        taken = _play(desktop, policy)
        state = _state(desktop)
        assert state is not None and state["pov"] == pov and state["seed"] == seed
        expected = _runner_trail(DEMO, seed, pov, taken)
        assert state["trail"] == expected
        trails.append(tuple(expected))
    # The seeds were picked so the demo's weighted ticket machine goes both ways: the draws mattered.
    assert len(set(trails)) > 1


def test_save_reload_and_load_restore_the_node_and_variables(desktop: WebDriver, base_url: str) -> None:
    _open(desktop, base_url, "demo")
    state = _start(desktop, seed=5)
    desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="look_around"]').click()
    state = _settled(desktop, state["rev"])
    desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="help_bags"]').click()
    saved = _settled(desktop, state["rev"])
    assert saved["node"] == "bags" and saved["variables"]["trust"]["alice"] == 1
    desktop.find_element(By.ID, "btn-save").click()
    desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="continue"]').click()  # on, past the save
    moved = _settled(desktop, saved["rev"])
    assert moved["node"] != "bags"

    _open(desktop, base_url, "demo", clear=False)
    assert _state(desktop) is None
    desktop.find_element(By.ID, "btn-continue").click()
    loaded = _settled(desktop)
    assert (loaded["node"], loaded["variables"], loaded["seed"], loaded["pov"]) == (
        saved["node"],
        saved["variables"],
        saved["seed"],
        saved["pov"],
    )
    assert _shown(desktop) == ("Alice", "Thanks. You really didn't have to.")


def test_keyboard_only_play_reaches_an_ending(desktop: WebDriver, base_url: str) -> None:
    _open(desktop, base_url, "demo")
    active = desktop.switch_to.active_element
    assert active.get_attribute("id") == "btn-start"  # the title screen starts focused on Start
    active.send_keys(Keys.ENTER)
    state = _settled(desktop)
    for _ in range(120):
        if _ended(desktop):
            break
        focused = desktop.switch_to.active_element
        if state["mode"] == "menu" and state["page"] >= max(state["pages"] - 1, 0):
            # The first choice has the focus; the down arrow moves to the next (wrapping), Enter takes it.
            assert focused.get_attribute("data-cvn") == "choice"
            focused.send_keys(Keys.ARROW_DOWN)
            chosen = desktop.switch_to.active_element
            assert chosen.get_attribute("data-cvn") == "choice"
            chosen.send_keys(Keys.ENTER)
        else:
            focused.send_keys(Keys.SPACE)
        if state["mode"] == "end" and state["page"] >= max(state["pages"] - 1, 0):
            WebDriverWait(desktop, 5).until(_ended)
            break
        state = _settled(desktop, state["rev"])
    assert _ended(desktop)
    assert desktop.switch_to.active_element.get_attribute("id") == "btn-again"


def test_a_phone_shows_the_whole_stage_and_a_readable_text_box(
    browser: WebDriver, base_url: str, tmp_path: Path
) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    )
    _open(browser, base_url, "demo")
    state = _start(browser, seed=0)
    browser.find_element(By.CSS_SELECTOR, '[data-choice-id="look_around"]').click()
    _settled(browser, state["rev"])  # Alice speaks, on stage, with two choices under her line
    box = browser.execute_script(
        """
        const r = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
        const text = document.getElementById('text');
        return {vw: innerWidth, vh: innerHeight, bg: r('background'), box: r('textbox'), choices: r('choices'),
                size: parseFloat(getComputedStyle(text).fontSize),
                clipped: text.scrollHeight > text.clientHeight + 1 || text.scrollWidth > text.clientWidth + 1};
        """
    )
    assert (box["vw"], box["vh"]) == (390, 844)
    background, textbox = box["bg"], box["box"]
    # The whole picture: full width, 16:9, on screen; the text box below it, on screen, not over it.
    assert background["left"] >= 0 and background["right"] <= 390 and background["width"] >= 380
    assert background["top"] >= 0 and background["bottom"] <= 844
    assert abs(background["width"] * 9 / 16 - background["height"]) <= 2
    assert textbox["top"] >= background["bottom"] - 1 and textbox["bottom"] <= 844
    assert textbox["left"] >= 0 and textbox["right"] <= 390
    assert box["size"] >= 15 and not box["clipped"]
    assert box["choices"]["bottom"] <= 844
    browser.save_screenshot(str(tmp_path / "phone.png"))
    with Image.open(tmp_path / "phone.png") as shot:
        assert shot.size == (780, 1688)


def test_a_phone_shows_a_menu_of_long_choices_whole(browser: WebDriver, base_url: str, tmp_path: Path) -> None:
    """Choices as long as a chat's swipes: while the menu is up, the text box keeps only the room its caption
    needs, so every choice shows whole without scrolling (a fixed-height box left them a scrolling strip)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    )
    _open(browser, base_url, "choices")
    _start(browser, seed=0)
    WebDriverWait(browser, 5).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-cvn="choice"]')) == 3)
    geometry = browser.execute_script(
        """
        const r = (el) => el.getBoundingClientRect().toJSON();
        const list = document.getElementById('choices');
        return {box: r(document.getElementById('textbox')), list: r(list),
                scrolls: list.scrollHeight > list.clientHeight + 1,
                buttons: [...list.querySelectorAll('button')].map(r),
                controls: r(document.getElementById('controls'))};
        """
    )
    browser.save_screenshot(str(tmp_path / "menu.png"))
    assert browser.find_element(By.ID, "text").text == "What happens next?"
    assert not geometry["scrolls"]
    for button in geometry["buttons"]:
        assert geometry["list"]["top"] - 1 <= button["top"] and button["bottom"] <= geometry["list"]["bottom"] + 1
        assert button["bottom"] <= geometry["controls"]["top"] + 1
    assert geometry["box"]["bottom"] <= geometry["buttons"][0]["top"]
    # Chosen, the story goes on with the text box back at its reading height.
    browser.find_element(By.CSS_SELECTOR, '[data-choice-id="c2"]').click()
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "text").text == "And so the day went.")
    height = browser.execute_script("return document.getElementById('textbox').getBoundingClientRect().height")
    assert height >= 9 * 16 - 1  # clamp(9rem, 30vh, 16rem)


def _ink(png: bytes) -> tuple[int, Image.Image]:
    """Pixels clearly brighter than the text box's dark panel (the light text), and the picture."""
    image = Image.open(io.BytesIO(png)).convert("L")
    return sum(image.histogram()[129:]), image


def test_a_cjk_project_draws_its_text(desktop: WebDriver, base_url: str) -> None:
    _open(desktop, base_url, "cjk")
    assert desktop.find_element(By.ID, "title-text").text == "夜行列車"
    state = _start(desktop)
    assert _shown(desktop) == ("花子", CJK_LINES[0])
    first_ink, first = _ink(desktop.find_element(By.ID, "text").screenshot_as_png)
    desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="go"]').click()
    _settled(desktop, state["rev"])
    assert _shown(desktop) == ("", CJK_LINES[1])
    second_ink, second = _ink(desktop.find_element(By.ID, "text").screenshot_as_png)
    # Glyphs drawn: plenty of ink for ~20 characters, and two different lines look different (a font without
    # the characters draws the same empty box for every one of them).
    assert first_ink > 400 and second_ink > 400
    width = min(first.width, second.width)
    height = min(first.height, second.height)
    crop = (0, 0, width, height)
    assert first.crop(crop).tobytes() != second.crop(crop).tobytes()


def test_a_share_link_opens_the_player_in_the_browser(desktop: WebDriver, base_url: str) -> None:
    issued = httpx.post(f"{base_url}/api/viewer/share", json={"project": "demo", "ttl": 600}).json()
    desktop.get(base_url + issued["url"])
    desktop.execute_script("localStorage.clear();")
    WebDriverWait(desktop, 15).until(lambda d: d.find_element(By.ID, "player").get_attribute("data-ready") == "true")
    assert desktop.find_element(By.ID, "title-text").text == "The Last Train"
    state = _start(desktop, seed=2)
    assert state["node"] == "arrival"
    # The picture comes through the share link, and it loads (waited for: the browser fetches it after the frame).
    src = desktop.find_element(By.ID, "background").get_attribute("src") or ""
    assert src.startswith(base_url + issued["url"] + "asset/")
    WebDriverWait(desktop, 10).until(
        lambda d: d.execute_script(
            "const i = document.getElementById('background'); return i.complete && i.naturalWidth > 0;"
        )
    )


def _to_ticket_machine(driver: WebDriver, base: str) -> dict[str, Any]:
    _open(driver, base, "demo")
    state = _start(driver, seed=7)
    for choice in ("look_around", "go_machine"):
        driver.find_element(By.CSS_SELECTOR, f'[data-choice-id="{choice}"]').click()
        state = _settled(driver, state["rev"])
    assert state["node"] == "ticket_machine" and state["mode"] == "draw"
    return state


def test_backlog_skip_and_auto_forward(desktop: WebDriver, base_url: str) -> None:
    state = _to_ticket_machine(desktop, base_url)
    desktop.find_element(By.TAG_NAME, "body").send_keys("b")
    entries = [li.text for li in desktop.find_elements(By.CSS_SELECTOR, "#backlog-list li")]
    nodes = _nodes(DEMO)
    assert (
        len(entries) == 3 and entries[0] == nodes["arrival"]["text"] and entries[2] == nodes["ticket_machine"]["text"]
    )
    who, line = desktop.find_elements(By.CSS_SELECTOR, "#backlog-list li:nth-child(2) span")
    assert (who.text, line.text) == ("Alice", nodes["alice_greets"]["text"])
    desktop.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert not desktop.find_element(By.ID, "backlog").is_displayed()
    # Skip runs on through draws and pages and stops at the next menu, switching itself off.
    desktop.find_element(By.TAG_NAME, "body").send_keys("s")
    state = _settled(desktop, state["rev"])
    assert state["mode"] == "menu" and state["node"] in ("ticket_ok", "ticket_jam")
    assert desktop.find_element(By.ID, "btn-skip").get_attribute("aria-pressed") == "false"
    # Auto-forward moves on by itself after the line has had time to be read, and stops at a menu.
    state = _to_ticket_machine(desktop, base_url)
    desktop.find_element(By.TAG_NAME, "body").send_keys("a")
    assert desktop.find_element(By.ID, "btn-auto").get_attribute("aria-pressed") == "true"
    time.sleep(0.5)
    assert _state(desktop)["node"] == "ticket_machine"  # type: ignore[index]
    state = _settled(desktop, state["rev"])
    assert state["node"] in ("ticket_ok", "ticket_jam")
    assert desktop.find_element(By.ID, "btn-auto").get_attribute("aria-pressed") == "false"


def test_a_long_line_is_read_page_by_page(desktop: WebDriver, base_url: str) -> None:
    pages = httpx.post(f"{base_url}/api/viewer/play/long/start", json={}).json()["node"]["pages"]
    assert len(pages) >= 2
    _open(desktop, base_url, "long")
    state = _start(desktop)
    shown: list[str] = []
    styled: dict[str, list[str]] = {"b": [], "i": []}
    for index, runs in enumerate(pages):
        assert state["page"] == index
        text = desktop.find_element(By.CSS_SELECTOR, '[data-cvn="text"]')
        shown.append(text.text)
        for tag, found in styled.items():
            found += [e.text for e in desktop.find_elements(By.CSS_SELECTOR, f"#text {tag}")]
        assert text.text == "".join(part for part, _style in runs)
        if index + 1 < len(pages):
            desktop.find_element(By.ID, "stage").click()
            state = _settled(desktop, state["rev"])
    # Markdown arrives as elements, never as markup characters: **twice** is bold, *hurried* italic.
    assert styled == {"b": ["twice"], "i": ["hurried"]}
    assert " ".join(" ".join(shown).split()) == " ".join(parse_markdown(LONG).text.split())
    desktop.find_element(By.ID, "stage").click()
    WebDriverWait(desktop, 5).until(_ended)


def test_the_side_image_shows_beside_the_text_box_on_its_characters_lines(
    desktop: WebDriver, base_url: str, tmp_path: Path
) -> None:
    _open(desktop, base_url, "side")
    state = _start(desktop)
    names = {"moth": "Moth", "rook": "Rook"}
    for node_id, speaker, side in SIDE_LINES:
        assert state["node"] == node_id
        assert _shown(desktop)[0] == names.get(speaker or "", "")
        picture = desktop.find_element(By.ID, "side")
        if side is None:
            assert not picture.is_displayed(), node_id
        else:
            assert picture.is_displayed(), node_id
            src = picture.get_attribute("src") or ""
            # The export's file for that picture (images/characters/<tag>_<expression or "portrait">).
            assert src == f"{base_url}/api/viewer/play/side/asset/images/characters/{side}"
            WebDriverWait(desktop, 10).until(
                lambda d: d.execute_script("const i = document.getElementById('side'); return i.naturalWidth > 0;")
            )
            box = desktop.execute_script(
                """
                const r = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
                return {side: r('side'), box: r('textbox'), text: r('text')};
                """
            )
            # Inside the text box, on its left, the line beside it (not under it).
            assert box["box"]["left"] <= box["side"]["left"] and box["side"]["right"] <= box["text"]["left"]
            assert box["box"]["top"] <= box["side"]["top"] and box["side"]["bottom"] <= box["box"]["bottom"]
            assert box["side"]["width"] > 40
            if node_id == "moth_glad":
                desktop.save_screenshot(str(tmp_path / "side.png"))
        if node_id != SIDE_LINES[-1][0]:
            desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="on"]').click()
            state = _settled(desktop, state["rev"])


def _sound(driver: WebDriver) -> dict[str, Any]:
    result: dict[str, Any] = driver.execute_script("return window.comfyvn.sound();")
    return result


def _playing(driver: WebDriver, which: str, dest: str) -> dict[str, Any]:
    """Waits until the ``music`` or ``voice`` element plays the export's file ``dest`` and returns it."""
    want = f"/api/viewer/play/demo/asset/{dest}"
    try:
        return WebDriverWait(driver, 10, poll_frequency=0.05).until(
            lambda d: (m := _sound(d)[which])["src"] == want and not m["paused"] and m
        )
    except TimeoutException:
        raise AssertionError(f"{which} is not playing {dest}: {_sound(driver)[which]}") from None


def test_the_page_plays_the_music_effects_and_voice_the_export_plays(desktop: WebDriver, base_url: str) -> None:
    _open(desktop, base_url, "demo")
    assert _sound(desktop)["music"]["src"] is None  # nothing before the reader's first interaction
    state = _start(desktop, seed=7)
    music = _playing(desktop, "music", "audio/station_hum.wav")  # play music 'audio/station_hum.wav' ... loop
    assert music["loop"] is True and not music["muted"]
    # The volume is a slider the keyboard moves; the setting is kept in the browser's storage.
    desktop.find_element(By.ID, "volume").send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert _sound(desktop)["volume"] == pytest.approx(0.7)
    WebDriverWait(desktop, 5).until(lambda d: _sound(d)["music"]["volume"] == pytest.approx(0.6 * 0.7))  # faded in
    desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="look_around"]').click()
    state = _settled(desktop, state["rev"])
    _playing(desktop, "voice", "voice/alice_greets.wav")  # voice 'voice/alice_greets.wav'
    desktop.find_element(By.CSS_SELECTOR, '[data-choice-id="go_machine"]').click()
    state = _settled(desktop, state["rev"])
    heard = _sound(desktop)
    assert heard["voice"]["src"] is None  # the voice ends with its line
    assert [s["src"] for s in heard["sounds"]] == ["/api/viewer/play/demo/asset/audio/coins.wav"]  # play audio
    assert heard["music"]["src"] == "/api/viewer/play/demo/asset/audio/station_hum.wav"  # no statement: it goes on
    # M mutes every channel; the setting survives a reload.
    desktop.find_element(By.TAG_NAME, "body").send_keys("m")
    heard = _sound(desktop)
    assert heard["muted"] and heard["music"]["muted"] and all(s["muted"] for s in heard["sounds"])
    _open(desktop, base_url, "demo", clear=False)
    assert desktop.find_element(By.ID, "btn-mute").get_attribute("aria-pressed") == "true"
    assert (_sound(desktop)["volume"], _sound(desktop)["muted"]) == (pytest.approx(0.7), True)
    # A node's music changes the track (the ending with Alice: play music 'audio/dawn.wav'); the one where
    # the train leaves without you stops it (stop music fadeout 3.0).
    _start(desktop, seed=7)
    desktop.find_element(By.ID, "btn-mute").click()
    assert _sound(desktop)["muted"] is False
    _play(desktop, _first)
    assert _state(desktop)["node"] == "ending_friends"  # type: ignore[index]
    _playing(desktop, "music", "audio/dawn.wav")
    desktop.find_element(By.ID, "btn-again").click()
    assert _sound(desktop)["music"]["src"] is None  # back on the title screen: silence
    _start(desktop, seed=1_456)
    _play(desktop, lambda i, ids: ids[-1])
    assert _state(desktop)["node"] == "left_behind"  # type: ignore[index]
    WebDriverWait(desktop, 8).until(lambda d: _sound(d)["music"]["src"] is None and _sound(d)["music"]["paused"])
    desktop.execute_script("localStorage.clear();")


# -- the review's defects ----------------------------------------------------------------------------------


def test_the_backlog_is_opaque_and_above_the_choices(desktop: WebDriver, base_url: str) -> None:
    _open(desktop, base_url, "demo")
    _start(desktop, seed=0)
    choice = desktop.find_element(By.CSS_SELECTOR, '[data-cvn="choice"]')
    assert choice.is_displayed()
    desktop.find_element(By.TAG_NAME, "body").send_keys("b")
    assert desktop.find_element(By.ID, "backlog").is_displayed()
    seen = desktop.execute_script(
        """
        const c = document.querySelector('[data-cvn="choice"]').getBoundingClientRect();
        const x = c.left + c.width / 2, y = c.top + c.height / 2;
        const log = document.getElementById('backlog');
        const rows = document.getElementById('backlog-list').getBoundingClientRect();
        return {top: document.elementFromPoint(x, y).closest('#backlog') !== null, rect: c.toJSON(),
                rows: rows.bottom, bg: getComputedStyle(log).backgroundColor};
        """
    )
    assert seen["top"], "the backlog is not on top of the choices"
    assert seen["bg"] == "rgb(7, 8, 13)"  # no alpha: opaque
    # The screen where the choice buttons lie (no log row there): one flat colour, no label showing through.
    rect = seen["rect"]
    assert seen["rows"] < rect["top"]
    with Image.open(io.BytesIO(desktop.get_screenshot_as_png())) as shot:
        box = (int(rect["left"]), int(rect["top"]), int(rect["right"]), int(rect["bottom"]))
        colours = shot.convert("RGB").crop(box).getcolors(maxcolors=4096) or []
    assert len(colours) == 1 and colours[0][1] == (7, 8, 13), colours[:5]


def test_at_the_end_the_backlog_rereads_the_last_lines_and_returns_to_the_end(
    desktop: WebDriver, base_url: str
) -> None:
    _open(desktop, base_url, "demo")
    _start(desktop, seed=7)
    _play(desktop, _first)
    final = _state(desktop)
    assert final is not None and final["node"] == "ending_friends"
    last = " ".join(parse_markdown(_nodes(DEMO)["ending_friends"]["text"]).text.split())
    backlog, ending = desktop.find_element(By.ID, "backlog"), desktop.find_element(By.ID, "ending")

    def rows() -> list[str]:  # each row's line (its last span; a speaker's name is the first)
        spans = "#backlog-list li > span:last-child"
        return [" ".join(span.text.split()) for span in desktop.find_elements(By.CSS_SELECTOR, spans)]

    desktop.find_element(By.ID, "btn-back").click()  # the menu's Log button is not covered by the end screen
    assert backlog.is_displayed() and rows()[-1] and last.endswith(rows()[-1])
    desktop.switch_to.active_element.send_keys(Keys.ESCAPE)
    assert not backlog.is_displayed() and ending.is_displayed()
    assert desktop.switch_to.active_element.get_attribute("id") == "btn-again"
    desktop.switch_to.active_element.send_keys("b")  # the key works at the end too
    assert backlog.is_displayed() and len(rows()) > 1
    desktop.find_element(By.ID, "btn-backlog-close").click()
    assert not backlog.is_displayed() and ending.is_displayed()


def test_on_a_phone_the_text_box_and_the_menu_stay_put_from_line_to_line(browser: WebDriver, base_url: str) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
    )
    _open(browser, base_url, "demo")
    _start(browser, seed=0)
    seen: list[dict[str, Any]] = []

    def measure() -> None:
        seen.append(
            browser.execute_script(
                """
                const r = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
                const box = document.getElementById('textbox');
                return {box: r('textbox'), menu: r('controls'), choices: r('choices'), bg: r('background'),
                        fits: box.scrollHeight <= box.clientHeight + 1, node: window.comfyvn.state().node,
                        choosing: document.getElementById('choices').children.length > 0};
                """
            )
        )

    _play(browser, lambda i, ids: ids[-1], each=measure)
    reading = [m for m in seen if not m["choosing"]]
    assert len(seen) > 5 and 3 <= len(reading) < len(seen)  # lines, and menus
    # The box never moves; it keeps one height for reading. While a menu is up it only shrinks to what its
    # text needs, leaving the choices the room (see test_a_phone_shows_a_menu_of_long_choices_whole).
    assert {round(m["box"]["top"]) for m in seen} == {round(seen[0]["box"]["top"])}
    assert {round(m["box"]["height"]) for m in reading} == {round(reading[0]["box"]["height"])}
    assert all(m["box"]["height"] <= reading[0]["box"]["height"] + 1 for m in seen)
    assert len({round(m["menu"]["top"]) for m in seen}) == 1, [round(m["menu"]["top"]) for m in seen]
    for m in seen:
        assert m["fits"], m["node"]  # every line of the demo fits the text box: no scrolling to read
        assert m["box"]["top"] >= m["bg"]["bottom"] - 1 and m["box"]["height"] >= (80 if m["choosing"] else 140)
        assert m["choices"]["bottom"] <= m["menu"]["top"] + 1
        # The menu sits at the bottom of the screen, where thumbs are, not in the middle.
        assert 844 - 2 <= m["menu"]["bottom"] <= 844


def test_the_title_screen_hides_the_game_menu_and_the_page_needs_no_favicon_request(
    desktop: WebDriver, base_url: str
) -> None:
    _open(desktop, base_url, "demo")
    hidden = ("controls", "ctc", "textbox")
    assert not any(desktop.find_element(By.ID, i).is_displayed() for i in hidden)
    icon = desktop.execute_script("const l = document.querySelector('link[rel~=icon]'); return l && l.href;")
    assert icon and icon.startswith("data:")  # no /favicon.ico request, so no 404 in the console
    _start(desktop, seed=0)
    assert desktop.find_element(By.ID, "controls").is_displayed()
    assert desktop.find_element(By.ID, "textbox").is_displayed()
    desktop.find_element(By.ID, "btn-title").click()
    assert desktop.find_element(By.ID, "title").is_displayed()
    assert not any(desktop.find_element(By.ID, i).is_displayed() for i in hidden)

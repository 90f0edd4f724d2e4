"""The import's fast lane (`comfyvn_roleplay.lane`) writes exactly what the general way writes.

Chats are generated from the pieces that decide which way a message goes — flags, names, dates,
`extra`, swipes, avatars, quotes, macros, OOC markers, markup, odd whitespace, integers beyond 64
bits — and imported twice into the same folder, with the lane and without it; every file must be
the same byte for byte, and so must the stats and the warnings. Where the lane is compiled (the
plugin's setup.py), the source module is checked too: both must be right.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import comfyvn_roleplay.lane
import comfyvn_roleplay.st_chat
import pytest
from comfyvn_roleplay import importer
from comfyvn_roleplay.convert import ImportOptions, SceneBuilder
from comfyvn_roleplay.importer import RawUpload, import_chat
from hypothesis import given, settings
from hypothesis import strategies as st

PACKAGE = Path(comfyvn_roleplay.lane.__file__).parent


def _source_module() -> ModuleType:
    """lane.py itself, loaded from its source even where the compiled module is what imports find."""
    spec = importlib.util.spec_from_file_location("comfyvn_roleplay._lane_source", PACKAGE / "lane.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LANES = {"imported": comfyvn_roleplay.lane.FastLane, "source": _source_module().FastLane}


class NoLane(comfyvn_roleplay.lane.FastLane):
    """The general way only: binds to nothing, so every message is a Message through SceneBuilder.add."""

    def bind(self, *args: Any, **kwargs: Any) -> bool:
        return False


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _import(tmp: Path, lines: list[bytes], options: ImportOptions, lane: type) -> tuple[Any, dict[str, bytes]]:
    chat = tmp / "chat.jsonl"
    chat.write_bytes(b"\n".join(lines))
    out = tmp / "project"
    if out.exists():
        shutil.rmtree(out)
    raw = RawUpload(path=chat, sha256="0" * 64, size=chat.stat().st_size, filename="chat.jsonl")
    saved = importer.FastLane
    importer.FastLane = lane  # type: ignore[misc]
    try:
        try:
            result: Any = import_chat(raw, out, options=options)
        except Exception as exc:  # the same refusal both ways is the same result
            return (type(exc).__name__, str(exc)), {}
    finally:
        importer.FastLane = saved  # type: ignore[misc]
    return (result.stats, [str(i) for i in result.issues], result.warnings), _files(out)


# -- generated chats ------------------------------------------------------------------------------

_FRAGMENTS = [
    "She smiles.", "the harbour light", "Tea?", "*", "*", "*", " ", " ", "\n", "\n\n", "\n\n", "\n\n\n",
    '"', "\u201c", "\u00ab", "{{user}}", "{{char}}", "<b>", "<br>", "((OOC: brb))", "ooc", "Ooc", "_", "~",
    "`", "\\", "&amp;", "**", "---", "***", "1. ", "- ", "# ", "> ", "\t", "\x0b", "\x1c", "\u00e9",
    "\u65e5\u672c", "\ufdd0", "\r\n", "  ", "\u00a0", "\u0663", "(", ")", "x*y", "* ", " *", ".*", "*.",
]  # fmt: skip
_texts = st.lists(st.sampled_from(_FRAGMENTS), max_size=10).map("".join)
# What the lane takes: paragraphs of speech and *actions*, joined by a space or nothing.
_paragraph = st.tuples(
    st.lists(
        st.sampled_from(["*She nods.*", "Fine.", "*waves*", "Mira smiles", "\u00e9", " "]), min_size=1, max_size=4
    ),
    st.sampled_from(["", " "]),
).map(lambda p: p[1].join(p[0]))
_plain = st.lists(_paragraph, min_size=1, max_size=4).map("\n\n".join)
_DATES = [
    "2024-9-28@14h05m07s", "2024-9-28@23h59m59s", "2024-9-29@08h00m00s", "2024-9-29@08h30m00s",
]  # fmt: skip
_ODD_DATES = [
    "2024-2-30@10h00m00s", "2024-9-28@24h00m00s", "2024-9-28@1h5m7s", "2024-6-5 @14h 56m 50s 682ms",
    1727532307000, "June 19, 2023 2:20pm", "2024-09-28T14:05:07+02:00", "garbage", "", None, 10**19, 1e300,
    "\u0662\u0660\u0662\u0664-9-28@14h05m07s", "2024-9-28@14h05m07sX", "x@14h05m07s", True,
]  # fmt: skip
# SillyTavern's own format, with fields in and out of range.
_st_dates = st.builds(
    "{}-{}-{}@{:02d}h{:02d}m{:02d}s".format,
    st.sampled_from([2024, 999, 10000]),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
)
# A text the lane would take, with one odd piece put in somewhere.
_perturbed = st.tuples(_plain, st.sampled_from(_FRAGMENTS), st.integers(0, 60)).map(
    lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
)
_ODD_EXTRAS = [
    None, {"type": "narrator"}, {"type": "welcome"}, {"image": "a.png"}, {"bg": "x.jpg"},
    {"background": "url('backgrounds/y.png')"}, {"display_text": "shown"}, [], "x",
]  # fmt: skip


def _mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually what the lane takes (so a chat mixes both ways), now and then what it may not."""
    # An index drawn from seven (st.one_of would treat six copies of one strategy as one).
    return st.sampled_from(range(7)).flatmap(lambda i: odd if i == 6 else usual)


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each drawn about as often as its weight says."""
    slots = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(range(len(slots))).flatmap(lambda i: slots[i])


@st.composite
def _message(draw: st.DrawFn) -> dict[str, Any]:
    odd_name = st.sampled_from([" Mira ", "Narrator", "System", "Teller", "SillyTavern System", "", 5, "\u00dcn\u00ef"])
    msg: dict[str, Any] = {
        "name": draw(_mostly(st.sampled_from(["Mira", "Jonah"]), odd_name)),
        "is_user": draw(_mostly(st.booleans(), st.sampled_from([None, "true", 1]))),
        "is_system": draw(_mostly(st.just(False), st.sampled_from([True, None, 0]))),
        "send_date": draw(_weighted((5, st.sampled_from(_DATES)), (4, _st_dates), (1, st.sampled_from(_ODD_DATES)))),
        "mes": draw(_weighted((5, _plain), (4, _perturbed), (1, _texts), (1, st.sampled_from([None, 7, ""])))),
        "extra": draw(
            _mostly(
                st.sampled_from([{}, {"api": "openai", "model": "m"}, {"n": 123456789012345678901}]),
                st.sampled_from(_ODD_EXTRAS),
            )
        ),
    }
    if draw(st.booleans()):
        msg["swipes"] = draw(st.lists(st.one_of(_plain, st.just("")), max_size=3))
        msg["swipe_id"] = draw(_mostly(st.sampled_from([0, 1]), st.sampled_from([2, -1, None, "0", 1.0, 2**64])))
    for key in draw(st.lists(st.sampled_from(["original_avatar", "force_avatar", "ooc", "gen_started"]), max_size=2)):
        msg[key] = draw(st.sampled_from(["Mira.png", "/thumbnail?type=avatar&file=Kai%20B.png", "", True, 2**70]))
    if draw(st.integers(0, 9)) == 0:
        del msg[draw(st.sampled_from(sorted(msg)))]
    return msg


def _encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


@st.composite
def _chat(draw: st.DrawFn) -> list[bytes]:
    header = {"user_name": "Jonah", "character_name": "Mira", "create_date": "2024-09-28@14h05m07s"}
    header["chat_metadata"] = draw(st.sampled_from([{}, {"narrator_name": "Teller"}]))
    messages = draw(st.lists(_message(), min_size=3, max_size=16))
    lines = [_encode(header)] if draw(_mostly(st.just(True), st.just(False))) else []
    lines += [_encode(m) for m in messages]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from([b"", b"{bad", b"[1]", b'{"x": 1}'])))
    return lines


_options = st.builds(
    ImportOptions,
    detail_level=_mostly(st.just("medium"), st.sampled_from(["low", "high"])),
    ooc=st.sampled_from(["drop", "keep"]),
    hidden=st.sampled_from(["keep", "drop"]),
    swipes_as_choices=_mostly(st.just(False), st.just(True)),
    max_scene_nodes=st.sampled_from([None, 2, 3, 5]),
    time_gap_hours=st.sampled_from([None, 0.5, 3.0]),
    use_display_text=st.booleans(),
)


@pytest.mark.parametrize("lane", sorted(LANES))
@settings(max_examples=150)
@given(lines=_chat(), options=_options)
def test_the_lane_writes_what_the_general_way_writes(
    tmp_path_factory: pytest.TempPathFactory, lane: str, lines: list[bytes], options: ImportOptions
) -> None:
    tmp = tmp_path_factory.mktemp("lane")
    general = _import(tmp, lines, options, NoLane)
    fast = _import(tmp, lines, options, LANES[lane])
    assert fast[0] == general[0]
    assert fast[1].keys() == general[1].keys()
    for name, data in general[1].items():
        assert fast[1][name] == data, name


_BASES = ["*She nods.* Fine.", "Fine. *She nods.*\n\nMira smiles", "Fine.\n\nMira smiles *waves*", "*a* b *c*"]


def _systematic_chat() -> list[bytes]:
    """Every odd piece at several places in texts the lane takes, and SillyTavern dates with each field
    at and past its range: one chat, so that both ways read it once."""
    header = {"user_name": "Jonah", "character_name": "Mira", "create_date": "2024-09-28@14h05m07s"}
    lines = [_encode(header)]
    texts = [base[:at] + piece + base[at:] for base in _BASES for piece in _FRAGMENTS for at in range(len(base) + 1)]
    texts += [" ---", "\n***\n", "===", "\t- - -", "* * *", "\u3000***", "*", "* *", "**", "*a*b*", "a*b*c", "*\u00e9*"]
    dates = [
        f"{y}-{mo}-{d}@{h:02d}h{mi:02d}m{sec:02d}s"
        for y, mo, d in ((2024, 9, 28), (2024, 2, 29), (2023, 2, 29), (2024, 13, 1), (2024, 0, 1), (999, 1, 1))
        for h, mi, sec in ((0, 0, 0), (23, 59, 59), (24, 0, 0), (0, 60, 0), (0, 0, 60), (12, 0, 0))
    ]
    dates += [d for d in _ODD_DATES if d is not None] + ["2024-09-28@14h05m07s", "2024-9-28@14h05m07s "]
    for i, text in enumerate(texts + ["Fine."] * len(dates)):
        msg = {"name": "Jonah" if i % 3 == 1 else "Mira", "is_user": i % 3 == 1, "is_system": False, "mes": text}
        msg["send_date"] = (
            dates[i - len(texts)] if i >= len(texts) else f"2024-9-28@{i // 60 % 24:02d}h{i % 60:02d}m00s"
        )
        lines.append(_encode(msg))
    return lines


@pytest.mark.parametrize("lane", sorted(LANES))
@pytest.mark.parametrize("options", [ImportOptions(), ImportOptions(ooc="keep", max_scene_nodes=7, time_gap_hours=0.5)])
def test_the_lane_writes_what_the_general_way_writes_for_each_odd_piece(
    tmp_path: Path, lane: str, options: ImportOptions
) -> None:
    lines = _systematic_chat()
    counting, taken = _counting(LANES[lane])
    fast = _import(tmp_path, lines, options, counting)
    general = _import(tmp_path, lines, options, NoLane)
    assert 0 < len(taken) < len(lines) - 1  # both ways are taken
    assert fast[0] == general[0]
    assert fast[1].keys() == general[1].keys()
    for name, data in general[1].items():
        assert fast[1][name] == data, name


# -- what the lane takes --------------------------------------------------------------------------


def _counting(lane: type) -> tuple[type, list[int]]:
    taken: list[int] = []

    class Counting(lane):  # type: ignore[valid-type,misc]
        def take(self, obj: dict[str, Any], index: int, line: int) -> bool:
            used: bool = super().take(obj, index, line)
            if used:
                taken.append(line)
            return used

    return Counting, taken


@pytest.mark.parametrize("lane", sorted(LANES))
def test_the_commonest_messages_take_the_lane(tmp_path: Path, lane: str) -> None:
    header = {"user_name": "Jonah", "character_name": "Mira", "create_date": "2024-09-28@14h05m07s"}
    lines = [_encode(header)]
    for i in range(40):
        msg: dict[str, Any] = {
            "name": "Jonah" if i % 2 else "Mira",
            "is_user": bool(i % 2),
            "is_system": False,
            "send_date": f"2024-9-28@{i // 4:02d}h{i % 60:02d}m07s",
            "mes": f"*She nods, {i}.* Fine, {i}.\n\nThe tide turns. *A gull cries.*",
            "extra": {} if i % 2 else {"api": "openai", "model": "m", "gen_id": 12345678901234567890123},
        }
        if not i % 2:
            msg |= {"swipes": [msg["mes"], "Other."], "swipe_id": 0, "gen_started": "2024-09-28T14:05:07.000Z"}
        lines.append(_encode(msg))
    counting, taken = _counting(LANES[lane])
    stats, files = _import(tmp_path, lines, ImportOptions(), counting)
    assert taken == list(range(2, 42))  # every message line, with an integer beyond 64 bits or not
    assert stats == _import(tmp_path, lines, ImportOptions(), NoLane)[0]
    scene = json.loads(files["scenes/scene_0001.json"])
    first = scene["nodes"][:3]
    assert [(n["type"], n.get("speaker"), n["text"]) for n in first] == [
        ("narration", None, "She nods, 0."),
        ("dialogue", "mira", "Fine, 0.\n\nThe tide turns."),
        ("narration", None, "A gull cries."),
    ]
    assert [n["choices"] for n in first] == [[{"target": "n0002"}], [{"target": "n0003"}], [{"target": "n0004"}]]


@pytest.mark.parametrize(
    "change",
    [
        {"is_system": True},  # hidden
        {"mes": '*She nods.* "Fine."'},  # a quote: speech inside an action is the renderer's
        {"mes": "Hi {{user}}."},  # a macro
        {"mes": "Fine. ((OOC: brb))"},  # an OOC aside
        {"mes": "*She nods. Fine."},  # an unpaired asterisk
        {"mes": "- a list"},  # a block construct
        {"mes": "Fine.\nNext line."},  # lines within a paragraph
        {"name": "Narrator"},  # the narrator is no character
        {"send_date": "someday"},  # the general way warns about it
        {"extra": {"image": "a.png"}},  # a picture on the node
        {"swipe_id": 3},  # out of range: a warning
    ],
)
def test_what_the_lane_declines(tmp_path: Path, change: dict[str, Any]) -> None:
    msg = {"name": "Mira", "is_user": False, "send_date": "2024-9-28@14h05m07s", "mes": "*She nods.* Fine."}
    counting, taken = _counting(comfyvn_roleplay.lane.FastLane)
    header = _encode({"user_name": "Jonah", "character_name": "Mira"})
    _import(tmp_path, [header, _encode(msg), _encode(msg | change)], ImportOptions(), counting)
    assert taken == [2]


def test_unbound_or_unsupported_options_take_nothing() -> None:
    lane = comfyvn_roleplay.lane.FastLane()
    assert lane.take({"name": "Mira", "mes": "Fine."}, 0, 1) is False  # not bound yet
    from comfyvn_roleplay.cast import Cast

    cast = Cast(user_name="Jonah", cards=(), sprite_files={})
    for options in (ImportOptions(detail_level="high"), ImportOptions(swipes_as_choices=True)):
        assert lane.bind(SceneBuilder(options, cast), lambda scene: None) is False
    assert lane.bind(SceneBuilder(ImportOptions(), cast), lambda scene: None) is True


def _compiled() -> Iterator[ModuleType]:
    for module in (comfyvn_roleplay.lane, comfyvn_roleplay.st_chat):
        if not str(module.__file__).endswith(".py"):
            yield module


def test_compiled_modules_are_built_from_the_current_source() -> None:
    # An editable install compiles lane.py and st_chat.py in place (plugins/roleplay/setup.py); after an
    # edit, the stale extension would still be what imports find. Reinstall the plugin after editing.
    for module in _compiled():
        stem = Path(str(module.__file__)).parent / module.__name__.rsplit(".", 1)[1]
        # lane.pxd, next to lane.py, gives the compiled lane its C types
        for source in [p for p in (stem.with_suffix(".py"), stem.with_suffix(".pxd")) if p.exists()]:
            assert Path(str(module.__file__)).stat().st_mtime >= source.stat().st_mtime, (
                f"{module.__name__} is compiled from an older {source.name}: "
                "run `pip install -e plugins/roleplay` (or COMFYVN_PURE_PYTHON=1 to build without compiling)"
            )

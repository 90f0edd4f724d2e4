"""Story text to Ren'Py text: inline Markdown to text tags, exact escaping, pages that fit the text box."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from comfyvn_renpy import ExportOptions, build_bundle
from comfyvn_renpy.fonts import GameMetrics, find_base_font
from comfyvn_renpy.gui import gui_spec
from comfyvn_renpy.layout import build_layout
from comfyvn_renpy.script import ScriptWriter
from comfyvn_renpy.text import Paginator, parse_markdown
from comfyvn_scenario import Project
from hypothesis import given
from hypothesis import strategies as st
from PIL import ImageFont

SPEC = gui_spec(1920, 1080)
BASE = find_base_font()
TAG = re.compile(r"\{(/?)(i|b|s|font)(=[^}]*)?\}")

# A real roleplay message of 1,858 characters (actions, dialogue, inline emphasis, a paragraph break).
LONG_MESSAGE = (
    "*The rain had not stopped for three days, and the old lighthouse groaned under every gust that came in off "
    "the bay. Mira set the lantern down on the workbench, wiped the salt from her goggles and looked at you for "
    'a long moment before she spoke.* "You came back. I honestly did not think you would, not after what '
    'happened at the harbour." *She turned the brass dial on the radio until the static thinned into a voice, '
    'repeating the same coordinates over and over.* "Listen to that. It has been playing '
    "since midnight. Nobody in Saltmere will admit they hear it, but the gulls have gone quiet and the tide "
    "came in two hours early this morning. Two hours! The moon has "
    'never been two hours late in the forty years I have kept this light."\n*She pulled a chart from the '
    "drawer and spread it across the bench, pinning the corners with a mug, a wrench and a jar of rusted "
    "screws. A red circle had been drawn around a spot far beyond the reef, where the water on the chart "
    'turned from pale blue to nearly black.* "Just like you *were* going to do to me? No. I am not '
    "angry. I am tired, and I am frightened, and I need someone who can row while I keep the lamp steady. "
    'The boat is ready. The fuel is not, so we row." *Thunder rolled somewhere over the cliffs, close '
    "enough that the windows hummed in their frames. Mira did not flinch; she only folded her arms and "
    'waited, the way she always waited, as if the answer had already been written down somewhere.* "If we '
    "leave now we reach the reef before the second bell. If we wait for dawn, whoever is sending that "
    "signal will have stopped, and I will spend the rest of my life wondering what they wanted to tell us. "
    'So tell me, honestly: are you coming, or are you going to stand there dripping on my floor?" *She '
    "held out an oilskin coat, still warm from the stove, and for the first time tonight she almost "
    "smiled.*"
)


def _metrics(size: int = SPEC.text_size) -> GameMetrics:
    return GameMetrics(size, BASE)


def _pager(code_font: str | None = None) -> Paginator:
    return Paginator(SPEC, _metrics(), code_font=code_font)


def _tokens(literal: str) -> list[tuple[str, str]]:
    """Ren'Py's reading of a say string: ``("text", chars)`` and ``("tag", name)``, as its parser and text
    tag tokenizer do (``\\x`` escapes, whitespace collapse, ``{{``/``[[``/``%%`` doubled, ``{tag}``)."""
    assert literal.startswith('"') and literal.endswith('"')
    body = re.sub(r"\s+", " ", literal[1:-1])
    body = re.sub(
        r"\\(u([0-9a-fA-F]{4})|.)",
        lambda m: chr(int(m.group(2), 16)) if m.group(2) else ("\n" if m.group(1) == "n" else m.group(1)),
        body,
    )
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if body.startswith("{{", i) or body.startswith("[[", i) or body.startswith("%%", i):
            out.append(("text", body[i]))
            i += 2
        elif body[i] == "{":
            end = body.index("}", i)
            out.append(("tag", body[i + 1 : end]))
            i = end + 1
        else:
            assert body[i] not in "[%", f"an unescaped {body[i]!r} in {literal!r}"
            out.append(("text", body[i]))
            i += 1
    return out


def _shown(literal: str) -> str:
    """The text a player sees; asserts the tags are balanced and properly nested."""
    stack: list[str] = []
    chars = []
    for kind, value in _tokens(literal):
        if kind == "text":
            chars.append(value)
        elif value.startswith("/"):
            assert stack and stack[-1] == value[1:], f"unbalanced {{{value}}} in {literal!r}"
            stack.pop()
        else:
            stack.append(value.split("=", 1)[0])
    assert not stack, f"unclosed {stack} in {literal!r}"
    return "".join(chars)


def _lines_greedy(text: str, font: ImageFont.FreeTypeFont, width: float) -> int:
    """An independent measure: greedy wrapping, each line measured whole with Pillow (kerning included)."""
    lines = 0
    for paragraph in text.split("\n"):
        current = ""
        lines += 1
        for word in paragraph.split():
            trial = f"{current} {word}" if current else word
            if current and font.getlength(trial) > width:
                lines += 1
                current = word
            else:
                current = trial
    return lines


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"Just like you *were* going to do to me?"', '"\\"Just like you {i}were{/i} going to do to me?\\""'),
        ("an _italic_ word", '"an {i}italic{/i} word"'),
        ("a __strong__ word", '"a {b}strong{/b} word"'),
        ("a **strong** word", '"a {b}strong{/b} word"'),
        ("a ~~struck~~ word", '"a {s}struck{/s} word"'),
        ("***both***", '"{b}{i}both{/i}{/b}"'),
        ("`x = [1]`", '"x = [[1]"'),
        ("snake_case_name and 2 * 3 * 4", '"snake_case_name and 2 * 3 * 4"'),
        ("**unclosed and *open", '"**unclosed and *open"'),
        ('[a] {b} 100% "q" back\\slash', '"[[a] {{b} 100%% \\"q\\" back\\\\slash"'),
        ("*[note] 50%*", '"{i}[[note] 50%%{/i}"'),
        ("<b>not a tag</b> {i}nor this{/i} &amp;", '"<b>not a tag</b> {{i}nor this{{/i} &amp;"'),
        ("[link](http://x) \\*kept\\*", '"[[link](http://x) \\\\{i}kept\\\\{/i}"'),
    ],
)
def test_markdown_becomes_ren_py_text_tags_and_everything_else_stays_literal(source: str, expected: str) -> None:
    assert _pager().pages(source) == (expected,)


def test_code_is_set_in_the_monospace_font_when_the_game_has_one() -> None:
    assert _pager("fonts/mono.ttf").pages("run `ls [x]` now") == ('"run {font=fonts/mono.ttf}ls [[x]{/font} now"',)


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9)
_words = st.lists(_word, min_size=1, max_size=8).map(" ".join)


@given(before=_words, emphasis=_word, after=_words, lead=st.lists(_words, max_size=12), mark=st.sampled_from("?.!"))
def test_a_quoted_sentence_with_emphasis_stays_whole_on_one_page(
    before: str, emphasis: str, after: str, lead: list[str], mark: str
) -> None:
    sentence = f'"{before.capitalize()} *{emphasis}* {after}{mark}"'
    text = " ".join([*(f"{s.capitalize()}." for s in lead), sentence])
    pages = _pager().pages(text)
    holding = [p for p in pages if f"{{i}}{emphasis}{{/i}}" in p and before.capitalize() in p]
    assert len(holding) == 1, pages
    assert f'"{before.capitalize()} {emphasis} {after}{mark}"' in _shown(holding[0])


_piece = st.one_of(
    _words,
    st.sampled_from(
        [". ", "! ", "? ", ", ", "; ", "\n", " *", "* ", "**", "_", "~~", "`", '"', "[", "{", "%", "\\", "。", "\uff0c"]
    ),
    st.text(alphabet="她推开了那扇沉重的木门屋里", min_size=1, max_size=40),
    st.text(min_size=1, max_size=20),
)


@given(st.lists(_piece, max_size=120).map("".join))
def test_pagination_never_loses_reorders_or_empties(text: str) -> None:
    pager = _pager()
    visible = parse_markdown(text).text
    pages = pager.pages(text)
    shown = [_shown(page) for page in pages]
    assert all(page.strip() for page in shown)
    squeeze = re.compile(r"\s+")
    assert squeeze.sub("", "".join(shown)) == squeeze.sub("", visible.replace("\ud800", "\ufffd")) or any(
        0xD800 <= ord(c) <= 0xDFFF for c in text
    )


def test_a_long_message_is_paged_at_sentence_ends_and_every_page_fits() -> None:
    assert len(LONG_MESSAGE) == 1858
    pages = _pager().pages(LONG_MESSAGE)
    shown = [_shown(p) for p in pages]
    assert 4 <= len(pages) <= 9
    font = ImageFont.truetype(str(BASE[0]), SPEC.text_size) if BASE else None
    for text in shown:
        assert text.rstrip()[-1] in '.!?"*' or text.rstrip().endswith(("*", '"')), text
        if font is not None:
            assert _lines_greedy(text, font, SPEC.dialogue_width) <= SPEC.dialogue_lines, text
            ascent, descent = font.getmetrics()
            lines = _lines_greedy(text, font, SPEC.dialogue_width)
            assert lines * (ascent + descent + SPEC.line_spacing) <= SPEC.textbox_height - SPEC.dialogue_ypos
    # Italics that run across a page end are closed there and reopened on the next page.
    assert all(p.count("{i}") == p.count("{/i}") for p in pages)
    assert "{i}were{/i}" in "".join(pages)
    joined = re.sub(r"\s+", "", "".join(shown))
    assert joined == re.sub(r"\s+", "", parse_markdown(LONG_MESSAGE).text)


def test_a_sentence_longer_than_the_box_is_split_at_clauses_then_words() -> None:
    clause = "and the corridor went on and on past doors that were all the same"
    text = "It began. " + ", ".join([clause] * 12) + ". It ended."
    pages = [_shown(p) for p in _pager().pages(text)]
    assert len(pages) >= 3 and pages[-1].endswith("It ended.")
    assert all(p.endswith((",", ".")) for p in pages), pages
    words = " ".join(["incomprehensibilities"] * 120)
    assert all(p.split() for p in (_shown(p) for p in _pager().pages(words)))


def test_cjk_text_breaks_between_ideographs_and_pages_fit() -> None:
    noto = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    sentence = "她推开了那扇沉重的木门\uff0c屋里弥漫着檀香的味道。"
    chars = frozenset(sentence)
    data = noto.read_bytes()
    metrics = GameMetrics(SPEC.text_size, BASE, [(chars, data)])
    pages = [_shown(p) for p in Paginator(SPEC, metrics).pages(sentence * 20)]
    assert len(pages) >= 4 and all(p.endswith("。") for p in pages)
    font = ImageFont.truetype(str(noto), SPEC.text_size, index=2)
    ascent, descent = font.getmetrics()
    lines_fit = (SPEC.textbox_height - SPEC.dialogue_ypos) // (ascent + descent + SPEC.line_spacing)
    for page in pages:
        # Ideographs wrap anywhere: the page needs ceil(width / line width) lines at most.
        width = font.getlength(page)
        assert -(-width // SPEC.dialogue_width) <= lines_fit, page


def _writer_project() -> Project:
    nodes = [
        {
            "id": "a",
            "type": "dialogue",
            "speaker": "hero",
            "text": LONG_MESSAGE,
            "choices": [
                {"id": "x", "label": "**Row** out", "target": "b"},
                {"id": "y", "label": "Stay", "target": "b"},
            ],
        },
        {"id": "b", "type": "narration", "text": "Done.", "end": True},
    ]
    meta = {"id": "t", "title": "T", "start": "s", "characters": {"hero": {"name": "Mira [the keeper]"}}}
    return Project(meta=meta, scenes={"s": {"id": "s", "start": "a", "nodes": nodes}})


def test_a_menu_after_long_text_is_captioned_by_its_last_page() -> None:
    bundle = build_bundle(_writer_project(), ExportOptions())
    scene = bundle.files["game/scenes/scene_s.rpy"].decode()
    block = scene.split("label s_a:\n", 1)[1].split("\nlabel ", 1)[0].splitlines()
    menu_at = block.index("    menu:")
    pages = _pager().pages(LONG_MESSAGE)
    assert block[:menu_at] == [f"    c_hero {p}" for p in pages[:-1]]
    assert block[menu_at + 1] == f"        c_hero {pages[-1]}"
    assert '        "{b}Row{/b} out":' in block


def test_narrator_and_system_speakers_are_narration_unless_they_are_characters() -> None:
    project = _writer_project()
    writer = ScriptWriter(build_layout(project), pov="", pov_menu=False, pager=_pager())
    assert writer._say({"speaker": "SYSTEM", "text": "Saved."}) == ['"Saved."']
    assert writer._say({"speaker": "narrator", "text": "Night."}) == ['"Night."']
    assert writer._say({"speaker": 'A [b] {c} "d" 100%', "text": "Hi"}) == ['"A [[b] {{c} \\"d\\" 100%%" "Hi"']
    assert writer._say({"speaker": "hero", "text": "Hi"}) == ['c_hero "Hi"']
    project.meta["characters"]["narrator"] = {"name": "The Narrator"}
    writer = ScriptWriter(build_layout(project), pov="", pov_menu=False, pager=_pager())
    assert writer._say({"speaker": "narrator", "text": "Night."}) == ['c_narrator "Night."']

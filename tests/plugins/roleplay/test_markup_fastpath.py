"""The markup conversion's shortcuts (plain paragraphs, lone asterisks, the cache) give exactly what
markdown-it's full parse gives.

:func:`render` skips the block parser for text without block markers and markdown-it's inline parser
for paragraphs whose only markup is single asterisks and line breaks (``_inline_scan``); messages
made only of such paragraphs skip the token walker too (``_render_simple``). These tests pin its
output on a varied corpus and compare it, on generated messages, with ``_render(...,
block_parser=True)``: the walker fed by ``MarkdownIt.parse`` for every message.
"""

from __future__ import annotations

import random

import pytest
from comfyvn_roleplay import markup, textproc
from comfyvn_roleplay._inline_scan import paragraphs
from comfyvn_roleplay.markup import _fast_items, _items, _render, _render_simple, render
from comfyvn_roleplay.textproc import resolve_macros, split_ooc, tidy
from hypothesis import given, settings
from hypothesis import strategies as st

Seg = tuple[str, str, int]

# Each expectation follows docs/roleplay.md ("Story text"): actions outside quotes become their own
# segments without asterisks, emphasis inside quotes stays, an unclosed action runs until speech,
# literal markup characters are escaped, tags become markers or are dropped, blocks are flattened.
CORPUS: list[tuple[str, bool, list[Seg], tuple[str, ...]]] = [
    (
        "*Harbour light storm ledger.* Boat rope tide salt gull.\n\nLamp night quiet door.",
        True,
        [
            ("action", "Harbour light storm ledger.", 0),
            ("speech", "Boat rope tide salt gull.", 0),
            ("speech", "Lamp night quiet door.", 1),
        ],
        (),
    ),
    (
        "*Harbour light storm ledger.* Boat rope tide salt gull.\n\nLamp night quiet door.",
        False,
        [
            ("speech", "*Harbour light storm ledger.* Boat rope tide salt gull.", 0),
            ("speech", "Lamp night quiet door.", 1),
        ],
        (),
    ),
    (
        '*She looks up.* "You *were* late," she says. *She waits.*',
        True,
        [("action", "She looks up.", 0), ("speech", '"You *were* late," she says.', 0), ("action", "She waits.", 0)],
        (),
    ),
    # A soft break inside an action, a hard break (two spaces) before the speech.
    (
        '*walks to the door.\nStops there.*  \n"Wait."',
        True,
        [("action", "walks to the door.\nStops there.", 0), ("speech", '"Wait."', 0)],
        (),
    ),
    (
        '*walks to the door.\nStops there.*  \n"Wait."',
        False,
        [("speech", '*walks to the door.\nStops there.*\n"Wait."', 0)],
        (),
    ),
    ('*nods*\n"Fine."  \nSee you.', True, [("action", "nods", 0), ("speech", '"Fine."\nSee you.', 0)], ()),
    (
        "**Bold** and *italic* and ***both*** here.",
        True,
        [
            ("speech", "**Bold** and", 0),
            ("action", "italic", 0),
            ("speech", "and", 0),
            ("action", "**both**", 0),
            ("speech", "here.", 0),
        ],
        (),
    ),
    # Spaced asterisks are literal; intraword ones pair as emphasis (CommonMark); the last one opens
    # an action the writer never closed.
    (
        "a * b * c, 2*3*4, *not closed",
        True,
        [("speech", r"a \* b \* c, 2", 0), ("action", "3", 0), ("speech", "4,", 0), ("action", "not closed", 0)],
        (),
    ),
    ("a * b * c, 2*3*4, *not closed", False, [("speech", r"a \* b \* c, 2*3*4, \*not closed", 0)], ()),
    (
        "「*手を振る*」と彼女は言った。*微笑む*",
        True,
        [("speech", "「*手を振る*」と彼女は言った。", 0), ("action", "微笑む", 0)],
        (),
    ),
    (
        "“Curly *quotes*,” *she says* «and *these*» too.",
        True,
        [("speech", "“Curly *quotes*,”", 0), ("action", "she says", 0), ("speech", "«and *these*» too.", 0)],
        (),
    ),
    (
        "snake_case and _under_ and __strong__ ~~gone~~ ~single~ `co*de`",
        True,
        [("speech", "snake_case and *under* and **strong** ~~gone~~ ~single~ `co*de`", 0)],
        (),
    ),
    ("5 \\* 3 &amp; 4 &copy; &nope;", True, [("speech", r"5 \* 3 & 4 © \&nope;", 0)], ()),
    (
        "Hi <b>there</b><br>you <div>x</div> <StatusPlaceHolderImpl/>",
        True,
        [("speech", "Hi **there**\nyou x", 0)],
        ("<div>", "</div>", "<StatusPlaceHolderImpl/>"),
    ),
    (
        "> quoted *line*\n> more\n\n# Heading *x*\n\n- one\n- two",
        True,
        [
            ("speech", "quoted", 0),
            ("action", "line", 0),
            ("speech", "more", 0),
            ("speech", "Heading", 1),
            ("action", "x", 1),
            ("speech", "one\ntwo", 2),
        ],
        (),
    ),
    (
        "1. first\n2) second\n\n---\n\n```\ncode *x*\n```",
        True,
        [("speech", "1. first", 0), ("speech", "2) second", 1), ("speech", r"code \*x\*", 3)],
        (),
    ),
    ("tab\tand\u3000wide,\u00a0nbsp", True, [("speech", "tab\tand\u3000wide,\u00a0nbsp", 0)], ()),
    ("*a *b* c*", True, [("action", "a *b* c", 0)], ()),
    # A quote opened inside an action does not make the next action speech.
    ('*mutters "fine* *walks off*', True, [("action", 'mutters "fine', 0), ("action", "walks off", 0)], ()),
    ("**", True, [("speech", r"\*\*", 0)], ()),
    ("*", True, [], ()),
    # Line ends are normalised and Unicode noncharacters removed, also among CJK and emoji.
    ("a\r\nb\rc\ufdd0d\uffff", True, [("speech", "a\nb\ncd", 0)], ()),
    ("猫\ufffe「*走る*」😀\ufdef", True, [("speech", "猫「*走る*」😀", 0)], ()),
    # markdown-it reads NUL as U+FFFD; the plain-paragraph shortcut once kept it (a NUL in a script).
    ("a\0b", True, [("speech", "a\ufffdb", 0)], ()),
    # A paragraph of a no-break space still counts as a block, so "Text" is the second.
    ("\u00a0\n\nText", True, [("speech", "Text", 1)], ()),
]


@pytest.mark.parametrize(("text", "split", "expected", "dropped"), CORPUS)
def test_corpus_renders_as_pinned(text: str, split: bool, expected: list[Seg], dropped: tuple[str, ...]) -> None:
    for got in (render(text, split_actions=split), _render(text, split, block_parser=True)):
        assert [(s.kind, s.text, s.block) for s in got.segments] == expected
        assert got.dropped_tags == dropped


def test_the_benchmark_shape_takes_the_fast_paths() -> None:
    # Otherwise the equivalence properties below would prove nothing about the common case.
    text = "*She smiles.* Tide salt gull, “quiet” night.\nLamp  \ndoor.\n\nRain.「雨」"
    contents = paragraphs(text)
    assert contents == ["*She smiles.* Tide salt gull, “quiet” night.\nLamp  \ndoor.", "Rain.「雨」"]
    assert _fast_items(contents[0]) == [
        ("em_open", "", "*"),
        ("text", "She smiles.", ""),
        ("em_close", "", "*"),
        ("text", " Tide salt gull, “quiet” night.", ""),
        ("softbreak", "", ""),
        ("text", "Lamp", ""),
        ("hardbreak", "", ""),
        ("text", "door.", ""),
    ]
    assert paragraphs("> quote") is None and _fast_items("**bold**") is None
    simple = _render_simple(contents, True)
    assert simple is not None and simple == _render(text, True, block_parser=True)
    assert [s.kind for s in simple.segments] == ["action", "speech", "speech"]
    # An unpaired asterisk may open an unclosed action: left to the walker.
    assert _render_simple(["*walks off. Bye"], True) is None


def test_cached_results_are_per_text_and_option() -> None:
    text = '*waves* "Hi."'
    assert render(text) is render(text)  # repeated swipes and replies are not parsed again
    assert [s.kind for s in render(text).segments] == ["action", "speech"]
    assert [s.kind for s in render(text, split_actions=False).segments] == ["speech"]
    long = "word " * 1000 + "*end*"
    assert render(long) == _render(long, True, block_parser=True)


FRAGMENTS = [
    *"*_~`>#-+=|.)(][}{!\"'&\\ \t\n",
    *[
        "**",
        "***",
        "__",
        "~~",
        "```",
        "1.",
        "2)",
        "---",
        "* ",
        "- ",
        "\n\n",
        "  \n",
        " \n",
        "\n  ",
        "\t\n",
        "\n\t",
        " \t \n",
    ],
    *['"', "“", "”", "«", "»", "「", "」", "『", "』", "„", "'s"],
    *["<b>", "</b>", "<i>", "</em>", "<s>", "<br>", "<br/>", "<div>", "</div>", "<StatusPlaceHolderImpl/>"],
    *["<!-- c -->", "<!--", "<style>x</style>", "&amp;", "&#42;", "&nope;", "\\*", "\\<b\\>"],
    *["(OOC: ", "((", "))", "[OOC ", "OOC:", "{{user}}", "{{char}}", "{{time}}", "<USER>"],
    *["a", "word", "Mira", "she smiles", "2", "猫", "日本語", "。", "、", "é", "😀"],
    *["\u00a0", "\u3000", "\u2003", "\x0b", "\x0c", "\x1c", "\x85", "\0", "\r", "\r\n", "\ufffe", "\u200b"],
]
messages = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3)), max_size=30).map("".join)
# Roleplay-shaped text: mostly words and lone asterisks, which is what the shortcuts cover.
common = st.lists(
    st.sampled_from(
        ["*", " ", "\t", "word", "Smiles", ".", ",", '"', "“", "”", "「", "」", "\n", "\n\n", "  \n", "猫"]
    ),
    max_size=40,
).map("".join)

# Chat-shaped text: actions, speech and narration whose words may hold stray quote characters.
_word = st.sampled_from(["she", "Smiles", "猫", "ok.", "fine,", '"', "“", "”", "«", "»", "「", "」", "'"])
_phrase = st.lists(_word, min_size=1, max_size=4).map(" ".join)
shaped = st.lists(
    st.one_of(
        _phrase,
        _phrase.map(lambda p: f"*{p}*"),
        _phrase.map(lambda p: f'"{p}"'),
        _phrase.map(lambda p: f"“{p}”"),
        _phrase.map(lambda p: f"*{p}"),
        _phrase.map(lambda p: f"**{p}**"),
        st.sampled_from(["\n", "\n\n", "  \n", " \t\n"]),
    ),
    max_size=12,
).map(" ".join)


def _same(text: str) -> None:
    for split in (True, False):
        assert render(text, split_actions=split) == _render(text, split, block_parser=True), (text, split)


@settings(max_examples=400)
@given(st.one_of(messages, common, shaped))
def test_property_fast_path_equals_markdown_it(text: str) -> None:
    _same(text)
    # What the converter actually renders: macros expanded and OOC asides cut out first.
    _same(split_ooc(resolve_macros(text, "Jonah", "Mira"))[0])


@settings(max_examples=400)
@given(st.one_of(messages, common, shaped))
def test_property_fast_items_equal_markdown_its_inline_tokens(text: str) -> None:
    contents = paragraphs(text.replace("\r", ""))
    for content in contents or [text.replace("\r", "").replace("\0", "").strip()]:
        fast = _fast_items(content)
        if fast is not None and content:
            children = markup._MD.parseInline(content)[0].children or []
            assert fast == _items(children), content


def test_equivalence_on_a_seeded_sample_of_benchmark_messages() -> None:
    rng = random.Random(7)
    words = ["harbour", "light", "storm", "ledger", "boat", "rope", "tide", "salt", "gull", "lamp", "night"]
    words += ["quiet", "door", "猫", "“tea”", "«key»"]

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n)).capitalize() + rng.choice(".!?")

    for _ in range(300):
        text = f"*{sentence(6)}* {sentence(12)}\n\n{sentence(14)}"
        if rng.random() < 0.5:
            text = f'"{sentence(4)}" *{sentence(3)}*\n{sentence(5)} *{sentence(2)}'
        _same(text)


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(["a", " ", "\t", "\n", '"', "“", "”", "\u00a0"]), max_size=30).map("".join), st.booleans()
)
def test_property_tidy_equals_its_regexes(text: str, unquote: bool) -> None:
    # tidy skips its regexes when a substring test shows they cannot match; the result is the same.
    expected = textproc._BLANKS.sub("\n\n", textproc._TRAILING.sub("\n", text)).strip()
    if unquote:
        m = textproc._QUOTED.match(expected)
        if m and '"' not in m.group(1) and "“" not in m.group(1):
            expected = m.group(1).strip()
    assert tidy(text, unquote=unquote) == expected

"""Prompt packs: shipped packs lint clean, rendering is strict, user packs override templates, the linter
catches broken templates and schemas, and every offline answer fits its pack."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli
from comfyvn.errors import Invalid, NotFound, Unprocessable
from comfyvn_narrator import offline, packs
from comfyvn_narrator.packs_cli import packs_group
from hypothesis import given
from hypothesis import strategies as st

from . import model_help

offline_kernel = model_help.offline_kernel

SHIPPED = ["BATTLE_NARRATION", "NARRATOR_TURN", "POV_REWRITE", "ROLEPLAY_CLEANUP"]
PACKS_DIR = Path(packs.__file__).with_name("packs")
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["line"],
    "properties": {"line": {"type": "string"}},
    "x-pack": {"description": "A test pack.", "inputs": {"name": "required", "mood": "optional"}},
}
TEMPLATE = (
    "{% block system %}Answer as JSON: {{ answer_schema }}{% endblock %}\n"
    "{% block user %}Hi {{ name }}{% if mood %}, {{ mood }}{% endif %}{% endblock %}"
)


def _write(folder: Path, name: str, template: str | None, schema: Any | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if template is not None:
        (folder / f"{name}.j2").write_text(template)
    if schema is not None:
        (folder / f"{name}.schema.json").write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return folder / f"{name}.j2"


def test_the_shipped_packs_are_listed_and_lint_clean() -> None:
    assert [p["name"] for p in packs.list_packs()] == SHIPPED
    for name in SHIPPED:
        assert packs.lint(PACKS_DIR / f"{name}.j2") == [], name
        pack = packs.load_pack(name)
        assert pack.schema["examples"] and all(packs.validate(pack, e) == [] for e in pack.schema["examples"])


def test_render_gives_a_system_and_a_user_message(tmp_path: Path) -> None:
    path = _write(tmp_path, "GREETING", TEMPLATE, SCHEMA)
    assert packs.lint(path) == []
    pack = packs.Pack("GREETING", TEMPLATE, SCHEMA, "user")
    messages = packs.render(pack, {"name": "Mira <&>"})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == "Hi Mira <&>"  # no HTML escaping: the text is for a model
    assert '"required": ["line"]' in messages[0]["content"] and "x-pack" not in messages[0]["content"]
    assert packs.render(pack, {"name": "Mira", "mood": "glad"})[1]["content"] == "Hi Mira, glad"


@pytest.mark.parametrize(
    ("inputs", "field"),
    [({}, "inputs.name"), ({"name": "x", "colour": "red"}, "inputs.colour")],
)
def test_render_refuses_missing_and_unknown_inputs(inputs: dict[str, Any], field: str) -> None:
    pack = packs.Pack("GREETING", TEMPLATE, SCHEMA, "user")
    with pytest.raises(Invalid) as raised:
        packs.render(pack, inputs)
    assert raised.value.field == field


def test_strict_undefined_and_the_sandbox() -> None:
    attribute = packs.Pack("GREETING", TEMPLATE.replace("{{ name }}", "{{ name.missing }}"), SCHEMA, "user")
    with pytest.raises(Invalid):
        packs.render(attribute, {"name": "Mira"})
    escape = TEMPLATE.replace("{{ name }}", "{{ name.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises((Invalid, Unprocessable)):
        packs.render(packs.Pack("GREETING", escape, SCHEMA, "user"), {"name": "Mira"})


@pytest.mark.parametrize(
    ("template", "schema", "expected"),
    [
        ("{% block system %}{{ oops {% endblock %}", SCHEMA, "template: line 1:"),
        (TEMPLATE.replace("{{ name }}", "{{ nickname }}"), SCHEMA, "uses 'nickname', which x-pack.inputs does not"),
        ("{% block user %}Hi{% endblock %}", SCHEMA, "template: no {% block system %}"),
        (TEMPLATE, {**SCHEMA, "type": "thing"}, "schema: not a valid Draft 2020-12 schema at type"),
        (TEMPLATE, {**SCHEMA, "$schema": "http://json-schema.org/draft-07/schema#"}, "$schema must be"),
        (TEMPLATE, {k: v for k, v in SCHEMA.items() if k != "x-pack"}, "x-pack must be an object"),
        (TEMPLATE, {**SCHEMA, "x-pack": {"inputs": {"name": "maybe"}}}, "required or optional"),
        (TEMPLATE, {**SCHEMA, "examples": [{"line": 3}]}, "examples[0]: line: 3 is not of type 'string'"),
        (TEMPLATE, "{not json", "schema: not JSON"),
        (TEMPLATE, None, "GREETING.schema.json: missing"),
    ],
)
def test_lint_catches_broken_templates_and_schemas(tmp_path: Path, template: str, schema: Any, expected: str) -> None:
    path = _write(tmp_path, "GREETING", template, schema)
    problems = packs.lint(path)
    assert any(expected in p for p in problems), problems


def test_lint_names_files_that_are_not_packs(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    assert "a pack file is NAME.j2 or NAME.schema.json" in packs.lint(tmp_path / "notes.txt")[0]
    (tmp_path / "lower.j2").write_text("x")
    assert "upper-case" in packs.lint(tmp_path / "lower.j2")[0]


def test_a_user_template_overrides_a_shipped_pack_by_name(offline_kernel: Callable[..., Kernel]) -> None:
    kernel = offline_kernel()
    folder = packs.user_pack_dir(kernel)
    assert folder is not None
    shipped = packs.load_pack("NARRATOR_TURN")
    mine = shipped.template.replace("You are the narrator", "You are a terse narrator")
    _write(folder, "NARRATOR_TURN", mine, None)
    pack = packs.load_pack("NARRATOR_TURN", kernel=kernel)
    assert pack.source == "user" and pack.schema == shipped.schema
    assert packs.render(pack, {"scene_id": "s", "node_id": "n"})[0]["content"].startswith("You are a terse narrator")
    assert packs.load_pack("NARRATOR_TURN").source == "shipped"  # without the kernel: the shipped one
    assert {p["name"]: p["source"] for p in packs.list_packs(kernel)}["NARRATOR_TURN"] == "user"


def test_a_broken_or_schema_replacing_user_pack_is_refused_and_listed(offline_kernel: Callable[..., Kernel]) -> None:
    kernel = offline_kernel()
    folder = packs.user_pack_dir(kernel)
    assert folder is not None
    _write(folder, "POV_REWRITE", packs.load_pack("POV_REWRITE").template, {"type": "object"})
    _write(folder, "GREETING", "{% block system %}{{ x }}", SCHEMA)
    with pytest.raises(Unprocessable) as replaced:
        packs.load_pack("POV_REWRITE", kernel=kernel)
    assert "cannot be replaced" in replaced.value.details["problems"][0]
    listed = {p["name"]: p for p in packs.list_packs(kernel)}
    assert listed["GREETING"]["problems"] and listed["POV_REWRITE"]["problems"]
    assert listed["NARRATOR_TURN"]["problems"] == []


def test_a_user_template_that_is_not_utf8_is_a_broken_pack_not_a_crash(offline_kernel: Callable[..., Kernel]) -> None:
    # Found by review: the UnicodeDecodeError escaped `packs list` (a traceback) and every ask of the pack (a 500).
    kernel = offline_kernel()
    folder = packs.user_pack_dir(kernel)
    assert folder is not None
    folder.mkdir(parents=True)
    (folder / "NARRATOR_TURN.j2").write_bytes(b"\xff\xfe{% block system %}x{% endblock %}")
    with pytest.raises(Unprocessable) as broken:
        packs.load_pack("NARRATOR_TURN", kernel=kernel)
    assert broken.value.code == "invalid_pack" and "not UTF-8" in broken.value.message
    listed = {p["name"]: p for p in packs.list_packs(kernel)}
    assert listed["NARRATOR_TURN"]["source"] == "user" and "not UTF-8" in listed["NARRATOR_TURN"]["problems"][0]
    assert listed["POV_REWRITE"]["problems"] == []


def test_a_schema_never_fetches_a_remote_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by review: jsonschema's default registry fetched a $ref's URL (a lint, or the server validating an
    # answer, reached out to an address a pack file names) and the failure escaped as a traceback.
    fetched: list[Any] = []

    def urlopen(request: Any, *args: Any, **kwargs: Any) -> Any:
        fetched.append(request)
        raise OSError("no network in this test")

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    remote = {**SCHEMA, "properties": {"line": {"$ref": "http://127.0.0.1:9/line.json"}}, "examples": [{"line": "x"}]}
    problems = packs.lint(_write(tmp_path, "REMOTE", TEMPLATE, remote))
    assert fetched == []
    assert any("points outside the schema" in p for p in problems)
    assert any(p.startswith("examples[0]: schema: $ref") for p in problems)
    # a reference inside the schema is fine; one to a missing definition is a problem, not a crash
    local = {**SCHEMA, "$defs": {"line": {"type": "string"}}, "properties": {"line": {"$ref": "#/$defs/line"}}}
    assert packs.lint(_write(tmp_path, "LOCAL", TEMPLATE, {**local, "examples": [{"line": "x"}]})) == []
    missing = {**local, "properties": {"line": {"$ref": "#/$defs/nope"}}}
    assert packs.validate_against(missing, {"line": "x"})[0].startswith("schema: $ref")


def test_a_new_user_pack_works(offline_kernel: Callable[..., Kernel]) -> None:
    kernel = offline_kernel()
    folder = packs.user_pack_dir(kernel)
    assert folder is not None
    _write(folder, "GREETING", TEMPLATE, SCHEMA)
    pack = packs.load_pack("GREETING", kernel=kernel)
    assert pack.source == "user" and pack.inputs == {"name": "required", "mood": "optional"}


@pytest.mark.parametrize("name", ["narrator_turn", "../X", "", "A" * 80])
def test_bad_pack_names(name: str) -> None:
    with pytest.raises(Invalid):
        packs.load_pack(name)


def test_an_unknown_pack_is_not_found() -> None:
    with pytest.raises(NotFound):
        packs.load_pack("NO_SUCH_PACK")


# -- the offline answers ----------------------------------------------------------------------------------
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=120)
_ID = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@st.composite
def _inputs(draw: st.DrawFn, pack: str) -> dict[str, Any]:
    if pack == "NARRATOR_TURN":
        return {
            "scene_id": draw(_ID),
            "node_id": draw(_ID),
            "node_text": draw(st.none() | _TEXT),
            "message": draw(st.none() | _TEXT),
            "speaker": draw(st.none() | _ID),
            "choices": [{"id": c, "text": "go"} for c in draw(st.lists(_ID, max_size=3))],
        }
    if pack == "BATTLE_NARRATION":
        fighters = draw(st.lists(_TEXT.filter(str.strip), min_size=1, max_size=6, unique=True))
        return {
            "mode": draw(st.sampled_from(["choice", "sim"])),
            "pov": draw(st.sampled_from([*fighters, "narrator"])),
            "fighters": [{"id": f, "name": f} for f in fighters],
            "outcome": draw(st.sampled_from(fighters)),
            "rounds": draw(st.integers(1, 10)),
        }
    ids = draw(st.lists(_ID, min_size=1, max_size=8, unique=True))
    lines = [
        {"id": i, "speaker": None, "text": draw(_TEXT.filter(str.strip)), "rewrite": draw(st.booleans())} for i in ids
    ]
    if pack == "POV_REWRITE":
        return {"scene_id": "s", "pov": {"id": "mira", "name": "Mira"}, "lines": lines}
    for line in lines:
        del line["rewrite"]
    return {"scene_id": "s", "detail_level": draw(st.sampled_from(["low", "medium", "high"])), "lines": lines}


@given(data=st.data(), pack=st.sampled_from(SHIPPED))
def test_offline_answers_fit_their_pack_and_are_deterministic(data: st.DataObject, pack: str) -> None:
    inputs = data.draw(_inputs(pack))
    loaded = packs.load_pack(pack)
    answer = offline.answer(pack, inputs)
    assert packs.validate(loaded, answer) == []
    assert packs.check_answer(loaded, inputs, answer) == []
    assert offline.answer(pack, json.loads(json.dumps(inputs))) == answer
    packs.render(loaded, inputs)  # the same inputs render


# -- the commands -------------------------------------------------------------------------------------------
def _cli(kernel: Kernel) -> click.Group:
    cli = make_cli(kernel)
    cli.add_command(packs_group)
    return cli


def test_packs_list_show_and_lint_commands(offline_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    cli = _cli(offline_kernel())
    listed = CliRunner().invoke(cli, ["packs", "list", "--json"])
    assert listed.exit_code == 0 and [p["name"] for p in json.loads(listed.output)["packs"]] == SHIPPED
    assert "BATTLE_NARRATION" in CliRunner().invoke(cli, ["packs", "list"]).output
    shown = CliRunner().invoke(cli, ["packs", "show", "POV_REWRITE"])
    assert shown.exit_code == 0 and "--- answer schema ---" in shown.output and "observations" in shown.output
    assert CliRunner().invoke(cli, ["packs", "show", "NOPE"]).exit_code == 2
    good = CliRunner().invoke(cli, ["packs", "lint", str(_write(tmp_path / "ok", "GREETING", TEMPLATE, SCHEMA))])
    assert good.exit_code == 0 and "ok" in good.output
    broken = _write(tmp_path / "bad", "GREETING", "{% block system %}{{ x }", SCHEMA)
    failed = CliRunner().invoke(cli, ["packs", "lint", str(broken), "--json"])
    assert failed.exit_code == 1 and json.loads(failed.output)["ok"] is False
    assert CliRunner().invoke(cli, ["packs", "lint", str(tmp_path / "missing.j2")]).exit_code == 2

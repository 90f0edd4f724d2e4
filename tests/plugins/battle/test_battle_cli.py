"""``comfyvn battle sim|resolve|plan``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli


def run(kernel: Kernel, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(make_cli(kernel), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_sim_json_matches_the_http_shape(battle_kernel: Callable[..., Kernel], tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"a": {"base": 10, "str": 2}, "b": 11}))
    code, out, _ = run(battle_kernel(), "battle", "sim", "--stats", f"@{stats}", "--seed", "9", "--narrate", "--json")
    assert code == 0
    body = json.loads(out)
    assert body["seed"] == 9 and body["narration"]["source"] == "template" and len(body["log"]) == 3


def test_sim_human_output_and_contender_shortcut(battle_kernel: Callable[..., Kernel]) -> None:
    code, out, _ = run(battle_kernel(), "battle", "sim", "--contender", "a=10", "--contender", "b=1", "--seed", "2")
    assert code == 0 and out.startswith("outcome: a") and "seed: 2 (request)" in out


def test_resolve_prints_the_pick(battle_kernel: Callable[..., Kernel]) -> None:
    code, out, _ = run(battle_kernel(), "battle", "resolve", "b", "--state", '{"variables": {}}', "--json")
    body = json.loads(out)
    assert code == 0 and body["editor_prompt"] == "Pick winner"
    assert body["state"]["variables"]["battle_outcome"] == "b"


def test_plan_prints_json(battle_kernel: Callable[..., Kernel]) -> None:
    code, out, _ = run(battle_kernel(), "battle", "plan", "a", "b", "--rounds", "2", "--world", "weather=rain")
    assert code == 0 and json.loads(out)["plan"]["world"] == {"weather": "rain"}


def test_bad_input_is_one_line_and_exit_2(battle_kernel: Callable[..., Kernel]) -> None:
    kernel = battle_kernel()
    for args, field in [
        (["battle", "sim", "--stats", '{"a": {"str": -1}}'], "stats.a.str"),
        (["battle", "sim"], "stats"),
        (["battle", "sim", "--contender", "a"], "contender"),
        (["battle", "sim", "--stats", "{"], "stats"),
        (["battle", "resolve", "a", "--rounds", "0"], "rounds"),
    ]:
        code, _, err = run(kernel, *args)
        assert code == 2, args
        assert f"(field: {field})" in err and len(err.strip().splitlines()) == 1


def test_sim_respects_the_flag(battle_kernel: Callable[..., Kernel]) -> None:
    kernel = battle_kernel(env={"COMFYVN_FEATURE_ENABLE_BATTLE_SIM": "off"})
    code, _, err = run(kernel, "battle", "sim", "--contender", "a=1")
    assert code == 2 and "enable_battle_sim" in err


@pytest.mark.parametrize(
    ("stats", "field"),
    [
        ("[" * 100_000 + "]" * 100_000, "stats"),
        ('{"hero": ' + "9" * 5000 + "}", "stats.hero"),
        ('{"hero": NaN, "rival": 1}', "stats.hero"),
        ('{"hero": 1, "\\ud800": 2}', "stats.\\ud800"),
    ],
)
def test_hostile_stats_are_one_line_and_exit_2(battle_kernel: Callable[..., Kernel], stats: str, field: str) -> None:
    code, out, err = run(battle_kernel(), "battle", "sim", "--stats", stats)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.endswith(f"(field: {field})\n") and err.count("\n") == 1

"""ask_pack against a scripted OpenAI-compatible server: valid answers, one repair round, then a clear failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from comfyvn import Kernel, hookimpl
from comfyvn.errors import Blocked, UpstreamError
from comfyvn_narrator.ask import ask_pack, parse_answer
from comfyvn_narrator.packs import load_pack, validate

from . import model_help
from .model_help import MODEL, Script

scripted_base = model_help.scripted_base
script = model_help.script
model_kernel = model_help.model_kernel
offline_kernel = model_help.offline_kernel

INPUTS = {
    "scene_id": "harbour",
    "node_id": "harbour.n1",
    "node_text": "The ferry horn sounds across the water.",
    "choices": [{"id": "board", "text": "Board the ferry"}, {"id": "stay", "text": "Stay ashore"}],
    "variables": {"trust": 2},
    "message": "What happens next?",
}
GOOD = {
    "narration": "Gulls wheel over the ramp.",
    "rationale": "Keeps the pace.",
    "choice_id": "board",
    "vars_patch": {},
}


def test_a_valid_answer_is_returned_as_given(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel()
    script.replies(GOOD)
    answer = ask_pack(kernel, "NARRATOR_TURN", INPUTS, scene_id="harbour")
    assert answer.answer == GOOD
    assert (answer.adapter, answer.provider, answer.model, answer.repaired) == (
        "openai",
        "lmstudio_local",
        MODEL,
        False,
    )
    assert answer.usage["total_tokens"] == 15
    [request] = script.log()
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "The ferry horn sounds across the water." in request["messages"][1]["content"]
    assert "- board: Board the ferry" in request["messages"][1]["content"]
    assert request["max_tokens"] == load_pack("NARRATOR_TURN").max_tokens


def test_invalid_json_then_a_valid_answer_is_repaired_once(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel()
    script.replies('{"narration": "Gulls wheel", ', "```json\n" + json.dumps(GOOD) + "\n```")
    answer = ask_pack(kernel, "NARRATOR_TURN", INPUTS)
    assert answer.answer == GOOD and answer.repaired
    assert answer.usage["total_tokens"] == 30
    first, second = script.log()
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2] == {"role": "assistant", "content": '{"narration": "Gulls wheel", '}
    repair = second["messages"][3]
    assert (
        repair["role"] == "user"
        and "not JSON" in repair["content"]
        and "corrected JSON object only" in repair["content"]
    )


def test_a_schema_problem_is_named_in_the_repair_request(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel()
    missing = {k: v for k, v in GOOD.items() if k != "rationale"}
    script.replies(missing, GOOD)
    assert ask_pack(kernel, "NARRATOR_TURN", INPUTS).repaired
    assert "'rationale' is a required property" in script.log()[1]["messages"][-1]["content"]


def test_a_choice_that_was_not_offered_is_repaired(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel()
    script.replies({**GOOD, "choice_id": "fly_away"}, GOOD)
    assert ask_pack(kernel, "NARRATOR_TURN", INPUTS).answer["choice_id"] == "board"
    assert "'fly_away' is not an offered choice" in script.log()[1]["messages"][-1]["content"]


def test_invalid_twice_is_a_clear_error(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel()
    script.replies("I'd rather tell you a story.", {**GOOD, "vars_patch": "none"})
    with pytest.raises(UpstreamError) as raised:
        ask_pack(kernel, "NARRATOR_TURN", INPUTS)
    error = raised.value
    assert error.code == "invalid_model_answer" and "after one repair" in error.message
    assert error.details["problems"] == ["vars_patch: 'none' is not of type 'object'"]
    assert error.details["pack"] == "NARRATOR_TURN" and error.details["provider"] == "lmstudio_local"
    assert len(script.log()) == 2  # exactly one repair round


def test_a_caller_check_takes_part_in_the_repair(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel()
    script.replies({**GOOD, "narration": "short"}, GOOD)

    def long_enough(answer: dict[str, Any]) -> list[str]:
        return [] if len(answer["narration"]) > 10 else ["narration: too short"]

    assert ask_pack(kernel, "NARRATOR_TURN", INPUTS, check=long_enough).answer == GOOD
    assert "narration: too short" in script.log()[1]["messages"][-1]["content"]


class BlockingGate:
    @hookimpl
    def llm_call_gate(self, prompt: str) -> dict[str, Any] | None:
        return {"reason": "ferries are off limits"} if "ferry" in prompt else None


def test_a_gate_block_passes_through_and_nothing_is_sent(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(BlockingGate())
    with pytest.raises(Blocked) as raised:
        ask_pack(kernel, "NARRATOR_TURN", INPUTS)
    assert raised.value.code == "llm_blocked"
    assert script.log() == []


def test_the_gate_applies_to_offline_answers_too(offline_kernel: Callable[..., Kernel]) -> None:
    with pytest.raises(Blocked):
        ask_pack(offline_kernel(BlockingGate()), "NARRATOR_TURN", INPUTS)


def test_offline_answers_are_deterministic_and_say_so(offline_kernel: Callable[..., Kernel]) -> None:
    first = ask_pack(offline_kernel(), "NARRATOR_TURN", INPUTS)
    again = ask_pack(offline_kernel(), "NARRATOR_TURN", dict(INPUTS))
    assert first == again
    assert (first.adapter, first.provider, first.model) == ("offline", "offline", "codex/offline-narrator")
    assert validate(load_pack("NARRATOR_TURN"), first.answer) == []
    assert first.answer["choice_id"] is None and first.answer["vars_patch"] == {}
    assert "The ferry horn sounds across the water." in first.answer["narration"]
    other = ask_pack(offline_kernel(), "NARRATOR_TURN", {**INPUTS, "node_text": "Rain on the pier."})
    assert "Rain on the pier." in other.answer["narration"]


def test_roles_mapped_to_offline_are_offline(model_kernel: Callable[..., Kernel], script: Script) -> None:
    kernel = model_kernel(roles=())  # role mapping on, but the narrator keeps its offline default
    assert ask_pack(kernel, "NARRATOR_TURN", INPUTS).adapter == "offline"
    assert script.log() == []


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}```', {"a": 1}),
        ('Here you go: {"a": 1} — enjoy', {"a": 1}),
        ("[1, 2]", [1, 2]),
    ],
)
def test_parse_answer_reads_json_in_its_usual_wrappings(reply: str, expected: Any) -> None:
    assert parse_answer(reply) == (expected, [])


@pytest.mark.parametrize("reply", ["", "no json here", '{"a": ', "[" * 100_000])
def test_parse_answer_names_what_is_wrong(reply: str) -> None:
    value, problems = parse_answer(reply)
    assert value is None and len(problems) == 1 and problems[0].startswith("(root):")

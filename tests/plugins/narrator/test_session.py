"""Narrator sessions as a domain: determinism across processes, persistence, locking, and the queue invariants."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import comfyvn_llm.plugin
import comfyvn_narrator.plugin
import pytest
from comfyvn import Kernel, RuntimePaths, create_kernel
from comfyvn.digest import digest
from comfyvn.errors import Conflict, Unprocessable
from comfyvn.wire import parse_request
from comfyvn_narrator import session
from comfyvn_narrator.ask import PackAnswer
from comfyvn_narrator.state_store import HISTORY_LIMIT, MAX_PROPOSALS, MAX_TURNS, SessionStore
from comfyvn_narrator.wire import ApplyRequest, ModeRequest, ProposeRequest, RollbackRequest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

SEQUENCE = textwrap.dedent(
    '''
    """One fixed sequence of narrator operations on a fresh runtime root; prints the outcome as JSON."""
    import json, sys
    import comfyvn_llm.plugin, comfyvn_narrator.plugin
    from comfyvn import RuntimePaths, create_kernel
    from comfyvn.wire import parse_request
    from comfyvn_narrator import session
    from comfyvn_narrator.wire import ApplyRequest, ModeRequest, ProposeRequest, RollbackRequest

    def run(root):
        kernel = create_kernel(
            plugins=[comfyvn_llm.plugin, comfyvn_narrator.plugin], paths=RuntimePaths.under(root), env={}, strict=True
        )
        def req(data, cls):
            return parse_request(data, cls)
        start = {"scene_id": "harbour", "node_id": "harbour.dock", "mode": "propose", "variables": {"trust": 1}}
        session.set_mode(kernel, req(start, ModeRequest))
        choices = [{"id": "board", "text": "Board the ship"}, {"id": "wait", "text": "Wait"}]
        for message in ("The bell rings.", "Mira hesitates."):
            body = {"scene_id": "harbour", "message": message, "node_text": "Fog.", "choices": choices}
            session.propose(kernel, req(body, ProposeRequest))
        session.apply(kernel, req({"scene_id": "harbour", "proposal_id": "p0001"}, ApplyRequest))
        session.propose(kernel, req({"scene_id": "harbour", "node_id": "harbour.ship", "pov": "mira"}, ProposeRequest))
        session.apply(kernel, req({"scene_id": "harbour", "proposal_id": "p0003"}, ApplyRequest))
        session.rollback(kernel, req({"scene_id": "harbour"}, RollbackRequest))
        state = session.status(kernel, "harbour")
        del state["timestamp"]
        for proposal in state["queue"]:
            del proposal["created_at"]
        return state

    if __name__ == "__main__":
        print(json.dumps(run(sys.argv[1]), sort_keys=True))
    '''
)


def _kernel(root: Path) -> Kernel:
    return create_kernel(
        plugins=[comfyvn_llm.plugin, comfyvn_narrator.plugin], paths=RuntimePaths.under(root), env={}, strict=True
    )


def test_the_same_sequence_gives_the_same_queue_and_digests_in_another_process(tmp_path: Path) -> None:
    script = tmp_path / "sequence.py"
    script.write_text(SEQUENCE, encoding="utf-8")
    here = runpy.run_path(str(script), run_name="sequence")["run"](tmp_path / "here")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "there")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    there = json.loads(done.stdout)
    assert there == json.loads(json.dumps(here))
    assert [(p["id"], p["status"]) for p in here["queue"]] == [
        ("p0001", "applied"),
        ("p0002", "pending"),
        ("p0003", "rolled_back"),
    ]
    assert here["turn_counts"] == {"harbour.dock": 2, "harbour.ship": 0}
    for proposal in here["queue"]:
        meta = proposal["vars_patch"]["$narrator"]
        content = {
            "id": proposal["id"],
            "scene_id": "harbour",
            "node_id": proposal["node_id"],
            "role": "narrator",
            "turn_index": proposal["turn_index"],
            "message": proposal["message"],
            "narration": proposal["narration"],
            "rationale": proposal["rationale"],
            "choice_id": proposal["choice_id"],
            "vars_patch": {k: v for k, v in proposal["vars_patch"].items() if k != "$narrator"},
        }
        assert meta["digest"] == digest(content)  # over the content only: no time, no usage
        assert proposal["metadata"]["adapter"] == "offline"


def test_sessions_survive_a_restart(tmp_path: Path) -> None:
    first = _kernel(tmp_path)
    start = {"scene_id": "s", "node_id": "n", "mode": "propose", "variables": {"gold": 1}, "pov": "mira"}
    session.set_mode(first, parse_request(start, ModeRequest))
    session.propose(first, parse_request({"scene_id": "s", "message": "hello"}, ProposeRequest))
    session.apply(first, parse_request({"scene_id": "s", "proposal_id": "p0001"}, ApplyRequest))
    session.stop(first, "s")
    before = session.status(first, "s")
    files = sorted(p.name for p in (tmp_path / "data" / "plugins" / "narrator" / "sessions").iterdir())
    assert files == [".locks", "s.json"]  # no temporary file left behind

    second = _kernel(tmp_path)
    after = session.status(second, "s")
    assert {**after, "timestamp": 0} == {**before, "timestamp": 0}
    assert after["halted"] and after["pov"] == "mira" and after["history_size"] == 1
    session.set_mode(second, parse_request({"scene_id": "s", "mode": "propose"}, ModeRequest))
    _, proposal = session.propose(second, parse_request({"scene_id": "s"}, ProposeRequest))
    assert proposal["id"] == "p0002" and proposal["turn_index"] == 2
    undone = session.rollback(second, parse_request({"scene_id": "s"}, RollbackRequest))[1]
    assert [p["id"] for p in undone] == ["p0001"]  # the ring buffer came back from the file too


def test_an_unreadable_session_file_is_422_without_its_path(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    session.set_mode(kernel, parse_request({"scene_id": "s", "node_id": "n", "mode": "observe"}, ModeRequest))
    path = SessionStore.for_kernel(kernel).path("s")
    path.write_text('{"format": 1, "session": {"scene_id": "s"}}', encoding="utf-8")
    with pytest.raises(Unprocessable) as caught:
        session.status(kernel, "s")
    assert caught.value.code == "session_unreadable" and str(tmp_path) not in caught.value.message


def _fake_ask(delay: float = 0.0) -> Callable[..., PackAnswer]:
    """An `ask_pack` stand-in: narration from the message, a patch recording which proposal merged."""

    def ask(kernel: Kernel, pack: str, inputs: Mapping[str, Any], **options: Any) -> PackAnswer:
        assert pack == "NARRATOR_TURN" and options["role"] == "narrator"
        time.sleep(delay)
        tag = str(inputs["message"] or "x")
        answer = {"narration": f"n:{tag}", "rationale": "r", "choice_id": None, "vars_patch": {"seen": {tag: 1}}}
        return PackAnswer(answer, "fake", "fake-1", "fake")

    return ask


def test_concurrent_requests_lose_no_write_and_respect_the_cap(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    session.set_mode(kernel, parse_request({"scene_id": "s", "node_id": "a", "mode": "propose"}, ModeRequest))
    outcomes: list[str] = []
    ask = _fake_ask(delay=0.02)

    def propose(node: str, tag: str) -> None:
        request = parse_request({"scene_id": "s", "node_id": node, "message": tag}, ProposeRequest)
        try:
            outcomes.append(session.propose(kernel, request, ask=ask)[1]["id"])
        except Conflict as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=propose, args=("a" if i < 6 else "b", f"t{i}")) for i in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count("turn_cap") == 3  # six tried node a: three got turns
    ids = sorted(o for o in outcomes if o != "turn_cap")
    assert ids == [f"p{n:04d}" for n in range(1, 7)]
    state = session.status(kernel, "s")
    assert state["turn_counts"] == {"a": 3, "b": 3} and len(state["queue"]) == 6

    appliers = [
        threading.Thread(
            target=session.apply, args=(kernel, parse_request({"scene_id": "s", "proposal_id": i}, ApplyRequest))
        )
        for i in ids
    ]
    for thread in appliers:
        thread.start()
    for thread in appliers:
        thread.join(60)
    state = session.status(kernel, "s")
    merged = {p["message"] for p in state["queue"]}
    assert set(state["variables"]["seen"]) == merged and state["history_size"] == 6


class SessionMachine(RuleBasedStateMachine):
    """Random sequences of operations on one scene; after each, the queue and cap invariants must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="narrator-"))
        self.kernel = _kernel(self.root)
        self.ask = _fake_ask()
        self.created = 0
        self.applied: list[str] = []  # proposals applied and not rolled back, in apply order
        session.set_mode(self.kernel, parse_request({"scene_id": "s", "node_id": "a", "mode": "propose"}, ModeRequest))

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _state(self) -> dict[str, Any]:
        return {**session.status(self.kernel, "s"), "timestamp": 0}

    @rule(node=st.sampled_from(["a", "b"]))
    def propose(self, node: str) -> None:
        before = self._state()
        request = parse_request({"scene_id": "s", "node_id": node, "message": f"m{self.created}"}, ProposeRequest)
        try:
            _, proposal = session.propose(self.kernel, request, ask=self.ask)
        except Conflict as exc:
            expected = "halted" if before["halted"] else "observe_mode" if before["mode"] == "observe" else "turn_cap"
            assert exc.code == expected
            if exc.code == "turn_cap":
                assert before["turn_counts"][node] == MAX_TURNS
            assert self._state() == before  # a refusal changes nothing
            return
        self.created += 1
        live = {
            p["turn_index"] for p in before["queue"] if p["node_id"] == node and p["status"] in ("pending", "applied")
        }
        assert proposal["id"] == f"p{self.created:04d}"
        assert proposal["turn_index"] == min(set(range(1, MAX_TURNS + 1)) - live)

    @rule(pick=st.integers(0, 40))
    def apply(self, pick: int) -> None:
        before = self._state()
        if not before["queue"]:
            return
        proposal = before["queue"][pick % len(before["queue"])]
        try:
            session.apply(self.kernel, parse_request({"scene_id": "s", "proposal_id": proposal["id"]}, ApplyRequest))
        except Conflict as exc:
            expected = {"applied": "duplicate_apply", "rolled_back": "proposal_rolled_back"}.get(proposal["status"])
            if before["halted"]:
                expected = "halted"
            elif before["mode"] == "observe":
                expected = "observe_mode"
            assert exc.code == expected
            assert self._state() == before
            return
        assert proposal["status"] == "pending"
        self.applied.append(proposal["id"])

    @rule(steps=st.integers(1, 4))
    def rollback(self, steps: int) -> None:
        before = self._state()
        try:
            undone = session.rollback(self.kernel, parse_request({"scene_id": "s", "steps": steps}, RollbackRequest))[1]
        except Conflict as exc:
            assert exc.code == "nothing_to_rollback" and before["history_size"] < steps
            assert self._state() == before
            return
        assert [p["id"] for p in undone] == self.applied[::-1][:steps]
        del self.applied[-steps:]

    @rule()
    def stop(self) -> None:
        assert session.stop(self.kernel, "s")["halted"]

    @rule(mode=st.sampled_from(["observe", "propose", "apply"]))
    def set_mode(self, mode: str) -> None:
        state = session.set_mode(self.kernel, parse_request({"scene_id": "s", "mode": mode}, ModeRequest))
        assert state["mode"] == mode and not state["halted"]

    @invariant()
    def queue_and_caps_hold(self) -> None:
        state = self._state()
        ids = [p["id"] for p in state["queue"]]
        assert ids == [f"p{n:04d}" for n in range(1, self.created + 1)]
        for node, count in state["turn_counts"].items():
            live = [p for p in state["queue"] if p["node_id"] == node and p["status"] != "rolled_back"]
            assert count == len(live) <= MAX_TURNS
        assert [p["id"] for p in state["queue"] if p["status"] == "applied"] == sorted(self.applied)
        assert state["history_size"] == min(len(self.applied), HISTORY_LIMIT)
        # Only applies change the variables: they hold exactly the applied proposals' patches.
        applied_messages = {p["message"] for p in state["queue"] if p["status"] == "applied"}
        assert set(state["variables"].get("seen", {})) == applied_messages
        assert state["active"] == (not state["halted"] and state["mode"] != "observe")


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(stateful_step_count=25, deadline=None)


def test_the_queue_is_bounded_and_keeps_pending_proposals(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    ask = _fake_ask()
    session.set_mode(kernel, parse_request({"scene_id": "s", "node_id": "n0", "mode": "propose"}, ModeRequest))

    def propose(index: int) -> dict[str, Any]:
        body = {"scene_id": "s", "node_id": f"n{index // MAX_TURNS}", "message": f"m{index}"}
        return session.propose(kernel, parse_request(body, ProposeRequest), ask=ask)[1]

    for index in range(MAX_PROPOSALS):
        propose(index)
    with pytest.raises(Conflict) as caught:
        propose(MAX_PROPOSALS)
    assert caught.value.code == "queue_full"
    session.apply(kernel, parse_request({"scene_id": "s", "proposal_id": "p0001"}, ApplyRequest))
    assert propose(MAX_PROPOSALS)["id"] == f"p{MAX_PROPOSALS + 1:04d}"
    state = session.status(kernel, "s")
    ids = [p["id"] for p in state["queue"]]
    assert len(ids) == MAX_PROPOSALS and ids[0] == "p0002"  # the oldest settled one made room
    rolled = session.rollback(kernel, parse_request({"scene_id": "s"}, RollbackRequest))
    assert rolled[1] == [] and rolled[0]["variables"] == {} and rolled[0]["turn_counts"]["n0"] == 2


def test_a_rolled_back_turn_frees_its_number_and_live_turns_never_share_one(tmp_path: Path) -> None:
    kernel = _kernel(tmp_path)
    ask = _fake_ask()
    session.set_mode(kernel, parse_request({"scene_id": "s", "node_id": "n", "mode": "propose"}, ModeRequest))

    def propose() -> dict[str, Any]:
        return session.propose(kernel, parse_request({"scene_id": "s", "message": "m"}, ProposeRequest), ask=ask)[1]

    assert [propose()["turn_index"] for _ in range(MAX_TURNS)] == [1, 2, 3]
    session.apply(kernel, parse_request({"scene_id": "s", "proposal_id": "p0001"}, ApplyRequest))
    session.rollback(kernel, parse_request({"scene_id": "s"}, RollbackRequest))
    again = propose()
    assert (again["id"], again["turn_index"]) == ("p0004", 1)
    live = [p["turn_index"] for p in session.status(kernel, "s")["queue"] if p["status"] != "rolled_back"]
    assert sorted(live) == [1, 2, 3]

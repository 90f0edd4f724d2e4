"""Same input and seed → identical output and hash, in this process and in a fresh one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any

from comfyvn_battle.engine import parse_stats, simulate
from comfyvn_battle.narration import NarrationRequest, compose_log, template_narration
from comfyvn_battle.planner import build_plan
from hypothesis import given, settings
from hypothesis import strategies as st


def digest(case: dict[str, Any]) -> str:
    """Everything the battle domain derives from one (stats, seed, pov, rounds) case, hashed."""
    contenders = parse_stats(case["stats"])
    sim = simulate(contenders, case["seed"])
    request = NarrationRequest(
        mode="sim",
        outcome=sim.outcome,
        contenders=tuple(c.name for c in contenders),
        pov=case["pov"],
        rounds=case["rounds"],
        seed=sim.seed,
        rng=sim.rng,
        weights=sim.weights,
    )
    out = {
        "breakdown": [b.as_dict() for b in sim.breakdown],
        "weights": sim.weights_dict(),
        "rng": sim.rng.as_dict(),
        "outcome": sim.outcome,
        "provenance": sim.provenance(seed_source="request"),
        "log": compose_log(request),
        "narration": template_narration(request),
        "plan": build_plan([c.name for c in contenders], pov=case["pov"], rounds=case["rounds"]).as_dict(),
    }
    return hashlib.sha256(json.dumps(out, sort_keys=True).encode()).hexdigest()


CHILD = """
import json, sys
sys.path.insert(0, {here!r})
from test_battle_determinism import digest
print(json.dumps([digest(case) for case in json.load(sys.stdin)]))
"""

stat = st.floats(min_value=0, max_value=100, allow_nan=False)
names = st.text(alphabet="abcdefghijKLM _-é", min_size=1, max_size=10).filter(str.strip)
tables = st.dictionaries(
    names,
    stat
    | st.fixed_dictionaries(
        {"base": stat},
        optional={
            "str": stat,
            "agi": stat,
            "weapon_tier": stat,
            "status_mod": st.floats(-5, 5),
            "rng": st.floats(0, 10),
        },
    ),
    min_size=1,
    max_size=5,
).filter(lambda d: len({k.strip().lower() for k in d}) == len(d))
cases = st.lists(
    st.builds(
        lambda s, seed, pov, rounds: {"stats": s, "seed": seed, "pov": pov, "rounds": rounds},
        tables,
        st.integers(0, 2**64 - 1),
        st.sampled_from(["narrator", "x"]),
        st.integers(1, 8),
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=3)
@given(cases)
def test_hashes_are_identical_across_processes(batch: list[dict[str, Any]]) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    mine = [digest(case) for case in batch]
    assert mine == [digest(case) for case in batch]
    # A different hash seed in the child catches any dependence on set or dict iteration order.
    env = dict(os.environ, PYTHONHASHSEED="12345")
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(here=here)],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert json.loads(child.stdout) == mine

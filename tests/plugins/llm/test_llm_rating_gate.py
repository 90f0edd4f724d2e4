"""The rating plugin answering the llm call gate: an Adult prompt in sfw mode is 423 with an ack token until the
token is acknowledged and presented through the call's ``gate`` object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import comfyvn_rating.plugin
import comfyvn_scenario.plugin
from comfyvn import Kernel

ADULT = {"messages": [{"role": "user", "content": "an explicit nsfw scene"}]}


def test_rating_blocks_until_acknowledged(llm_kernel: Callable[..., Kernel], http_for: Any) -> None:
    kernel = llm_kernel(comfyvn_scenario.plugin, comfyvn_rating.plugin)
    http = http_for(kernel)
    assert http.post("/api/llm/test-call", json=CHAT_OK).status_code == 200
    blocked = http.post("/api/llm/test-call", json=ADULT)
    assert blocked.status_code == 423
    error = blocked.json()["error"]
    assert error["code"] == "llm_blocked" and error["blocked_by"][0]["rating"]["rating"] == "Adult"
    token = error["ack_token"]
    unacknowledged = http.post("/api/llm/test-call", json={**ADULT, "gate": {"rating_ack_token": token}})
    assert unacknowledged.status_code == 423
    assert http.post("/api/rating/ack", json={"token": token, "user": "ana"}).status_code == 200
    gate = {"rating_ack_token": token, "rating_acknowledged": True}
    allowed = http.post("/api/llm/test-call", json={**ADULT, "gate": gate})
    assert allowed.status_code == 200 and allowed.json()["adapter"] == "offline"


CHAT_OK = {"messages": [{"role": "user", "content": "a walk by the harbour"}]}

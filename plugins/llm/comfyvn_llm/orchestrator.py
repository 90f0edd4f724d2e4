"""Role orchestration: roles → ``(provider, model)``, sticky per scene, with token budgets and dry-run plans.

Stored in ``<config>/llm_roles.json`` (atomic writes): ``{"assignments": {role: {...}}, "sessions": {scene:
{role: {provider, model}}}}``. A scene's first real call for a role pins the role's assignment of that moment;
later calls in the scene keep it even if the assignment changes (``reset_sessions`` unpins). Budgets count the
prompt with `estimate_tokens` (about four characters a token), provider-neutral on purpose: the same request
gets the same decision whichever provider serves it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import Invalid, TooLarge
from comfyvn.paths import atomic_write_json
from comfyvn.wire import loads

from .adapters.offline import MODEL as OFFLINE_MODEL
from .adapters.offline import estimate_tokens

__all__ = ["OVER_BUDGET", "ROLES", "Assignment", "Plan", "RoleBook", "apply_budget"]

ROLES = ("narrator", "mc", "antagonist", "extras", "translator", "worldbuilder")
OVER_BUDGET = ("truncate", "refuse")
DEFAULT_BUDGET = 4096
MAX_SESSIONS = 2000


@attrs.frozen
class Assignment:
    """Who plays a role: a provider and model, a prompt budget and what to do beyond it."""

    role: str
    provider: str = "offline"
    model: str = OFFLINE_MODEL
    budget_tokens: int = DEFAULT_BUDGET
    over_budget: str = "truncate"
    params: Mapping[str, Any] = attrs.field(factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "params": dict(self.params)}


@attrs.frozen
class Plan:
    """The exact request a role would send, and what its budget did to it."""

    role: str
    scene_id: str | None
    provider: str
    model: str
    sticky: bool
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]
    budget: Mapping[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "scene_id": self.scene_id,
            "provider": self.provider,
            "model": self.model,
            "sticky": self.sticky,
            "messages": [dict(m) for m in self.messages],
            "params": dict(self.params),
            "budget": dict(self.budget),
        }


def check_role(role: Any, field: str = "role") -> str:
    """``role`` lower-cased when it is one of `ROLES`; `Invalid` otherwise."""
    if not isinstance(role, str) or role.lower() not in ROLES:
        raise Invalid(f"{field} must be one of {', '.join(ROLES)}", field=field, code="invalid_role")
    return role.lower()


def apply_budget(
    messages: Sequence[Mapping[str, str]], limit: int, policy: str
) -> tuple[tuple[Mapping[str, str], ...], dict[str, Any]]:
    """Fit ``messages`` into ``limit`` prompt tokens. ``truncate`` drops the oldest non-system messages (never
    the last one); ``refuse`` — or a prompt that cannot fit even so — raises `TooLarge` ``llm_budget_exceeded``.
    Returns the messages sent and the report ``{limit, policy, estimated, sent, action, dropped}``."""
    cost = [estimate_tokens(str(m.get("content") or "")) for m in messages]
    estimated = sum(cost)
    report: dict[str, Any] = {"limit": limit, "policy": policy, "estimated": estimated, "sent": estimated}
    if estimated <= limit:
        return tuple(messages), {**report, "action": "within", "dropped": 0}
    if policy == "refuse":
        raise TooLarge(
            f"the prompt is about {estimated} tokens, over the role's budget of {limit}: refused",
            field="messages",
            code="llm_budget_exceeded",
            details={"budget": {**report, "action": "refused", "dropped": 0}},
        )
    keep = [True] * len(messages)
    total = estimated
    for index, message in enumerate(messages[:-1]):
        if total <= limit:
            break
        if message.get("role") != "system":
            keep[index], total = False, total - cost[index]
    if total > limit:
        raise TooLarge(
            f"the prompt is about {estimated} tokens; even truncated it needs {total}, over the budget of {limit}",
            field="messages",
            code="llm_budget_exceeded",
            details={"budget": {**report, "sent": total, "action": "refused", "dropped": keep.count(False)}},
        )
    kept = tuple(m for m, k in zip(messages, keep, strict=True) if k)
    return kept, {**report, "sent": total, "action": "truncated", "dropped": keep.count(False)}


def parse_assignment(data: Any, field: str = "body") -> Assignment:
    """An `Assignment` from JSON ``{role, provider, model, budget_tokens?, over_budget?, params?}``."""
    if not isinstance(data, dict):
        raise Invalid(f"{field}: must be an object", field=field, code="invalid_request")
    unknown = sorted(set(data) - {"role", "provider", "model", "budget_tokens", "over_budget", "params"})
    if unknown:
        raise Invalid(f"{field}.{unknown[0]}: unknown field", field=f"{field}.{unknown[0]}", code="invalid_request")
    role = check_role(data.get("role"), f"{field}.role" if field != "body" else "role")
    values: dict[str, Any] = {"role": role}
    for key in ("provider", "model"):
        if key in data:
            if not isinstance(data[key], str) or not 0 < len(data[key]) <= 200:
                raise Invalid(f"{key}: must be a non-empty string", field=key, code="invalid_request")
            values[key] = data[key]
    if "budget_tokens" in data:
        budget = data["budget_tokens"]
        if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= 2_000_000:
            raise Invalid("budget_tokens: must be an integer 1-2000000", field="budget_tokens", code="invalid_request")
        values["budget_tokens"] = budget
    if "over_budget" in data:
        if data["over_budget"] not in OVER_BUDGET:
            raise Invalid("over_budget: must be truncate or refuse", field="over_budget", code="invalid_request")
        values["over_budget"] = data["over_budget"]
    if "params" in data:
        if not isinstance(data["params"], dict) or not set(data["params"]) <= {"temperature", "top_p", "max_tokens"}:
            raise Invalid("params: allows temperature, top_p, max_tokens", field="params", code="invalid_request")
        values["params"] = dict(data["params"])
    return Assignment(**values)


class RoleBook:
    """Assignments and sticky sessions in ``<config>/llm_roles.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        try:
            document = loads(self.path.read_bytes(), field="llm_roles.json")
        except FileNotFoundError:
            return {"assignments": {}, "sessions": {}}
        if not isinstance(document, dict):
            raise Invalid("llm_roles.json: expected an object", field="llm_roles.json", code="invalid_roles")
        document.setdefault("assignments", {})
        document.setdefault("sessions", {})
        return document

    def assignments(self) -> dict[str, Assignment]:
        """Every role's assignment (the offline default where none is stored)."""
        stored = self._read()["assignments"]
        return {
            role: parse_assignment({**stored[role], "role": role}, f"llm_roles.json.{role}")
            if role in stored
            else Assignment(role)
            for role in ROLES
        }

    def sessions(self) -> dict[str, dict[str, dict[str, str]]]:
        """Pinned ``{scene: {role: {provider, model}}}``."""
        return dict(self._read()["sessions"])

    def assign(self, assignment: Assignment, *, reset_sessions: bool = False) -> Assignment:
        """Store ``assignment``; with ``reset_sessions`` unpin the role in every scene."""
        with self._lock:
            document = self._read()
            merged = {**document["assignments"].get(assignment.role, {}), **assignment.to_wire()}
            merged.pop("role", None)
            document["assignments"][assignment.role] = merged
            if reset_sessions:
                for pins in document["sessions"].values():
                    pins.pop(assignment.role, None)
                document["sessions"] = {s: p for s, p in document["sessions"].items() if p}
            atomic_write_json(self.path, document)
        return self.assignments()[assignment.role]

    def plan(
        self,
        role: str,
        scene_id: str | None,
        messages: Sequence[Mapping[str, str]],
        params: Mapping[str, Any],
        *,
        pin: bool,
    ) -> Plan:
        """The request ``role`` would send in ``scene_id``; ``pin`` records the scene's session (real calls)."""
        role = check_role(role)
        assignment = self.assignments()[role]
        # The budget first: a refused request pins nothing.
        sent, budget = apply_budget(messages, assignment.budget_tokens, assignment.over_budget)
        provider, model, sticky = assignment.provider, assignment.model, False
        with self._lock:
            document = self._read()
            pinned = document["sessions"].get(scene_id, {}).get(role) if scene_id else None
            if isinstance(pinned, dict):
                provider, model, sticky = str(pinned["provider"]), str(pinned["model"]), True
            elif pin and scene_id:
                if scene_id not in document["sessions"] and len(document["sessions"]) >= MAX_SESSIONS:
                    oldest = next(iter(document["sessions"]))  # insertion order: forget the oldest scene
                    del document["sessions"][oldest]
                document["sessions"].setdefault(scene_id, {})[role] = {"provider": provider, "model": model}
                atomic_write_json(self.path, document)
        merged = {**assignment.params, **{k: v for k, v in params.items() if v is not None}}
        return Plan(role, scene_id, provider, model, sticky, sent, merged, budget)

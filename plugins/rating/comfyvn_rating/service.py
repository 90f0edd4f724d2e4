"""The rating use cases shared by HTTP, CLI and the gates: classification (overrides, the matrix, classifier
plugins), decisions with acknowledgement tokens, overrides, acknowledgements, the mode, events.

``RatingService(kernel)`` is cheap to build (it holds no state of its own; everything lives in the store
files), so each request, command or gate call makes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.errors import Invalid
from comfyvn_scenario import ProjectStore

from .matrix import DESCRIPTIONS, LEVELS, MATRIX, RISKY, RatingResult, classify, level_index, normalise_rating
from .project import ProjectRating, project_item_id, rate_project
from .store import MODES, Override, RatingStore
from .wire import ClassifyRequest, check_mode

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["API_FLAG", "MODE_ENV", "STREAM_FLAG", "Decision", "RatingService"]

API_FLAG = "enable_rating_api"
STREAM_FLAG = "enable_rating_modder_stream"
MODE_ENV = "COMFYVN_RATING_MODE"
log = structlog.get_logger("comfyvn.rating")

Decision = dict[str, Any]


class RatingService:
    """Rating decisions for one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.store = RatingStore(kernel.paths.config / "rating")

    # -- mode ------------------------------------------------------------------------------------------
    def mode(self) -> str:
        """``COMFYVN_RATING_MODE`` when set to a mode, else ``<config>/rating/settings.json``, else ``sfw``."""
        env = self.kernel.env.get(MODE_ENV, "").strip().lower()
        if env in MODES:
            return env
        if env:
            log.warning("ignoring invalid rating mode", variable=MODE_ENV, value=env[:40])
        return self.store.mode()

    def set_mode(self, mode: str) -> dict[str, Any]:
        self.store.set_mode(check_mode(mode))
        log.info("rating mode set", mode=mode)
        return self.describe_mode()

    def describe_mode(self) -> dict[str, Any]:
        env = self.kernel.env.get(MODE_ENV, "").strip().lower()
        return {"ok": True, "mode": self.mode(), "modes": list(MODES), "source": "env" if env in MODES else "settings"}

    # -- classification --------------------------------------------------------------------------------
    def classify(
        self, item_id: str, payload: Mapping[str, Any] | None, overrides: Mapping[str, Override]
    ) -> RatingResult:
        """An override when a reviewer pinned one; else the matrix, raised by any classifier plugin."""
        override = overrides.get(item_id)
        if override is not None:
            return override.to_result()
        result = classify(item_id, payload)
        for plugin, answer in self.kernel.plugins.call_each(
            "classify_rating", on_error="log", item_id=item_id, payload=dict(payload or {})
        ):
            raised = _plugin_result(plugin, answer, result)
            if raised is not None:
                result = raised
        return result

    def classify_project(self, project: Any) -> ProjectRating:
        """Every item of ``project`` rated (one read of the overrides), aggregated with its drivers."""
        overrides = self.store.overrides()
        return rate_project(project, lambda item_id, payload: self.classify(item_id, payload, overrides), overrides)

    # -- decisions -------------------------------------------------------------------------------------
    def decide(
        self,
        result: RatingResult,
        *,
        mode: str,
        acknowledged: bool,
        action: str,
        ack_token: str | None,
    ) -> Decision:
        """The wire's decision: in ``sfw`` mode M/Adult need an acknowledged token naming this item.

        ``ack_status``: ``not_required``; ``issued`` (a token to acknowledge — the open one for this item,
        action and rating, or a new one); ``pending`` (``acknowledged`` was claimed, but the token is not
        acknowledged yet, names another item or covers a lower rating — the answer carries a token to
        acknowledge); ``verified`` (allowed).
        """
        item_id = result.item_id
        requires_ack = mode == "sfw" and result.rating in RISKY
        allowed, status, token = True, "not_required", ack_token
        if requires_ack:
            if acknowledged and self.store.verified(ack_token, item_id, result.rating) is not None:
                status = "verified"
            else:
                allowed = False
                status = "pending" if acknowledged else "issued"
                known = self.store.ack(ack_token) if ack_token else None
                # The caller's token when it is this item's (open, or acknowledged and covering the rating):
                # a request that only forgot `acknowledged` gets its own token back, not a new one.
                reusable = known is not None and (
                    (known["item_id"] == item_id and known["status"] == "issued")
                    or self.store.verified(ack_token, item_id, result.rating) is not None
                )
                token = ack_token if reusable else self.store.issue(item_id, action, result.rating)["token"]
        decision: Decision = {
            "ok": True,
            "item_id": item_id,
            "rating": result.to_wire(),
            "mode": mode,
            "allowed": allowed,
            "requires_ack": requires_ack,
            "ack_token": token,
            "ack_status": status,
            "action": action,
        }
        log.info(
            "rating decision",
            item_id=item_id,
            rating=result.rating,
            source=result.source,
            mode=mode,
            action=action,
            ack_status=status,
            allowed=allowed,
        )
        self.emit(
            "on_rating_decision",
            {
                "item_id": item_id,
                "rating": result.rating,
                "nsfw": result.nsfw,
                "confidence": round(result.confidence, 3),
                "mode": mode,
                "source": result.source,
                "matched": {level: list(hits) for level, hits in result.matched.items()},
                "ack_status": status,
                "allowed": allowed,
                "action": action,
            },
        )
        return decision

    def evaluate_project(
        self, project: Any, *, action: str, acknowledged: bool, ack_token: str | None, mode: str | None = None
    ) -> tuple[Decision, ProjectRating]:
        """Rate ``project`` as a whole and decide (the export gate and ``classify`` with ``project``)."""
        rated = self.classify_project(project)
        decision = self.decide(
            rated.result,
            mode=mode or self.mode(),
            acknowledged=acknowledged,
            action=action,
            ack_token=ack_token,
        )
        decision["project"] = {"id": str(project.id), **rated.to_wire()}
        return decision, rated

    def classify_request(self, req: ClassifyRequest) -> Decision:
        """``POST /api/rating/classify``: a payload, or with ``project`` a store project as a whole."""
        mode = req.mode or self.mode()
        if req.project is not None:
            expected = project_item_id(req.project)
            if req.item_id != expected:
                raise Invalid(f"with project, item_id must be {expected!r}", field="item_id", code="invalid_item_id")
            stored = ProjectStore.for_kernel(self.kernel).load(req.project)
            decision, _ = self.evaluate_project(
                stored.project, action=req.action, acknowledged=req.acknowledged, ack_token=req.ack_token, mode=mode
            )
            return decision
        result = self.classify(req.item_id, req.payload, self.store.overrides())
        return self.decide(result, mode=mode, acknowledged=req.acknowledged, action=req.action, ack_token=req.ack_token)

    # -- overrides and acknowledgements -----------------------------------------------------------------
    def put_override(self, item_id: str, rating: str, reviewer: str, reason: str, scope: str) -> Override:
        record = self.store.put_override(item_id, rating, reviewer, reason, scope)
        log.info("rating override stored", item_id=item_id, rating=rating, reviewer=reviewer, scope=scope)
        self.emit("on_rating_override", {**record.to_wire(), "removed": False})
        return record

    def delete_override(self, item_id: str) -> Override:
        record = self.store.delete_override(item_id)
        log.info("rating override removed", item_id=item_id)
        self.emit("on_rating_override", {**record.to_wire(), "removed": True})
        return record

    def acknowledge(self, token: str, user: str, notes: str | None) -> dict[str, Any]:
        entry = self.store.acknowledge(token, user, notes)
        log.info("rating acknowledged", item_id=entry.get("item_id"), action=entry.get("action"), user=user)
        self.emit(
            "on_rating_acknowledged",
            {key: entry.get(key) for key in ("token", "item_id", "action", "rating", "user", "acknowledged_at")},
        )
        return entry

    # -- the rest --------------------------------------------------------------------------------------
    def matrix(self) -> dict[str, Any]:
        """``GET /api/rating/matrix``: the levels, their terms, precedence, default and the mode."""
        return {
            "ok": True,
            "levels": list(LEVELS),
            "precedence": list(reversed(LEVELS)),
            "default": "T",
            "mode": self.mode(),
            "modes": list(MODES),
            "matrix": {
                level: {
                    "keywords": list(MATRIX[level][0]),
                    "tags": list(MATRIX[level][1]),
                    "nsfw": level in RISKY,
                    "description": DESCRIPTIONS[level],
                }
                for level in reversed(LEVELS)
            },
        }

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        """Emit a rating event when ``enable_rating_modder_stream`` is on (off by default)."""
        if self.kernel.flags.is_enabled(STREAM_FLAG):
            self.kernel.events.emit(event, payload)


def _plugin_result(plugin: str, answer: Any, current: RatingResult) -> RatingResult | None:
    """A classifier plugin's answer as a result when it is valid and higher than ``current``, else None."""
    if answer is None:
        return None
    raw = answer.get("rating") if isinstance(answer, dict) else None
    rating = normalise_rating(raw) if isinstance(raw, str) else None
    if rating is None:
        log.warning("ignoring a rating classifier's answer", plugin=plugin, problem="no valid rating")
        return None
    if level_index(rating) <= level_index(current.rating):
        return None
    confidence = answer.get("confidence")
    reasons = answer.get("reasons")
    return RatingResult(
        current.item_id,
        rating,
        float(confidence) if isinstance(confidence, int | float) and 0 <= confidence <= 1 else 0.85,
        tuple(str(r)[:200] for r in reasons[:20])
        if isinstance(reasons, list) and reasons
        else (f"classifier:{plugin}",),
        current.matched,
        classifier=plugin,
    )


def project_gate_item(project: Any) -> str:
    """The item id the export gate decides for (the project as a whole)."""
    return project_item_id(str(project.id))

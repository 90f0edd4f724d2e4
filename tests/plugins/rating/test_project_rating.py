"""Whole projects: an adult SillyTavern chat imported through the real importer is rated Adult with the nodes
that drove it; overrides of a node or of the project change the answer and stick across a restart; the
``classify_rating`` hook can raise a rating, never lower it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from comfyvn import Kernel, hookimpl
from comfyvn_rating import RatingService, rate_project
from comfyvn_rating.matrix import classify
from comfyvn_scenario import Project, ProjectStore
from rating_fixtures import import_adult_chat
from structlog.testing import capture_logs


def _project(nodes: list[dict[str, Any]], **meta: Any) -> Project:
    scene = {"id": "s", "start": nodes[0]["id"], "nodes": nodes}
    return Project(meta={"id": "p", "title": "P", "scenes": ["s"], "start": "s", **meta}, scenes={"s": scene})


def _rated(project: Project) -> Any:
    return rate_project(project, lambda item_id, payload: classify(item_id, payload), {})


def test_an_adult_chat_is_rated_adult_with_its_driving_nodes(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    project_id = import_adult_chat(kernel)
    project = ProjectStore.for_kernel(kernel).load(project_id).project
    rated = RatingService(kernel).classify_project(project)
    assert rated.result.rating == "Adult" and rated.result.nsfw and rated.result.item_id == f"project:{project_id}"
    nodes = [d for d in rated.drivers if d["kind"] == "node"]
    # Each driving node really says what its matched terms claim (checked against the stored scene).
    texts = {(sid, n["id"]): n.get("text", "").lower() for sid, scene in project.scenes.items() for n in scene["nodes"]}
    assert {tuple(d["matched"]) for d in nodes} >= {("keyword:nudity",), ("keyword:explicit", "keyword:sexual")}
    for driver in nodes:
        text = texts[(driver["scene"], driver["node"])]
        assert all(term.split(":", 1)[1] in text for term in driver["matched"]), driver
        assert driver["item_id"] == f"project:{project_id}/scene:{driver['scene']}/node:{driver['node']}"
    assert {d["scene"] for d in nodes} == {"scene_0001", "scene_0002"}  # the morning scene says "erotic"
    card = next(d for d in rated.drivers if d["kind"] == "character")
    assert card["character"] == "selene_adair" and "tag:nsfw" in card["matched"]
    assert rated.drivers_total == len(rated.drivers) == 4
    assert rated.by_level["Adult"] == 4 and rated.items > 15


def test_a_project_is_as_high_as_its_highest_item() -> None:
    calm = _rated(_project([{"id": "a", "text": "A wholesome picnic.", "end": True}]))
    assert (calm.result.rating, calm.drivers[0]["node"]) == ("E", "a")
    nothing = _rated(_project([{"id": "a", "text": "They talk.", "end": True}]))
    assert (nothing.result.rating, nothing.drivers, nothing.result.reasons[0]) == (
        "T",
        (),
        "fallback: conservative teen rating",
    )
    mixed = _rated(
        _project(
            [
                {"id": "a", "text": "A friendly chat.", "choices": [{"target": "b", "label": "Draw the weapon"}]},
                {"id": "b", "text": "Blood on the floor.", "end": True},
            ],
            tags=["wholesome"],
        )
    )
    assert mixed.result.rating == "M"
    assert [(d["node"], d["matched"]) for d in mixed.drivers] == [
        ("a", ["keyword:weapon"]),
        ("b", ["keyword:blood", "tag:blood"]),
    ]
    assert mixed.result.matched == {
        "M": ("keyword:weapon", "keyword:blood", "tag:blood"),
        "E": ("keyword:wholesome", "tag:wholesome", "keyword:friendly"),
    }
    assert mixed.result.reasons == mixed.result.matched["M"] and mixed.by_level == {"E": 1, "T": 0, "M": 2, "Adult": 0}


def test_lorebook_entries_and_cards_are_items() -> None:
    meta = {
        "characters": {"kit": {"name": "Kit", "metadata": {"card": {"personality": "a gambling addict"}}}},
        "metadata": {"roleplay": {"world": [{"name": "W", "entries": [{"uid": 7, "content": "Gore everywhere."}]}]}},
    }
    rated = _rated(_project([{"id": "a", "text": "Hello.", "end": True}], **meta))
    assert rated.result.rating == "M"
    assert sorted(d["item_id"] for d in rated.drivers) == ["project:p/character:kit", "project:p/lore:0:7"]


def test_overrides_lower_a_node_or_decide_the_project_and_survive_a_restart(
    rating_kernel: Callable[..., Kernel],
) -> None:
    kernel = rating_kernel()
    project = _project([{"id": "a", "text": "An adult museum guide explains the painting.", "end": True}])
    service = RatingService(kernel)
    # As in the original, a tag term matches text too: an "adult" guide reads as Adult until a reviewer says no.
    before = service.classify_project(project)
    assert (before.result.rating, before.drivers[0]["matched"]) == ("Adult", ["tag:adult"])
    service.put_override("project:p/scene:s/node:a", "T", "rev", "an adult guide, not adult content", "node")
    restarted = RatingService(rating_kernel())  # a new kernel on the same runtime roots: a restart
    after = restarted.classify_project(project)
    assert (after.result.rating, after.drivers[0]["source"]) == ("T", "override")
    restarted.put_override("project:p", "M", "rev", "house rule", "project")
    decided = RatingService(rating_kernel()).classify_project(project).result
    assert (decided.rating, decided.source, decided.reviewer, decided.confidence) == ("M", "override", "rev", 0.99)
    restarted.delete_override("project:p")
    assert RatingService(rating_kernel()).classify_project(project).result.rating == "T"


class Raiser:
    @hookimpl
    def classify_rating(self, item_id: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if "whisper" in str(payload.get("text", "")):
            return {"rating": "adult", "confidence": 0.93, "reasons": ["model: suggestive context"]}
        return {"rating": "E"}  # lower than the matrix: must never lower the answer


class Crasher:
    @hookimpl
    def classify_rating(self, item_id: str) -> dict[str, Any] | None:
        raise RuntimeError("model file missing")


def test_hook_classify_rating(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel(Raiser(), Crasher())
    service = RatingService(kernel)
    with capture_logs() as logs:
        raised = service.classify("i", {"text": "a whisper of blood"}, {})
        kept = service.classify("i", {"text": "blood"}, {})
    assert (raised.rating, raised.classifier, raised.confidence, raised.reasons) == (
        "Adult",
        "raiser",
        0.93,
        ("model: suggestive context",),
    )
    assert raised.matched == {"M": ("keyword:blood", "tag:blood")}  # the matrix's evidence stays visible
    assert (kept.rating, kept.classifier) == ("M", "matrix")
    assert any(e["event"] == "plugin hook failed" and e["plugin"] == "crasher" for e in logs)
    project = _project([{"id": "a", "text": "a whisper", "end": True}])
    rated = service.classify_project(project)
    assert (rated.result.rating, rated.result.classifier, rated.drivers[0]["node"]) == ("Adult", "raiser", "a")
    # An override still wins over every classifier.
    service.put_override("i", "T", "rev", "checked by hand", "asset")
    assert service.classify("i", {"text": "a whisper"}, service.store.overrides()).rating == "T"

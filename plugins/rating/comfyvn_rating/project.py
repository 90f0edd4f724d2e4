"""Rating a whole project: every scene, node, character card and lorebook entry is an item; the project's
rating is the highest of them, and the items that drove it are listed.

Items are identified by stable ids, so a reviewer can override one (a node the matrix misreads) and the
project's rating follows:

- ``project:<id>`` — the project itself (title, description, tags); an override here rates the whole project
- ``project:<id>/scene:<scene>`` and ``project:<id>/scene:<scene>/node:<node>``
- ``project:<id>/character:<character>`` — a character and its card (personality, scenario, greetings…)
- ``project:<id>/lore:<book>:<entry>`` — an entry of a lorebook kept with a roleplay import

An item counts with the level it was rated — matched terms, a classifier plugin, or an override — except
that an item with no evidence (the default T) does not count: a project is only as high as something in it
says, and T when nothing says anything (classifying all of its text at once gives the same answer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from .matrix import DEFAULT_RATING, FALLBACK_REASON, LEVELS, RatingResult, confidence_for, level_index

__all__ = ["MAX_DRIVERS", "Item", "ProjectRating", "project_item_id", "project_items", "rate_project"]

MAX_DRIVERS = 50


@attrs.frozen
class Item:
    """One thing of a project to rate: its id, where it is, and its payload for the classifier."""

    item_id: str
    kind: str  # project | scene | node | character | lore
    where: Mapping[str, str]
    payload: Mapping[str, Any]


@attrs.frozen
class ProjectRating:
    """A project's rating and the items that drove it."""

    result: RatingResult
    drivers: tuple[dict[str, Any], ...]
    drivers_total: int
    items: int
    by_level: Mapping[str, int]

    def to_wire(self) -> dict[str, Any]:
        return {
            "rating": self.result.to_wire(),
            "drivers": list(self.drivers),
            "drivers_total": self.drivers_total,
            "items": self.items,
            "by_level": dict(self.by_level),
        }


def project_item_id(project_id: str) -> str:
    """The item id of a project as a whole (what overrides and acknowledgement tokens name)."""
    return f"project:{project_id}"


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(*values: Any) -> str:
    return "\n".join(v for v in values if isinstance(v, str) and v)


def _meta_tags(source: Any) -> dict[str, Any]:
    """``{tags, categories}`` of a ``metadata`` object, for the matrix's ``meta``."""
    if not isinstance(source, dict):
        return {}
    return {key: source[key] for key in ("tags", "categories") if isinstance(source.get(key), list)}


def _node_payload(node: dict[str, Any]) -> dict[str, Any]:
    choices = [c for c in node.get("choices") or () if isinstance(c, dict)]
    text = _strings(node.get("text"), *(c.get("label") for c in choices), *(c.get("description") for c in choices))
    meta = node.get("metadata")
    return {
        "text": text,
        "tags": node.get("tags") if isinstance(node.get("tags"), list) else [],
        "meta": _meta_tags(meta),
    }


def _dialogue_texts(examples: Any) -> Iterator[str]:
    for block in examples if isinstance(examples, list) else ():
        for line in block if isinstance(block, list) else ():
            if isinstance(line, dict) and isinstance(line.get("text"), str):
                yield line["text"]


def _character_payload(character: dict[str, Any]) -> dict[str, Any]:
    metadata = _obj(character.get("metadata"))
    card = _obj(metadata.get("card"))
    greetings = _list(card.get("alternate_greetings"))
    text = _strings(
        card.get("personality"),
        card.get("scenario"),
        card.get("greeting"),
        *greetings,
        *_dialogue_texts(card.get("example_dialogue")),
        card.get("creator_notes"),
        card.get("system_prompt"),
    )
    tags = [*_list(card.get("tags")), *_list(character.get("tags"))]
    return {
        "title": character.get("name"),
        "description": _strings(character.get("description"), card.get("description")),
        "text": text,
        "tags": tags,
        "meta": _meta_tags(metadata),
    }


def _lore_items(prefix: str, meta: dict[str, Any]) -> Iterator[Item]:
    roleplay = _obj(_obj(meta.get("metadata")).get("roleplay"))
    for b, book in enumerate(_list(roleplay.get("world"))):
        if not isinstance(book, dict):
            continue
        for e, entry in enumerate(_list(book.get("entries"))):
            if not isinstance(entry, dict):
                continue
            keys = [k for k in (*_list(entry.get("keys")), *_list(entry.get("secondary_keys"))) if isinstance(k, str)]
            yield Item(
                f"{prefix}/lore:{b}:{entry.get('uid', e)}",
                "lore",
                {"book": str(book.get("name") or b), "entry": str(entry.get("uid", e))},
                {"title": entry.get("comment"), "text": _strings(entry.get("content"), " ".join(keys))},
            )


def project_items(project: Any) -> Iterator[Item]:
    """Every item of a `comfyvn_scenario.Project` (``meta``, ``scenes``), in story order."""
    meta: dict[str, Any] = project.meta
    prefix = project_item_id(str(project.id))
    metadata = meta.get("metadata")
    yield Item(
        prefix,
        "project",
        {},
        {
            "title": meta.get("title"),
            "description": _strings(
                meta.get("description"), metadata.get("description") if isinstance(metadata, dict) else None
            ),
            "tags": meta.get("tags") if isinstance(meta.get("tags"), list) else [],
            "meta": _meta_tags(metadata),
        },
    )
    for sid, scene in project.scenes.items():
        scene_id = f"{prefix}/scene:{sid}"
        yield Item(
            scene_id,
            "scene",
            {"scene": sid},
            {
                "title": scene.get("title"),
                "description": scene.get("description"),
                "tags": scene.get("tags") if isinstance(scene.get("tags"), list) else [],
                "meta": _meta_tags(scene.get("metadata")),
            },
        )
        for node in scene.get("nodes") or ():
            if isinstance(node, dict) and isinstance(node.get("id"), str):
                yield Item(
                    f"{scene_id}/node:{node['id']}", "node", {"scene": sid, "node": node["id"]}, _node_payload(node)
                )
    for cid, character in project.characters.items():
        if isinstance(character, dict):
            yield Item(f"{prefix}/character:{cid}", "character", {"character": str(cid)}, _character_payload(character))
    yield from _lore_items(prefix, meta)


def _has_evidence(result: RatingResult) -> bool:
    return result.source == "override" or bool(result.matched) or result.classifier != "matrix"


def rate_project(
    project: Any, rate: Callable[[str, Mapping[str, Any]], RatingResult], overrides: Mapping[str, Any]
) -> ProjectRating:
    """Rate every item with ``rate`` (overrides already applied by it) and aggregate.

    ``overrides`` is consulted for the project's own id: an override there decides the project's rating
    (the drivers are still listed, for the reviewer to see what the content says).
    """
    pid = project_item_id(str(project.id))
    rated = [(item, rate(item.item_id, item.payload)) for item in project_items(project)]
    counted = [(item, result) for item, result in rated if _has_evidence(result) and item.item_id != pid]
    project_own = next(result for item, result in rated if item.item_id == pid)
    if _has_evidence(project_own) and project_own.source != "override":
        counted.insert(0, (rated[0][0], project_own))
    by_level = {level: sum(1 for _, r in counted if r.rating == level) for level in LEVELS}
    top = max((level_index(r.rating) for _, r in counted), default=None)
    level = LEVELS[top] if top is not None else DEFAULT_RATING
    driving = [(item, r) for item, r in counted if top is not None and r.rating == level]
    drivers = tuple(
        {
            "item_id": item.item_id,
            "kind": item.kind,
            **item.where,
            "rating": r.rating,
            "source": r.source,
            "matched": list(r.matched.get(r.rating, ())) if r.source != "override" else [],
            "reasons": list(r.reasons),
        }
        for item, r in driving[:MAX_DRIVERS]
    )
    override = overrides.get(pid)
    if override is not None:
        result = override.to_result()
    elif top is None:
        result = RatingResult(pid, level, confidence_for(level, False), (FALLBACK_REASON,), {})
    else:
        matched: dict[str, list[str]] = {}
        for _, r in counted:
            for lvl, hits in r.matched.items():
                bucket = matched.setdefault(lvl, [])
                bucket.extend(h for h in hits if h not in bucket)
        ordered = {lvl: tuple(matched[lvl]) for lvl in reversed(LEVELS) if lvl in matched}
        reasons = tuple(ordered.get(level, ())) or tuple(dict.fromkeys(x for _, r in driving for x in r.reasons))
        classifier = next((r.classifier for _, r in driving if r.classifier not in ("matrix", "override")), "matrix")
        result = RatingResult(pid, level, confidence_for(level, True), reasons, ordered, classifier=classifier)
    return ProjectRating(result, drivers, len(driving), len(rated), by_level)

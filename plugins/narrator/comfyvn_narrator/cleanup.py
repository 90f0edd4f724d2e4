"""Roleplay clean-up through the ROLEPLAY_CLEANUP pack (the narrator's answer to roleplay's
``roleplay_cleanup_scene`` hook, used by ``/api/roleplay/sample_llm``).

The model sees the scene's lines (id, speaker, text) and answers cleaned text per line id; nothing else is taken
from it. The result is the input scene with only those texts replaced, so every speaker, the order of the nodes,
every choice and every target are the input's by construction. A line the model leaves out keeps its text. A
long scene is asked in chunks; if any chunk fails (after its one repair round) the whole clean-up fails and
nothing is returned.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid

from .ask import PackAnswer, answer_tokens, ask_pack, chunk_lines

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["DETAIL_LEVELS", "PACK", "cleanup_scene", "scene_lines"]

PACK = "ROLEPLAY_CLEANUP"
DETAIL_LEVELS = ("low", "medium", "high")
MAX_LINE = 8000  # the pack's limit on one line's text; longer lines are left as they are
MAX_DESCRIPTION = 300


def _speaker_name(speaker: Any, characters: Mapping[str, Any]) -> str | None:
    if not isinstance(speaker, str) or not speaker:
        return None
    entry = characters.get(speaker)
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return str(name) if isinstance(name, str) and name else speaker


def scene_lines(scene: Mapping[str, Any], characters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``[{id, speaker, text}]`` of the nodes a model may reword: text that is not blank nor over the pack's
    limit, under an id no other node shares (an answer by id must name one node)."""
    nodes = [n for n in scene.get("nodes") or [] if isinstance(n, Mapping)]
    counts: dict[str, int] = {}
    for node in nodes:
        counts[str(node.get("id"))] = counts.get(str(node.get("id")), 0) + 1
    lines = []
    for node in nodes:
        text, node_id = node.get("text"), node.get("id")
        if not isinstance(node_id, str) or counts[node_id] != 1:
            continue
        if isinstance(text, str) and text.strip() and len(text) <= MAX_LINE:
            lines.append({"id": node_id, "speaker": _speaker_name(node.get("speaker"), characters), "text": text})
    return lines


def _cast(scene: Mapping[str, Any], characters: Mapping[str, Any]) -> list[dict[str, str]]:
    speaking = {n.get("speaker") for n in scene.get("nodes") or [] if isinstance(n, Mapping)}
    cast = []
    for char_id, entry in characters.items():
        if char_id in speaking and isinstance(entry, Mapping):
            description = " ".join(str(entry.get("description") or "").split())[:MAX_DESCRIPTION]
            cast.append({"id": char_id, "name": str(entry.get("name") or char_id), "description": description})
    return cast


def cleanup_scene(
    kernel: Kernel, scene: Mapping[str, Any], detail_level: str, characters: Mapping[str, Any]
) -> dict[str, Any] | None:
    """``scene`` with its lines tidied at ``detail_level`` (low, medium, high) by the narrator role, and
    ``metadata.llm_cleanup {detail_level, adapter, model, provider, repaired, lines_changed}``; None for a scene
    with no line to tidy (roleplay then reports that no result came)."""
    if detail_level not in DETAIL_LEVELS:
        raise Invalid("detail_level must be one of low, medium, high", field="detail_level")
    scene_id = str(scene.get("id") or "")
    lines = scene_lines(scene, characters)
    if not lines:
        return None
    cast = _cast(scene, characters)
    texts: dict[str, str] = {}
    answers: list[PackAnswer] = []
    for chunk in chunk_lines(lines):
        inputs = {
            "scene_id": scene_id,
            "title": scene.get("title") if isinstance(scene.get("title"), str) else None,
            "detail_level": detail_level,
            "lines": chunk,
            "characters": cast,
        }
        answer = ask_pack(
            kernel,
            PACK,
            inputs,
            role="narrator",
            scene_id=scene_id or None,
            params={"max_tokens": answer_tokens(chunk)},
        )
        answers.append(answer)
        texts.update(answer.answer["nodes"])
    result = copy.deepcopy(dict(scene))
    changed = 0
    for node in result.get("nodes") or []:
        if isinstance(node, dict) and node.get("id") in texts and texts[node["id"]] != node.get("text"):
            node["text"] = texts[node["id"]]
            changed += 1
    metadata = result.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    result["metadata"] = {
        **metadata,
        "llm_cleanup": {
            "detail_level": detail_level,
            "adapter": answers[0].adapter,
            "model": answers[0].model,
            "provider": answers[0].provider,
            "repaired": any(a.repaired for a in answers),
            "lines_changed": changed,
        },
    }
    return result

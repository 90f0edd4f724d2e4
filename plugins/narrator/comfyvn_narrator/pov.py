"""POV rewrite: restyle the narration of a project's scenes from one character's point of view (POV_REWRITE).

Only narration nodes change — nodes of type ``narration``, or untyped/dialogue nodes without a speaker — and
only their ``text`` (plus the ``pov`` tag of a node whose text was rewritten). Choices, targets, speakers, node ids
and the order are the stored scene's by construction. Every scene is asked first; then all changes are written
as one new project version through the store, conditional on the version read (a project edited meanwhile is a
`PreconditionFailed`, and nothing is written). A failed answer writes nothing either.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from comfyvn.errors import Invalid, NotFound, TooLarge
from comfyvn_scenario.pov import candidates
from comfyvn_scenario.store import ProjectStore

from .ask import PackAnswer, answer_tokens, ask_pack, chunk_lines
from .cleanup import MAX_LINE

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["MAX_LINES", "PACK", "is_narration", "pov_rewrite"]

PACK = "POV_REWRITE"
MAX_LINES = 5000  # narration lines in one rewrite
MAX_OBSERVATIONS = 24


def is_narration(node: Mapping[str, Any]) -> bool:
    """Whether ``node`` is narration: type ``narration``, or a dialogue-like node nobody speaks."""
    kind = node.get("type", "dialogue")
    if kind == "narration":
        return True
    return kind == "dialogue" and not node.get("speaker")


def _lines(scene: Mapping[str, Any], characters: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = [n for n in scene.get("nodes") or [] if isinstance(n, Mapping)]
    lines = []
    for node in nodes:
        text = node.get("text")
        if not isinstance(node.get("id"), str) or not isinstance(text, str) or not text.strip():
            continue
        speaker = node.get("speaker")
        entry = characters.get(speaker) if isinstance(speaker, str) else None
        name = entry.get("name") if isinstance(entry, Mapping) else None
        rewrite = is_narration(node) and len(text) <= MAX_LINE
        lines.append({"id": node["id"], "speaker": name or speaker or None, "text": text, "rewrite": rewrite})
    return lines


def _pov_entry(project: Any, pov: Any) -> dict[str, str]:
    if not isinstance(pov, str) or not pov.strip() or len(pov) > 200:
        raise Invalid("pov: must be a character or POV id", field="pov", code="invalid_pov")
    known = {c["id"]: c for c in candidates(project)}
    if pov not in known:
        raise NotFound(f"pov {pov[:80]!r} is not a character or POV of this project", field="pov", code="pov_not_found")
    entry = project.characters.get(pov)
    description = entry.get("description") if isinstance(entry, Mapping) else None
    return {
        "id": pov,
        "name": known[pov]["name"],
        "description": " ".join(str(description or "").split())[:300],
    }


def _rewrite_scene(
    kernel: Kernel,
    scene: Mapping[str, Any],
    lines: list[dict[str, Any]],
    pov: dict[str, str],
    gate: Mapping[str, Any] | None,
) -> tuple[dict[str, str], str, list[str], list[PackAnswer]]:
    scene_id = str(scene.get("id"))
    narration: dict[str, str] = {}
    monologues: list[str] = []
    observations: list[str] = []
    answers = []
    # Each chunk carries the lines around its narration so the model sees who said what.
    for chunk in chunk_lines(lines):
        if not any(line["rewrite"] for line in chunk):
            continue
        inputs = {
            "scene_id": scene_id,
            "title": scene.get("title") if isinstance(scene.get("title"), str) else None,
            "pov": pov,
            "lines": chunk,
        }
        rewritten = [line for line in chunk if line["rewrite"]]
        answer = ask_pack(
            kernel,
            PACK,
            inputs,
            role="narrator",
            scene_id=scene_id,
            gate=gate,
            params={"max_tokens": answer_tokens(rewritten)},
        )
        answers.append(answer)
        narration.update(answer.answer["narration"])
        if answer.answer["monologue"].strip():
            monologues.append(answer.answer["monologue"].strip())
        observations += [o for o in answer.answer["observations"] if o not in observations]
    return narration, "\n\n".join(monologues), observations[:MAX_OBSERVATIONS], answers


def pov_rewrite(
    kernel: Kernel,
    project_id: str,
    *,
    pov: str,
    scene_id: str | None = None,
    gate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Rewrite the narration of ``scene_id`` (every scene when None) of store project ``project_id`` from
    ``pov``'s point of view; ``{project, version, scenes[{id, rewritten, nodes, monologue, observations}],
    rewritten, adapter}``. A scene whose text changed records ``metadata.pov_rewrite {pov, monologue,
    observations, adapter, model}``. ``gate``: the llm call gate's options (a rating acknowledgement)."""
    store = ProjectStore.for_kernel(kernel)
    stored = store.load(project_id)
    project = stored.project
    entry = _pov_entry(project, pov)
    if scene_id is not None:
        store.check_scene_id(scene_id)
        if scene_id not in project.scenes:
            raise NotFound(f"project {project_id!r} has no scene {scene_id!r}", field="scene", code="scene_not_found")
    chosen = [scene_id] if scene_id is not None else list(project.scenes)
    planned = {sid: _lines(project.scenes[sid], project.characters) for sid in chosen}
    total = sum(sum(line["rewrite"] for line in lines) for lines in planned.values())
    if total > MAX_LINES:
        raise TooLarge(f"{total} narration lines: at most {MAX_LINES} in one rewrite; name a scene", field="scene")
    scenes = dict(project.scenes)
    report: list[dict[str, Any]] = []
    adapters: list[str] = []
    for sid, lines in planned.items():
        narration, monologue, observations, answers = _rewrite_scene(kernel, project.scenes[sid], lines, entry, gate)
        adapters += [a.adapter for a in answers]
        scene = copy.deepcopy(project.scenes[sid])
        changed = []
        for node in scene.get("nodes") or []:
            if isinstance(node, dict) and node.get("id") in narration and narration[node["id"]] != node.get("text"):
                node["text"] = narration[node["id"]]
                node["pov"] = pov
                changed.append(node["id"])
        if changed:
            metadata = scene.get("metadata")
            scene["metadata"] = {
                **(metadata if isinstance(metadata, dict) else {}),
                "pov_rewrite": {
                    "pov": pov,
                    "monologue": monologue,
                    "observations": observations,
                    "adapter": answers[0].adapter,
                    "model": answers[0].model,
                },
            }
            scenes[sid] = scene
        report.append(
            {
                "id": sid,
                "rewritten": len(changed),
                "nodes": changed,
                "monologue": monologue,
                "observations": observations,
            }
        )
    rewritten = sum(s["rewritten"] for s in report)
    version = stored.version
    if rewritten:
        meta = {k: v for k, v in project.meta.items() if k != "scenes"}
        version = store.update_project(project_id, meta, scenes, if_match=stored.version).version
    adapter = adapters[0] if adapters else None  # None: the scenes had no narration, so nothing was asked
    return {
        "project": project_id,
        "version": version,
        "pov": pov,
        "scenes": report,
        "rewritten": rewritten,
        "adapter": adapter,
    }

"""Where the pure domain meets the kernel: events, flags, runtime folders. Used by routes and the CLI."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comfyvn.errors import ComfyVNError, TooLarge
from comfyvn.paths import atomic_write_text
from comfyvn.wire import loads

from .playtest import POLICIES, Trace, compare_traces, explore, run_playtest
from .pov import PovManager
from .project import Project, dump_json
from .runner import Scenario, StepResult, compile_scenario, initial_state, state_from_wire, step
from .saves import SaveStore, normalize_slot
from .store import ProjectStore, StoredProject
from .validation import ValidationReport, validate_project, validate_scene
from .wire import PlaytestRequest, StepRequest, story_of

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["MAX_NODES", "PLAYTEST_FLAG", "ScenarioService", "check_size"]

PLUGIN = "scenario"
PLAYTEST_FLAG = "enable_playtest_harness"
# Nodes in one request's scene or project. Validation costs about 0.1-0.2 ms a node, so this keeps one
# request to seconds of one worker thread.
MAX_NODES = 100_000


def check_size(story: Mapping[str, Any] | Project, *, limit: int = MAX_NODES) -> None:
    """Refuse a scene or project with more than ``limit`` nodes in all (`TooLarge`, 413)."""
    if isinstance(story, Project):
        scenes: list[Any] = list(story.scenes.values())
        field = "scenes"
    else:
        scenes, field = [story], "scene.nodes"
    total = sum(
        len(scene["nodes"]) for scene in scenes if isinstance(scene, Mapping) and isinstance(scene.get("nodes"), list)
    )
    if total > limit:
        raise TooLarge(
            f"{total} nodes is more than the {limit} one request may hold", field=field, code="too_many_nodes"
        )


def _version() -> str:
    try:
        return importlib.metadata.version("comfyvn-scenario")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def validate_story(payload: Any, load: Callable[[str], StoredProject] | None = None) -> ValidationReport:
    """Validate ``{scene}``, a bare scene, ``{project, scenes}``, or ``{project: "<store id>"}`` (read with
    ``load``; a stored project whose files are the ones the store validated answers with that report)."""
    if not isinstance(payload, dict):
        raise ComfyVNError("the request body must be a JSON object", field="body", code="invalid_request")
    if isinstance(payload.get("project"), str) and load is not None and payload.get("scenes") is None:
        stored = load(payload["project"])
        if stored.report is not None:
            return stored.report
        check_size(stored.project)
        return validate_project(stored.project)
    if "project" in payload:
        story = story_of(None, payload["project"], payload.get("scenes"))
    elif "scene" in payload and "nodes" not in payload:
        story = payload["scene"]
    else:
        story = payload
    check_size(story)
    return validate_project(story) if isinstance(story, Project) else validate_scene(story)


class ScenarioService:
    """One kernel's saves, POV manager and event/flag-aware operations."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.saves = SaveStore(kernel.paths.data / "saves")
        self.pov = PovManager(kernel.paths.plugin_dir(PLUGIN) / "pov.json")

    @property
    def store(self) -> ProjectStore:
        """The kernel's project store (built when asked: a bad ``projects`` setting only fails store requests)."""
        return ProjectStore.for_kernel(self.kernel)

    def stored_project(self, project_id: str) -> Project:
        """A store project by id (400 for a malformed id, 404 when unknown)."""
        return self.store.load(project_id).project

    def story(self, scene: Any, project: Any, scenes: Any) -> dict[str, Any] | Project:
        """`story_of` with store ids resolved through the kernel's store."""
        return story_of(scene, project, scenes, load=self.stored_project)

    def scenario(self, scene: Any, project: Any, scenes: Any) -> Scenario:
        """The compiled story a request names. A stored project the store validated as it is on disk (its
        validation stamp matches) is not validated again."""
        if isinstance(project, str) and scene is None and scenes is None:
            stored = self.store.load(project)
            check_size(stored.project)
            return compile_scenario(stored.project, validate=stored.report is None)
        story = self.story(scene, project, scenes)
        check_size(story)
        return compile_scenario(story)

    # -- runner --------------------------------------------------------------------------------
    def _emit_enter(self, result: StepResult) -> None:
        state = result.state
        wire = state.to_wire(with_scene=result.multi_scene)
        self.kernel.events.emit(
            "on_scene_enter",
            {
                "scene_id": state.scene_id,
                "node": state.node_id,
                "pov": state.pov,
                "variables": wire["variables"],
                "history": wire["history"],
                "finished": state.finished,
            },
        )
        self.kernel.events.emit(
            "on_choice_render",
            {
                "scene_id": state.scene_id,
                "node": state.node_id,
                "pov": state.pov,
                "finished": state.finished,
                "choices": [dict(c.raw) for c in result.choices],
            },
        )

    def run_step(self, req: StepRequest) -> dict[str, Any]:
        """One wire step; emits ``on_scene_enter``/``on_choice_render`` for every node entered."""
        if req.choice_id is not None and req.choice is not None and req.choice_id != req.choice:
            raise ComfyVNError("choice_id and choice disagree", field="choice", code="invalid_request")
        scenario = self.scenario(req.scene, req.project, req.scenes)
        choice_id = req.choice_id or req.choice
        if req.state is None:
            start = initial_state(scenario, seed=req.seed, pov=req.pov)
            self._emit_enter(start)
            state = start.state
        else:
            state = state_from_wire(scenario, req.state, seed=req.seed)
        result = step(scenario, state, choice_id=choice_id, seed=req.seed, pov=req.pov)
        if result.state.history is not state.history:  # the step entered a node
            self._emit_enter(result)
        return result.to_wire()

    # -- playtests -----------------------------------------------------------------------------
    def playtest(self, req: PlaytestRequest) -> dict[str, Any]:
        """Run a playtest (or explore-all) and emit its events; persist when asked, unless ``dry_run``.
        The HTTP route checks `PLAYTEST_FLAG` first; the CLI is a local tool and does not."""
        if req.policy not in (*POLICIES, "explore"):
            raise ComfyVNError(
                f"unknown policy {req.policy!r}; use one of {', '.join((*POLICIES, 'explore'))}",
                field="policy",
                code="invalid_policy",
            )
        scenario = self.scenario(req.scene, req.project, req.scenes)
        provenance = {
            "plugin": "comfyvn-scenario",
            "version": _version(),
            "policy": req.policy,
            "seed": req.seed,
            "prompt_packs": req.prompt_packs,
            "workflow": req.workflow,
        }
        start_payload = {"scenario_id": str(scenario.start[0]), "seed": req.seed, "policy": req.policy, "pov": req.pov}
        self.kernel.events.emit("on_playtest_start", start_payload)
        if req.policy == "explore":
            report = explore(
                scenario,
                seed=req.seed,
                povs=req.povs or ([req.pov] if req.pov else None),
                variables=req.variables,
                max_depth=req.max_depth,
                max_states=req.max_states,
            )
            self.kernel.events.emit(
                "on_playtest_finished",
                {
                    **start_payload,
                    "digest": report.digest,
                    "steps": report.data["states"],
                    "outcome": "truncated" if report.data["truncated"] else "explored",
                },
            )
            return {"ok": True, "digest": report.digest, "report": report.to_wire(), "provenance": provenance}
        trace = run_playtest(
            scenario,
            seed=req.seed,
            pov=req.pov,
            variables=req.variables,
            policy=req.policy,
            choices=req.choices,
            max_steps=req.max_steps,
        )
        for entry in trace.data["steps"]:
            self.kernel.events.emit(
                "on_playtest_step",
                {
                    "index": entry["index"],
                    "scene_id": entry["scene_id"],
                    "node": entry["node"],
                    "choice": entry["choice"],
                    "to": entry["to"],
                },
            )
        self.kernel.events.emit(
            "on_playtest_finished",
            {
                **start_payload,
                "digest": trace.digest,
                "steps": len(trace.data["steps"]),
                "outcome": trace.data["outcome"],
            },
        )
        response: dict[str, Any] = {
            "ok": True,
            "digest": trace.digest,
            "trace": trace.to_wire(),
            "provenance": provenance,
        }
        if req.golden is not None:
            response["comparison"] = compare_traces(trace, req.golden).to_wire()
        if req.persist and not req.dry_run:
            response.update(self.persist_trace(trace))
        return response

    def persist_trace(self, trace: Trace) -> dict[str, str]:
        """Write ``<logs>/playtest/<id>-seed<seed>-<digest12>.json`` and a ``.log`` (one line per step).

        The answer names both files relative to the logs root (``playtest/<stem>.json``): it goes
        back over HTTP, and a client has no business knowing where the server keeps its data.
        """
        folder = self.kernel.paths.logs / "playtest"
        scenario_id = trace.data["scenario"].get("id")
        try:
            name = normalize_slot(str(scenario_id or "scene"))
        except ComfyVNError:
            name = "scene"
        stem = f"{name}-seed{trace.data['seed']}-{trace.digest[:12]}"
        atomic_write_text(folder / f"{stem}.json", dump_json(trace.to_wire()))
        lines = [
            f"playtest {scenario_id} seed={trace.data['seed']} pov={trace.data['pov']} "
            f"policy={trace.data['policy']['kind']} digest={trace.digest}"
        ]
        lines += [
            f"step {s['index']}: {s['scene_id']}:{s['node']} --{s['choice']}--> "
            f"{s['to']['scene_id']}:{s['to']['node']} rng={s['rng']['value']}"
            for s in trace.data["steps"]
        ]
        lines.append(
            f"outcome {trace.data['outcome']} at {trace.data['final']['scene_id']}:{trace.data['final']['node']}"
        )
        atomic_write_text(folder / f"{stem}.log", "\n".join(lines) + "\n")
        return {"trace_path": f"playtest/{stem}.json", "log_path": f"playtest/{stem}.log"}


def golden_from(value: Mapping[str, Any] | Path) -> dict[str, Any]:
    """A golden trace given inline or as a file path."""
    if isinstance(value, Path):
        try:
            raw = value.read_bytes()
        except OSError as exc:
            raise ComfyVNError(
                f"cannot read golden trace {value}: {exc.strerror}", field="golden", code="invalid_file"
            ) from None
        data = loads(raw, field="golden")  # the project's decoding policy, as saves and the CLI read files
    else:
        data = dict(value)
    if not isinstance(data, dict):
        raise ComfyVNError("golden trace must be a JSON object", field="golden", code="invalid_golden")
    return data

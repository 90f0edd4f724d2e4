"""ComfyVN scenarios: the one project/scene format, validation, the deterministic runner, saves,
POV and playtests. The public face is re-exported here; plugin wiring lives in `plugin`."""

from __future__ import annotations

from .project import Project, load_project, project_from_payload, save_project, split_target
from .runner import RunState, Scenario, StepResult, compile_scenario, initial_state, step
from .store import ProjectStore, StoredProject
from .validation import Issue, ValidationReport, validate_project, validate_project_dir, validate_scene

__all__ = [
    "Issue",
    "Project",
    "ProjectStore",
    "RunState",
    "Scenario",
    "StepResult",
    "StoredProject",
    "ValidationReport",
    "compile_scenario",
    "initial_state",
    "load_project",
    "project_from_payload",
    "save_project",
    "split_target",
    "step",
    "validate_project",
    "validate_project_dir",
    "validate_scene",
]

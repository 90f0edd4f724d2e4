"""The project store: every project of a data root in one place, ``<data>/projects/<id>/``.

One project is the project folder every plugin already reads (`project`: ``project.json``,
``scenes/<scene>.json``, ``assets/``) plus two folders the store owns:

- ``exports/``: what exporters wrote for the project (listed by `ProjectStore.exports`);
- ``.comfyvn/``: ``state.json`` (the project's ``version``, each scene's ``version``, the validation
  stamp) and ``history/<scene>/<version>.json``, the last ``history`` versions of each scene.

Every write goes through `ProjectStore._commit`: under the project's file lock (so the server, the CLI
and other processes exclude each other) it loads the current files, builds the new project, validates
it (a write that would make the project invalid is refused with the validator's JSON-pointer errors and
nothing is written), checks the caller's expected version (`PreconditionFailed` on a stale one), writes
each changed file atomically (scenes before project.json, so a reader never sees project.json listing a
scene that is not there), then the state. Versions only grow: a restored or re-created scene gets a new
number, never an old one back.

The validation stamp is the SHA-256 of every file the store validated, recorded with the validator's
identity. `ProjectStore.load` fingerprints the bytes it parses; when they match the stamp the project is
known valid and exporters skip validating it again. A hand edit of any file, or a changed validator,
breaks the match and the project is validated as usual.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError, Conflict, Invalid, NotFound, PreconditionFailed, Unprocessable
from comfyvn.paths import atomic_write_json, atomic_write_text, safe_join
from comfyvn.wire import loads

from .archive import EXPORTS_DIR, STORE_DIR, copy_project_files, unzip_project, zip_project
from .project import PROJECT_FILE, SCENE_ID, SCENES_DIR, Project, dump_json, load_project
from .validation import Issue, ValidationReport, validate_project

__all__ = [
    "DEFAULT_HISTORY",
    "EXPORTS_DIR",
    "PROJECT_ID",
    "ProjectStore",
    "StoredProject",
    "parse_if_match",
]

PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
STATE_FILE = "state.json"
HISTORY_DIR = "history"
DEFAULT_HISTORY = 20


@functools.cache
def validator_id() -> str:
    """Who validated: a digest of the validator's code and schemas, so a stamp from another validator is
    never trusted (a rule added in a later version checks old projects again)."""
    hasher = hashlib.sha256()
    package = resources.files(__package__)
    for name in ("validation.py", "schemas.py", "rules.py", "project.py"):
        hasher.update(package.joinpath(name).read_bytes())
    for entry in sorted(package.joinpath("schemas").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            hasher.update(entry.read_bytes())
    return hasher.hexdigest()


def parse_if_match(header: str | None, *, field: str = "If-Match") -> int | None:
    """The version an ``If-Match`` header (or ``--if-match``) names: ``"3"``, ``3`` or ``W/"3"``; ``*`` or
    nothing means "any". Anything else is a 400 naming the header."""
    if header is None:
        return None
    value = header.strip()
    if value in ("", "*"):
        return None
    value = value.removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 12:
        raise Invalid(f'{field} must be a version number such as "3"', field=field, code="invalid_if_match")
    return int(value)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _scene_label(scene_id: str) -> str:
    return f"{SCENES_DIR}/{scene_id}.json"


def _nodes(scene: Mapping[str, Any]) -> int:
    nodes = scene.get("nodes")
    return len(nodes) if isinstance(nodes, list) else 0


def _refuse_invalid(report: ValidationReport) -> list[dict[str, Any]]:
    """Raise `Unprocessable` listing the errors of an invalid report; else the warnings, for the stamp."""
    if report.valid:
        return [issue.to_wire() for issue in report.warnings]
    errors = [issue.to_wire() for issue in report.errors]
    first = report.errors[0]
    where = f"{first.document}#{first.path}" if first.document else first.path
    raise Unprocessable(
        f"the project would not be valid: {first.message} (at {where}); nothing was written",
        field=first.path,
        code="invalid_project",
        details={"errors": errors[:200], "error_count": len(errors)},
    )


def _refuse_duplicates(order: list[str]) -> None:
    """A scene listed twice in project.json ``scenes``: refused like any invalid project, with its pointer."""
    seen: set[str] = set()
    for index, scene_id in enumerate(order):
        if scene_id in seen:
            issue = Issue(
                f"/scenes/{index}", f"scene {scene_id!r} is listed twice", "duplicate_scene", document=PROJECT_FILE
            )
            _refuse_invalid(ValidationReport(errors=(issue,), warnings=()))
        seen.add(scene_id)


def _stamped_report(stamp: Mapping[str, Any]) -> ValidationReport | None:
    """The (valid) report a stamp recorded: its warnings, rebuilt. None when they are unreadable."""
    warnings = stamp.get("warnings", [])
    if not isinstance(warnings, list):
        return None
    try:
        issues = tuple(
            Issue(
                path=str(w["path"]),
                message=str(w["message"]),
                code=str(w["code"]),
                severity=str(w.get("severity", "warning")),
                document=w.get("document"),
            )
            for w in warnings
        )
    except (KeyError, TypeError, AttributeError):
        return None
    return ValidationReport(errors=(), warnings=issues)


@attrs.frozen
class StoredProject:
    """A project read from the store, with its versions. ``validated`` says the files are byte for byte the
    ones the store validated (with today's validator) when it wrote them."""

    id: str
    project: Project
    version: int
    scene_versions: dict[str, int]
    validated: bool
    path: Path
    created_at: str | None = None
    updated_at: str | None = None
    files: dict[str, str] = attrs.field(factory=dict, repr=False)  # project-relative name -> SHA-256 read
    report: ValidationReport | None = attrs.field(default=None, repr=False)  # from the stamp, when validated

    def summary(self) -> dict[str, Any]:
        """The JSON-ready description the store lists and the REST API returns (no server paths)."""
        return {
            "id": self.id,
            "title": self.project.title,
            "version": self.version,
            "scenes": [
                {"id": sid, "version": self.scene_versions.get(sid, 1), "nodes": _nodes(scene)}
                for sid, scene in self.project.scenes.items()
            ],
            "nodes": sum(_nodes(scene) for scene in self.project.scenes.values()),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@attrs.frozen
class _Change:
    """What one commit does: the new project.json content, the scenes it writes, the scenes it removes."""

    meta: dict[str, Any]
    order: list[str]
    write: dict[str, dict[str, Any]]
    remove: frozenset[str] = frozenset()


class ProjectStore:
    """The projects below ``root``. ``emit(name, payload)`` announces changes (the kernel's event bus)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        history: int = DEFAULT_HISTORY,
        emit: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        if history < 1:
            raise ValueError("history must keep at least one version")
        self.root = Path(root)
        self.history_limit = history
        self._emit = emit

    @classmethod
    def for_kernel(cls, kernel: Any) -> ProjectStore:
        """The store of ``kernel``'s data root; ``projects.history`` in comfyvn.json sets how many versions
        of each scene are kept (20 by default)."""
        settings = kernel.config.get("projects") if isinstance(kernel.config, Mapping) else None
        history = settings.get("history", DEFAULT_HISTORY) if isinstance(settings, Mapping) else DEFAULT_HISTORY
        if not isinstance(history, int) or isinstance(history, bool) or not 1 <= history <= 10_000:
            raise ComfyVNError(
                "projects.history in comfyvn.json must be a whole number from 1 to 10000",
                field="projects.history",
                code="invalid_config",
            )
        return cls(kernel.paths.data / "projects", history=history, emit=kernel.events.emit)

    # -- paths and locks -----------------------------------------------------------------------------
    def _check_id(self, project_id: Any, field: str = "project") -> str:
        if not isinstance(project_id, str) or not PROJECT_ID.fullmatch(project_id):
            raise Invalid(
                "a project id is 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit",
                field=field,
                code="invalid_project_id",
            )
        return project_id

    @staticmethod
    def check_scene_id(scene_id: Any, field: str = "scene") -> str:
        """A scene id from a request: a file name of at most 100 characters (a longer one would reach the
        disk as a name the file system refuses), else 400 ``invalid_scene_id`` without echoing it."""
        if not isinstance(scene_id, str) or len(scene_id) > 100 or not SCENE_ID.fullmatch(scene_id):
            raise Invalid("a scene id is 1-100 letters, digits, '_', '.' or '-'", field=field, code="invalid_scene_id")
        return scene_id

    def path(self, project_id: str, *, field: str = "project") -> Path:
        """The folder of an existing project (404 ``project_not_found`` naming the id, never the folder)."""
        folder = self.root / self._check_id(project_id, field)
        if not (folder / PROJECT_FILE).is_file():
            raise NotFound(f"no project {project_id!r} in the store", field=field, code="project_not_found")
        return folder

    def exists(self, project_id: str) -> bool:
        return PROJECT_ID.fullmatch(project_id) is not None and (self.root / project_id / PROJECT_FILE).is_file()

    @contextlib.contextmanager
    def _lock(self, project_id: str, *, exclusive: bool) -> Iterator[None]:
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{project_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # releases the lock

    # -- state -----------------------------------------------------------------------------------------
    def _state(self, folder: Path, project: Project) -> dict[str, Any]:
        """The bookkeeping of ``folder``; a project put there by hand starts at version 1 everywhere."""
        path = folder / STORE_DIR / STATE_FILE
        state: Any = None
        if path.is_file():
            try:
                state = loads(path.read_bytes(), field=f"{STORE_DIR}/{STATE_FILE}")
            except ComfyVNError:
                state = None  # unreadable bookkeeping: start again rather than lock the project away
        if not isinstance(state, dict) or not isinstance(state.get("version"), int):
            state = {"version": 1, "scenes": {}, "stamp": None}
        scenes = state.get("scenes") if isinstance(state.get("scenes"), dict) else {}
        for scene_id in project.scenes:
            if not isinstance(scenes.get(scene_id), int):
                scenes[scene_id] = 1
        state["scenes"] = scenes
        result: dict[str, Any] = state
        return result

    def _read(self, project_id: str) -> StoredProject:
        return self._read_with_state(project_id)[0]

    def _read_with_state(self, project_id: str) -> tuple[StoredProject, dict[str, Any]]:
        """The project and its bookkeeping as read together (a commit edits that state and writes it back)."""
        folder = self.path(project_id)
        fingerprints: dict[str, str] = {}
        project = load_project(folder, fingerprints=fingerprints)
        state = self._state(folder, project)
        stamp = state.get("stamp")
        report = (
            _stamped_report(stamp)
            if isinstance(stamp, dict)
            and stamp.get("validator") == validator_id()
            and stamp.get("files") == fingerprints
            else None
        )
        stored = StoredProject(
            id=project_id,
            project=project,
            version=state["version"],
            scene_versions={sid: state["scenes"][sid] for sid in project.scenes},
            validated=report is not None,
            path=folder,
            created_at=state.get("created_at"),
            updated_at=state.get("updated_at"),
            files=fingerprints,
            report=report,
        )
        return stored, state

    # -- reads -----------------------------------------------------------------------------------------
    def list_projects(self) -> list[dict[str, Any]]:
        """Every readable project's summary, by id. A folder that is not a readable project is left out."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir(), key=lambda p: p.name):
            if not PROJECT_ID.fullmatch(entry.name) or not (entry / PROJECT_FILE).is_file():
                continue
            try:
                found.append(self.load(entry.name).summary())
            except ComfyVNError:
                continue
        return found

    def load(self, project_id: str) -> StoredProject:
        """One project with its versions (404 when unknown)."""
        self._check_id(project_id)
        with self._lock(project_id, exclusive=False):
            return self._read(project_id)

    def scene(self, project_id: str, scene_id: str) -> tuple[dict[str, Any], int]:
        """One scene and its version (404 naming the scene when the project has no such scene)."""
        self.check_scene_id(scene_id)
        stored = self.load(project_id)
        if scene_id not in stored.project.scenes:
            raise NotFound(f"project {project_id!r} has no scene {scene_id!r}", field="scene", code="scene_not_found")
        return stored.project.scenes[scene_id], stored.scene_versions[scene_id]

    def resolve(self, ref: str | os.PathLike[str], *, field: str = "project") -> Path:
        """A project folder from what a user typed: a folder (or its project.json) on disk, or a store id.
        A folder wins when both exist, as the shell would read it."""
        path = Path(ref)
        if path.is_dir() or path.name == PROJECT_FILE:
            return path
        text = str(ref)
        if PROJECT_ID.fullmatch(text) and self.exists(text):
            return self.root / text
        raise NotFound(f"no project folder or store project {text!r}", field=field, code="project_not_found")

    # -- history ---------------------------------------------------------------------------------------
    def _history_dir(self, folder: Path, scene_id: str) -> Path:
        return folder / STORE_DIR / HISTORY_DIR / scene_id

    def history(self, project_id: str, scene_id: str) -> list[dict[str, Any]]:
        """The kept versions of a scene, newest first: ``{version, saved_at, sha256, bytes, nodes, current}``.
        A deleted scene keeps its history (and can be restored)."""
        self._check_id(project_id)
        self.check_scene_id(scene_id)
        with self._lock(project_id, exclusive=False):
            stored = self._read(project_id)
            folder = self._history_dir(stored.path, scene_id)
            current = stored.scene_versions.get(scene_id)
            entries = []
            for path in folder.glob("*.json") if folder.is_dir() else ():
                if not path.stem.isdigit():
                    continue
                data = path.read_bytes()
                scene = loads(data, field="history")
                entries.append(
                    {
                        "version": int(path.stem),
                        "saved_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": len(data),
                        "nodes": _nodes(scene) if isinstance(scene, dict) else 0,
                        "current": int(path.stem) == current,
                    }
                )
        if not entries and scene_id not in stored.project.scenes:
            raise NotFound(f"project {project_id!r} has no scene {scene_id!r}", field="scene", code="scene_not_found")
        return sorted(entries, key=lambda e: -int(e["version"]))

    def scene_version(self, project_id: str, scene_id: str, version: int) -> dict[str, Any]:
        """A kept version of a scene (404 ``version_not_found`` when it was never kept or was pruned)."""
        self._check_id(project_id)
        self.check_scene_id(scene_id)
        with self._lock(project_id, exclusive=False):
            folder = self._history_dir(self.path(project_id), scene_id)
            path = folder / f"{version:08d}.json"
            if not path.is_file():
                raise NotFound(
                    f"scene {scene_id!r} has no kept version {version}", field="version", code="version_not_found"
                )
            scene = loads(path.read_bytes(), field="history")
        if not isinstance(scene, dict):
            raise Unprocessable("the kept version is not a scene", field="version", code="invalid_history")
        return scene

    def _keep(self, folder: Path, scene_id: str, version: int, text: str) -> None:
        history = self._history_dir(folder, scene_id)
        atomic_write_text(history / f"{version:08d}.json", text)
        kept = sorted((p for p in history.glob("*.json") if p.stem.isdigit()), key=lambda p: int(p.stem))
        for old in kept[: max(0, len(kept) - self.history_limit)]:
            old.unlink(missing_ok=True)

    def _keep_missing(self, folder: Path, scene_id: str, version: int, scene: Mapping[str, Any]) -> None:
        """Keep ``scene`` as ``version`` unless that version is kept already."""
        if not (self._history_dir(folder, scene_id) / f"{version:08d}.json").is_file():
            self._keep(folder, scene_id, version, dump_json(scene))

    @staticmethod
    def _unchanged(current: StoredProject, write: Mapping[str, dict[str, Any]], project_text: str) -> bool:
        """Whether a commit would leave every file as it is."""
        if project_text != dump_json(current.project.document()):
            return False
        return all(
            sid in current.project.scenes and dump_json(current.project.scenes[sid]) == dump_json(scene)
            for sid, scene in write.items()
        )

    # -- writes ----------------------------------------------------------------------------------------
    def _commit(
        self,
        project_id: str,
        change: Callable[[StoredProject], _Change],
        *,
        expect: int | None,
        expect_scene: str | None = None,
    ) -> StoredProject:
        """Apply ``change`` to the current project under the lock: version check, validation, atomic writes,
        state, the ``on_project_updated`` event. ``expect`` is the project version, or the version of scene
        ``expect_scene`` when one is named."""
        self._check_id(project_id)
        with self._lock(project_id, exclusive=True):
            current, state = self._read_with_state(project_id)
            if expect is not None:
                have = current.version if expect_scene is None else current.scene_versions.get(expect_scene, 0)
                if have != expect:
                    what = "project" if expect_scene is None else f"scene {expect_scene!r}"
                    raise PreconditionFailed(
                        f"the {what} is at version {have}, not {expect}: reload it and apply your change again",
                        field="If-Match",
                        details={"current_version": have},
                    )
            plan = change(current)
            scenes = {
                sid: plan.write.get(sid, current.project.scenes.get(sid))
                for sid in plan.order
                if sid not in plan.remove
            }
            missing = [sid for sid, scene in scenes.items() if scene is None]
            if missing:
                raise Unprocessable(
                    f"project.json lists scene {missing[0]!r}, which the project does not have",
                    field="scenes",
                    code="unknown_scene",
                )
            candidate = Project(meta=plan.meta, scenes={sid: s for sid, s in scenes.items() if s is not None})
            warnings = _refuse_invalid(validate_project(candidate))
            project_text = dump_json(candidate.document())
            if current.validated and not plan.remove and self._unchanged(current, plan.write, project_text):
                # Writing what is already there: no new version, so other editors' ETags stay good.
                return current
            fingerprints = {
                label: sha
                for label, sha in current.files.items()
                if label == PROJECT_FILE
                or label.removeprefix(f"{SCENES_DIR}/").removesuffix(".json") in candidate.scenes
            }
            version = state["version"] + 1
            written = self._write_scenes(current.path, state, current, plan.write, fingerprints)
            for sid in plan.remove:
                # A removed scene stays restorable: a hand-made project's scene has no history yet.
                self._keep_missing(current.path, sid, state["scenes"].get(sid, 1), current.project.scenes[sid])
            atomic_write_text(current.path / PROJECT_FILE, project_text)
            fingerprints[PROJECT_FILE] = _sha(project_text)
            for sid in plan.remove:  # after project.json stops listing them, so no reader misses a file
                (current.path / SCENES_DIR / f"{sid}.json").unlink(missing_ok=True)
            state.update(
                version=version,
                updated_at=_now(),
                stamp={"validator": validator_id(), "files": fingerprints, "warnings": warnings},
            )
            atomic_write_json(current.path / STORE_DIR / STATE_FILE, state)
            updated = self._read(project_id)
        self._announce(
            "on_project_updated",
            {
                "id": project_id,
                "version": version,
                "scenes": [{"id": sid, "version": v} for sid, v in written.items()],
                "removed": sorted(plan.remove),
            },
        )
        return updated

    def _write_scenes(
        self,
        folder: Path,
        state: dict[str, Any],
        current: StoredProject,
        scenes: Mapping[str, dict[str, Any]],
        fingerprints: dict[str, str],
    ) -> dict[str, int]:
        written: dict[str, int] = {}
        for sid, scene in scenes.items():
            text = dump_json(scene)
            previous = current.project.scenes.get(sid)
            if previous is not None and dump_json(previous) == text:
                continue  # unchanged: same version, no history entry
            old_version = state["scenes"].get(sid, 0)
            if previous is not None:
                self._keep_missing(folder, sid, old_version, previous)  # a hand-made project's first edit
            new_version = old_version + 1
            self._keep(folder, sid, new_version, text)
            atomic_write_text(folder / SCENES_DIR / f"{sid}.json", text)
            fingerprints[_scene_label(sid)] = _sha(text)
            state["scenes"][sid] = new_version
            written[sid] = new_version
        return written

    def update_project(
        self,
        project_id: str,
        meta: Mapping[str, Any],
        scenes: Mapping[str, dict[str, Any]] | None = None,
        *,
        if_match: int | None = None,
    ) -> StoredProject:
        """Replace project.json (``meta``). ``scenes`` None keeps the scenes: ``meta["scenes"]``, when given,
        reorders them (every id must be a scene of the project; one left out is removed). With ``scenes``
        the project gets exactly those scenes, in their order."""
        new_meta = {k: v for k, v in meta.items() if k != "scenes"}

        def change(current: StoredProject) -> _Change:
            if scenes is not None:
                order = list(scenes)
                write = {
                    sid: self._scene_for(sid, scene, f"scenes/{i}") for i, (sid, scene) in enumerate(scenes.items())
                }
            else:
                listed = meta.get("scenes")
                if listed is None:
                    order = list(current.project.scenes)
                elif isinstance(listed, list) and all(isinstance(s, str) for s in listed):
                    _refuse_duplicates(listed)
                    order = listed
                else:
                    raise Invalid(
                        "project `scenes` must be a list of scene ids", field="scenes", code="invalid_project"
                    )
                write = {}
            remove = frozenset(set(current.project.scenes) - set(order))
            return _Change(meta=new_meta, order=order, write=write, remove=remove)

        return self._commit(project_id, change, expect=if_match)

    @staticmethod
    def _scene_for(scene_id: str, scene: Any, field: str) -> dict[str, Any]:
        if not isinstance(scene, dict):
            raise Invalid("a scene must be a JSON object", field=field, code="invalid_scene")
        if not isinstance(scene_id, str) or not SCENE_ID.fullmatch(scene_id) or len(scene_id) > 100:
            raise Invalid(
                f"scene id {str(scene_id)[:40]!r} is not a valid file name", field=field, code="invalid_scene_id"
            )
        if scene.get("id", scene_id) != scene_id:
            raise Invalid(
                f"the scene's id {str(scene.get('id'))[:40]!r} is not {scene_id!r}",
                field=f"{field}/id",
                code="scene_id_mismatch",
            )
        return {"id": scene_id, **scene} if "id" not in scene else scene

    def put_scene(self, project_id: str, scene_id: str, scene: Any, *, if_match: int | None = None) -> StoredProject:
        """Write one scene (a new id is appended to the story order). ``if_match`` is the scene's version."""
        checked = self._scene_for(scene_id, scene, "scene")

        def change(current: StoredProject) -> _Change:
            order = list(current.project.scenes)
            if scene_id not in order:
                order.append(scene_id)
            return _Change(meta=dict(current.project.meta), order=order, write={scene_id: checked})

        return self._commit(project_id, change, expect=if_match, expect_scene=scene_id)

    def delete_scene(self, project_id: str, scene_id: str, *, if_match: int | None = None) -> StoredProject:
        """Remove a scene from the project (its history stays, so `restore` can bring it back)."""
        self.check_scene_id(scene_id)

        def change(current: StoredProject) -> _Change:
            if scene_id not in current.project.scenes:
                raise NotFound(
                    f"project {project_id!r} has no scene {scene_id!r}", field="scene", code="scene_not_found"
                )
            order = [sid for sid in current.project.scenes if sid != scene_id]
            meta = dict(current.project.meta)
            start = meta.get("start")
            if isinstance(start, str) and start.partition(":")[0] == scene_id:
                meta.pop("start")  # validation then reports any choice still pointing into the scene
            return _Change(meta=meta, order=order, write={}, remove=frozenset({scene_id}))

        return self._commit(project_id, change, expect=if_match, expect_scene=scene_id)

    def restore(self, project_id: str, scene_id: str, version: int, *, if_match: int | None = None) -> StoredProject:
        """Make a kept version of a scene the current one again, as a new version (validated like any write)."""
        scene = self.scene_version(project_id, scene_id, version)
        return self.put_scene(project_id, scene_id, scene, if_match=if_match)

    def delete(self, project_id: str, *, if_match: int | None = None) -> int:
        """Delete a project with its exports and history. Returns the version it had."""
        self._check_id(project_id)
        with self._lock(project_id, exclusive=True):
            current = self._read(project_id)
            if if_match is not None and current.version != if_match:
                raise PreconditionFailed(
                    f"the project is at version {current.version}, not {if_match}",
                    field="If-Match",
                    details={"current_version": current.version},
                )
            trash = self.root / f".deleted-{project_id}-{uuid.uuid4().hex[:12]}"
            os.rename(current.path, trash)  # one rename: readers see the project or nothing
        shutil.rmtree(trash, ignore_errors=True)
        self._announce("on_project_deleted", {"id": project_id, "version": current.version})
        return current.version

    # -- creation --------------------------------------------------------------------------------------
    def _new_id(self, project: Project, wanted: str | None) -> tuple[str, bool]:
        """The id to create under and whether the caller chose it (a chosen id that exists is a 409)."""
        if wanted is not None:
            return self._check_id(wanted, "id"), True
        base = project.id or project.title or "project"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-._")[:80] or "project"
        return slug, False

    def create(
        self,
        project: Project,
        *,
        project_id: str | None = None,
        files_from: Path | None = None,
        replace: bool = False,
    ) -> StoredProject:
        """Add ``project`` to the store (201 in REST terms). ``files_from`` is a folder whose other files
        (``assets/``, an import report) are copied along. ``replace`` lets an existing id be replaced
        as one new version of it (a re-import); otherwise an id the caller chose that exists is a 409, and
        a derived one gets ``-2``, ``-3``... The project is validated first; nothing is written when invalid.
        """
        checked = {
            sid: self._scene_for(sid, scene, f"scenes/{i}") for i, (sid, scene) in enumerate(project.scenes.items())
        }
        project = Project(meta=dict(project.meta), scenes=checked)
        warnings = _refuse_invalid(validate_project(project))  # what will be stored, scene ids filled in
        base, chosen = self._new_id(project, project_id)
        for attempt in range(1, 1000):
            candidate = base if attempt == 1 else f"{base[:90]}-{attempt}"
            with self._lock(candidate, exclusive=True):
                if (self.root / candidate).exists():
                    if replace and self.exists(candidate):
                        break  # replaced below, as an update under the same lock discipline
                    if chosen:
                        raise Conflict(f"project {candidate!r} already exists", field="id", code="project_exists")
                    continue
                self._install_new(candidate, project, files_from, warnings)
                created = self._read(candidate)
            self._announce(
                "on_project_created",
                {
                    "id": candidate,
                    "version": created.version,
                    "scenes": [{"id": sid, "version": v} for sid, v in created.scene_versions.items()],
                },
            )
            return created
        else:
            raise Conflict(f"no free project id for {base!r}", field="id", code="project_exists")
        return self._replace(candidate, project, files_from)

    def _install_new(
        self, project_id: str, project: Project, files_from: Path | None, warnings: list[dict[str, Any]]
    ) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".staging-{project_id}-", dir=self.root))
        try:
            if files_from is not None:
                copy_project_files(files_from, staged)
            fingerprints: dict[str, str] = {}
            scene_versions = {}
            for sid, scene in project.scenes.items():
                text = dump_json(scene)
                atomic_write_text(staged / SCENES_DIR / f"{sid}.json", text)
                self._keep(staged, sid, 1, text)
                fingerprints[_scene_label(sid)] = _sha(text)
                scene_versions[sid] = 1
            project_text = dump_json(project.document())
            atomic_write_text(staged / PROJECT_FILE, project_text)
            fingerprints[PROJECT_FILE] = _sha(project_text)
            now = _now()
            atomic_write_json(
                staged / STORE_DIR / STATE_FILE,
                {
                    "version": 1,
                    "scenes": scene_versions,
                    "created_at": now,
                    "updated_at": now,
                    "stamp": {"validator": validator_id(), "files": fingerprints, "warnings": warnings},
                },
            )
            os.rename(staged, self.root / project_id)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise

    def _replace(self, project_id: str, project: Project, files_from: Path | None) -> StoredProject:
        """A re-import: the same id gets the new project as one new version; scenes keep their history."""
        updated = self.update_project(project_id, project.meta, project.scenes)
        if files_from is not None:
            with self._lock(project_id, exclusive=True):
                copy_project_files(files_from, updated.path, replace=True)
        return updated

    def create_from_folder(
        self, folder: str | os.PathLike[str], *, project_id: str | None = None, replace: bool = False
    ) -> StoredProject:
        """Add the project folder ``folder`` (project.json, scenes/, assets/ and its other files)."""
        source = Path(folder)
        if source.name == PROJECT_FILE:
            source = source.parent
        return self.create(load_project(source), project_id=project_id, files_from=source, replace=replace)

    def create_from_zip(self, data: bytes, *, project_id: str | None = None) -> StoredProject:
        """Add a project from a zip (what `export_zip` writes, or the same files under one top folder)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".unzip-", dir=self.root))
        try:
            unzip_project(data, staged)
            try:
                project = load_project(staged)
            except NotFound as exc:  # a scene project.json lists is not in the zip: the upload is at fault
                raise Unprocessable(f"the zip is incomplete: {exc.message}", field="file", code="invalid_zip") from None
            return self.create(project, project_id=project_id, files_from=staged)
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def create_from_payload(self, body: Any) -> StoredProject:
        """A JSON body: ``{id?, project: {...}, scenes?}`` or a bare project.json with scene objects inline."""
        from .project import project_from_payload

        if not isinstance(body, dict):
            raise Invalid("the body must be a JSON object", field="body", code="invalid_request")
        if isinstance(body.get("project"), dict):
            unknown = sorted(set(body) - {"id", "project", "scenes"})
            if unknown:
                raise Invalid(f"unknown field {unknown[0][:40]!r}", field=unknown[0][:40], code="unknown_field")
            wanted = body.get("id")
            project = project_from_payload(body["project"], body.get("scenes"))
        else:
            wanted = None
            project = project_from_payload(body, None)
        if wanted is not None and not isinstance(wanted, str):
            raise Invalid("id must be a string", field="id", code="invalid_project_id")
        return self.create(project, project_id=wanted)

    # -- zips and exports ------------------------------------------------------------------------------
    def export_zip(self, project_id: str) -> bytes:
        """The project as a zip: project.json, scenes/, assets/ and its other files, without the store's
        bookkeeping or exports. Entries are sorted and dated 1980-01-01: the same project, the same bytes."""
        return self.export_zip_versioned(project_id)[0]

    def export_zip_versioned(self, project_id: str) -> tuple[bytes, int]:
        """`export_zip` and the project version it holds, read under one lock (for an ETag that matches)."""
        self._check_id(project_id)
        with self._lock(project_id, exclusive=False):
            stored = self._read(project_id)
            return zip_project(stored.path), stored.version

    def exports_dir(self, project_id: str, *parts: str) -> Path:
        """A folder or file below the project's ``exports/`` (where exporters write for a store project)."""
        return safe_join(self.path(project_id) / EXPORTS_DIR, *parts, field="project")

    def exports(self, project_id: str) -> list[dict[str, Any]]:
        """What was exported for the project: ``{name, kind: folder|file, bytes, files, modified}`` by name."""
        folder = self.path(project_id) / EXPORTS_DIR
        found = []
        for entry in sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else ():
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            if entry.is_dir():
                files = [p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
                size, count = sum(p.stat().st_size for p in files), len(files)
            else:
                size, count = entry.stat().st_size, 1
            found.append(
                {
                    "name": entry.name,
                    "kind": "folder" if entry.is_dir() else "file",
                    "bytes": size,
                    "files": count,
                    "modified": datetime.fromtimestamp(entry.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        return found

    def _announce(self, name: str, payload: dict[str, Any]) -> None:
        if self._emit is not None:
            self._emit(name, payload)

"""The native viewer: export a store project (when its files changed) and run the real Ren'Py on it as a
child process, one at a time per kernel, with its output in ``<logs>/viewer/renpy_viewer.log``.

The engine comes from the environment or configuration, never from a request: ``COMFYVN_RENPY_EXECUTABLE``
(a launcher), ``COMFYVN_RENPY_SDK`` (an SDK folder), else what `comfyvn_renpy.engine.find_engine` finds
(Debian's ``/usr/games/renpy``). A request may name ``renpy_executable`` or ``renpy_sdk`` only when that
path is listed in ``viewer.allowed_executables`` of comfyvn.json. Without an engine, ``start`` falls back
to the web player (``enable_viewer_webmode``), then to a Mini-VN still (``enable_mini_vn``), and says which.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.digest import digest
from comfyvn.errors import Conflict, FeatureDisabled, Invalid, NotFound, OperationFailed
from comfyvn.paths import atomic_write_json, safe_join
from comfyvn_renpy.engine import Engine, find_engine
from comfyvn_renpy.service import ExportRequest, run_export
from comfyvn_scenario.store import ProjectStore, StoredProject

from .features import FLAG_MINI, FLAG_WEB
from .mini import DEFAULT_SIZE, Moment

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["LOG_NAME", "EngineChoice", "choose_engine", "start", "status", "stop"]

LOG_NAME = "viewer/renpy_viewer.log"  # below the kernel's logs folder
EXPORT_DIR = "viewer"  # the game's folder below a store project's exports/
_STAMP = ".comfyvn-viewer.json"
_STOP_GRACE = 5.0


@attrs.frozen
class EngineChoice:
    """The engine to run and where it came from (``request``, ``COMFYVN_RENPY_EXECUTABLE``, …); None: none."""

    engine: Engine | None
    source: str


@attrs.define
class _Running:
    process: subprocess.Popen[bytes]
    project: str
    engine: str
    started: float
    log: Any


_LOCK = threading.Lock()
_VIEWERS: weakref.WeakKeyDictionary[Kernel, _Running] = weakref.WeakKeyDictionary()


def _allowed(kernel: Kernel) -> set[Path]:
    section = kernel.config.get("viewer")
    listed = section.get("allowed_executables") if isinstance(section, dict) else None
    if not isinstance(listed, list):
        return set()
    return {Path(p).expanduser().resolve() for p in listed if isinstance(p, str) and p.strip()}


def choose_engine(kernel: Kernel, executable: str | None = None, sdk: str | None = None) -> EngineChoice:
    """The engine for a start: a requested path only when configured as allowed (400 otherwise, without
    echoing it), else ``COMFYVN_RENPY_EXECUTABLE``, ``COMFYVN_RENPY_SDK``, then the installed one."""
    for value, field in ((executable, "renpy_executable"), (sdk, "renpy_sdk")):
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise Invalid(f"{field} must be a path", field=field, code="invalid_executable")
        if Path(value).expanduser().resolve() not in _allowed(kernel):
            raise Invalid(
                f"{field} is not one of viewer.allowed_executables in comfyvn.json; the engine comes from "
                "COMFYVN_RENPY_EXECUTABLE, COMFYVN_RENPY_SDK or the installed Ren'Py",
                field=field,
                code="executable_not_allowed",
            )
        engine = find_engine(value, env={})
        if engine is None:
            raise NotFound(f"no Ren'Py engine at the allowed {field}", field=field, code="engine_not_found")
        return EngineChoice(engine, "request")
    env = {**os.environ, **kernel.env}
    if launcher := env.get("COMFYVN_RENPY_EXECUTABLE"):
        return EngineChoice(find_engine(launcher, env={}), "COMFYVN_RENPY_EXECUTABLE")
    engine = find_engine(None, env=env)
    return EngineChoice(engine, engine.source if engine is not None else "none")


def _load(kernel: Kernel, project_id: str | None, project_path: str | None) -> StoredProject:
    """The store project named by id, or by a folder below the store (never elsewhere on the server)."""
    store = ProjectStore.for_kernel(kernel)
    if (project_id is None) == (project_path is None):
        raise Invalid("name the project with project_id or project_path (one of them)", field="project_id")
    if project_id is not None:
        return store.load(project_id)
    assert project_path is not None
    folder = safe_join(store.root, project_path, field="project_path")
    if folder.parent != store.root.resolve() and folder.parent != store.root:
        raise Invalid("project_path is a project folder of the store", field="project_path", code="invalid_path")
    return store.load(folder.name)


def _export(kernel: Kernel, stored: StoredProject) -> Path:
    """The project's game for the viewer, exported again only when its files changed since the last time."""
    store = ProjectStore.for_kernel(kernel)
    out = store.exports_dir(stored.id, EXPORT_DIR)
    stamp = digest({"files": stored.files})
    marker = out / _STAMP
    try:
        current = marker.read_text(encoding="utf-8") if marker.is_file() else ""
    except OSError:
        current = ""
    if current == f'"{stamp}"' and (out / "game").is_dir():
        return out
    request = ExportRequest(project=stored.path, out=out, source=stored, relative_to=stored.path)
    result = run_export(kernel, request)
    if result.get("ok") is not True:
        raise OperationFailed("the export for the viewer failed", field="project_id", code="export_failed")
    atomic_write_json(marker, stamp)
    return out


def _video(kernel: Kernel) -> str:
    """SDL's video driver: ``COMFYVN_VIEWER_VIDEO`` (``offscreen`` for headless runs), else the desktop's."""
    env = {**os.environ, **kernel.env}
    if wanted := env.get("COMFYVN_VIEWER_VIDEO"):
        return wanted
    if env.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "x11" if env.get("DISPLAY") else "offscreen"


def _fallback(kernel: Kernel, stored: StoredProject, reason: str) -> dict[str, Any]:
    """No engine: the web player when it is on, else a Mini-VN still of the start, saying which and why."""
    if kernel.flags.is_enabled(FLAG_WEB):
        return {"mode": "web", "reason": reason, "project": stored.id, "url": f"/play/{stored.id}"}
    if kernel.flags.is_enabled(FLAG_MINI):
        from .thumbnails import LoadedProject, snapshot

        still = snapshot(kernel, LoadedProject(stored.id, stored.project, dict(stored.files)), Moment(), DEFAULT_SIZE)
        return {"mode": "mini", "reason": reason, "project": stored.id, **still}
    # Both fallbacks off: the answer names the web player's flag, the first fallback to turn back on.
    raise FeatureDisabled(FLAG_WEB)


def start(
    kernel: Kernel,
    *,
    project_id: str | None = None,
    project_path: str | None = None,
    renpy_executable: str | None = None,
    renpy_sdk: str | None = None,
) -> dict[str, Any]:
    """Start the viewer on a store project: ``{mode: native, pid, …}``, or the fallback it chose."""
    choice = choose_engine(kernel, renpy_executable, renpy_sdk)
    stored = _load(kernel, project_id, project_path)
    if choice.engine is None:
        reason = (
            "no Ren'Py engine found (install renpy, or set COMFYVN_RENPY_EXECUTABLE or COMFYVN_RENPY_SDK)"
            if choice.source == "none"
            else f"no Ren'Py engine at {choice.source}"
        )
        return _fallback(kernel, stored, reason)
    with _LOCK:
        running = _VIEWERS.get(kernel)
        if running is not None and running.process.poll() is None:
            raise Conflict(
                f"a viewer is already running (project {running.project!r}); stop it first",
                field="project_id",
                code="viewer_running",
            )
        game = _export(kernel, stored)
        log_path = kernel.paths.logs / LOG_NAME
        log_path.parent.mkdir(parents=True, exist_ok=True)
        home = kernel.paths.plugin_dir("viewer") / "renpy-home"  # saves stay below the runtime roots
        home.mkdir(parents=True, exist_ok=True)
        env = choice.engine.environment(_video(kernel), home)
        if env["SDL_VIDEODRIVER"] != "offscreen":
            env.pop("SDL_AUDIODRIVER", None)  # a player at a desktop hears the game
        log = log_path.open("wb")
        log.write(f"comfyvn viewer: Ren'Py ({choice.source}) on project {stored.id}: {game}\n".encode())
        log.flush()
        try:
            # The engine comes from configuration or an allowed path, never from the request as such.
            process = subprocess.Popen(
                choice.engine.command(str(game)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=game,
                start_new_session=True,
            )
        except OSError as exc:
            log.close()
            raise OperationFailed(
                f"the Ren'Py engine could not start ({exc.strerror})", field="renpy_executable"
            ) from None
        _VIEWERS[kernel] = _Running(process, stored.id, choice.source, time.time(), log)
    return {"mode": "native", "engine": choice.source, **status(kernel)}


def status(kernel: Kernel) -> dict[str, Any]:
    """``{running, pid, project, engine, started_at, returncode, log}`` (the log relative to the logs folder)."""
    with _LOCK:
        running = _VIEWERS.get(kernel)
        if running is None:
            return {"running": False, "pid": None, "project": None, "engine": None, "returncode": None, "log": None}
        code = running.process.poll()
        return {
            "running": code is None,
            "pid": running.process.pid,
            "project": running.project,
            "engine": running.engine,
            "started_at": round(running.started, 3),
            "returncode": code,
            "log": LOG_NAME,
        }


def stop(kernel: Kernel) -> dict[str, Any]:
    """End the viewer (SIGTERM to its process group, SIGKILL after a grace period); its final status."""
    with _LOCK:
        running = _VIEWERS.get(kernel)
        if running is None:
            raise NotFound("no viewer has been started", field=None, code="viewer_not_running")
        process = running.process
        if process.poll() is None:
            try:
                os.killpg(process.pid, 15)
                process.wait(_STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait(_STOP_GRACE)
            except ProcessLookupError:
                process.wait(_STOP_GRACE)
        running.log.close()
    return status(kernel)

"""Mini-VN with the kernel: the flag, which project, the cache of stills, the event, and the refresh job.

Stills are cached as ``<cache>/viewer/mini/<digest>.png`` (atomic writes): the digest covers every input
(`mini.still_digest`), so a cached file is always the still its digest names, and asking again for the same
moment answers from the cache with the same digest and bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from comfyvn.errors import Invalid, NotFound, TooLarge
from comfyvn.paths import atomic_write_bytes
from comfyvn_renpy.service import resolve_asset
from comfyvn_scenario import Project, load_project
from comfyvn_scenario.store import ProjectStore

from .features import FLAG_MINI, THUMBNAIL_EVENT
from .mini import Moment, parse_size, plan_still, render_still, still_digest

if TYPE_CHECKING:
    from comfyvn import Kernel
    from comfyvn_jobs import JobContext, KindRegistrar

__all__ = [
    "MAX_REFRESH_NODES",
    "REFRESH_KIND",
    "LoadedProject",
    "load",
    "refresh",
    "register_kinds",
    "snapshot",
    "submit_refresh",
    "thumbnail_file",
]

REFRESH_KIND = "viewer.mini_refresh"
#: A refresh draws one still per node; a project with more nodes is refused rather than run for hours.
MAX_REFRESH_NODES = 5000
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class LoadedProject:
    """A project to draw from: its id (the store id, or the folder's project id), the project, file digests."""

    id: str
    project: Project
    files: dict[str, str]


def load(kernel: Kernel, ref: str, *, allow_folder: bool = False, field: str = "project") -> LoadedProject:
    """A store project by id; with ``allow_folder`` (the CLI, never HTTP) also a project folder on disk."""
    store = ProjectStore.for_kernel(kernel)
    if allow_folder:
        folder = store.resolve(ref, field=field)
        files: dict[str, str] = {}
        project = load_project(folder, fingerprints=files)
        return LoadedProject(project.id or folder.name, project, files)
    stored = store.load(ref) if isinstance(ref, str) else store.load(str(ref))
    return LoadedProject(stored.id, stored.project, dict(stored.files))


def _cache_dir(kernel: Kernel) -> Path:
    return kernel.paths.cache / "viewer" / "mini"


def _resolver(kernel: Kernel) -> Callable[[str], Path | None]:
    def resolve(ref: str) -> Path | None:
        answer = resolve_asset(kernel, ref)
        path = answer.get("path") if answer else None
        return Path(path) if isinstance(path, str) else None

    return resolve


def snapshot(
    kernel: Kernel, loaded: LoadedProject, moment: Moment, size: tuple[int, int], *, url_prefix: str = ""
) -> dict[str, Any]:
    """The still of ``moment`` (from the cache when drawn before): ``{mini_digest, thumbnail_url, scene,
    node, pov, seed, width, height, cached}``. Emits ``on_thumbnail_captured``."""
    kernel.flags.require(FLAG_MINI)
    plan = plan_still(loaded.project, moment, _resolver(kernel))
    key = still_digest(plan, loaded.files, size, loaded.id)
    target = _cache_dir(kernel) / f"{key}.png"
    cached = target.is_file()
    if not cached:
        atomic_write_bytes(target, render_still(plan, size))
    result = {
        "project": loaded.id,
        "scene": plan.scene,
        "node": plan.node,
        "pov": plan.pov,
        "seed": plan.seed,
        "mini_digest": key,
        "thumbnail_url": f"{url_prefix}/api/viewer/mini/thumbnail/{key}",
        "width": size[0],
        "height": size[1],
        "cached": cached,
    }
    kernel.events.emit(THUMBNAIL_EVENT, result)
    return result


def thumbnail_file(kernel: Kernel, key: str) -> Path:
    """The cached still named by ``key`` (400 for a malformed digest, 404 when not drawn)."""
    kernel.flags.require(FLAG_MINI)
    if not isinstance(key, str) or not _DIGEST.match(key):
        raise Invalid("a thumbnail digest is 64 lower-case hex digits", field="digest", code="invalid_digest")
    path = _cache_dir(kernel) / f"{key}.png"
    if not path.is_file():
        raise NotFound("no thumbnail with that digest (draw it with /api/viewer/mini/snapshot)", field="digest")
    return path


def refresh(
    kernel: Kernel,
    loaded: LoadedProject,
    size: tuple[int, int],
    *,
    pov: str | None = None,
    seed: int = 0,
    report: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """A still of every node of the project, in story order: ``{project, count, drawn, thumbnails}``."""
    kernel.flags.require(FLAG_MINI)
    nodes = [
        (scene_id, str(node["id"]))
        for scene_id, scene in loaded.project.scenes.items()
        for node in scene.get("nodes") or ()
        if isinstance(node, dict) and isinstance(node.get("id"), str)
    ]
    if len(nodes) > MAX_REFRESH_NODES:
        raise TooLarge(f"a refresh draws at most {MAX_REFRESH_NODES} nodes", field="project", code="too_many_nodes")
    thumbnails = []
    for index, (scene_id, node_id) in enumerate(nodes):
        if report is not None:
            report(index / max(1, len(nodes)), f"{scene_id}/{node_id}")
        shot = snapshot(kernel, loaded, Moment(scene=scene_id, node=node_id, pov=pov, seed=seed), size)
        thumbnails.append({k: shot[k] for k in ("scene", "node", "mini_digest", "thumbnail_url", "cached")})
    drawn = sum(1 for t in thumbnails if not t["cached"])
    return {"project": loaded.id, "count": len(thumbnails), "drawn": drawn, "thumbnails": thumbnails}


def _check_refresh_params(params: dict[str, Any]) -> dict[str, Any]:
    if unknown := sorted(set(params) - {"project", "size", "pov", "seed"}):
        raise Invalid(f"unknown parameter {str(unknown[0])[:40]!r}", field=f"params.{str(unknown[0])[:40]}")
    project = params.get("project")
    if not isinstance(project, str) or not project:
        raise Invalid("project is a store project id", field="params.project")
    size = params.get("size", "640x360")
    width, height = parse_size(size if isinstance(size, str) else None, field="params.size")
    pov = params.get("pov")
    if pov is not None and (not isinstance(pov, str) or not 0 < len(pov) <= 255):
        raise Invalid("pov is a POV id", field="params.pov")
    seed = params.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise Invalid("seed is a whole number from 0 to 4294967295", field="params.seed")
    return {"project": project, "size": f"{width}x{height}", "pov": pov, "seed": seed}


def _run_refresh(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    loaded = load(ctx.kernel, params["project"], field="params.project")
    size = parse_size(params["size"], field="params.size")
    return refresh(ctx.kernel, loaded, size, pov=params["pov"], seed=params["seed"], report=ctx.report)


def register_kinds(register: KindRegistrar) -> None:
    """The viewer's job kind: ``viewer.mini_refresh`` (it reads and writes this machine's files: local)."""
    register(
        REFRESH_KIND,
        _run_refresh,
        "Draw the Mini-VN still of every node of a store project (cached by digest).",
        check=_check_refresh_params,
        local=True,
    )


def submit_refresh(kernel: Kernel, params: dict[str, Any]) -> dict[str, Any]:
    """Queue a ``viewer.mini_refresh`` job after checking the flag, params and project; returns the job."""
    from comfyvn_jobs import jobs_for

    kernel.flags.require(FLAG_MINI)
    clean = _check_refresh_params(params)
    load(kernel, clean["project"], field="project")  # an unknown project answers 404 now, not in the job
    service = jobs_for(kernel)
    return service.get(service.submit(REFRESH_KIND, clean))

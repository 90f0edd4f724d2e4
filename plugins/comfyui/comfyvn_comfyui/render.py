"""Render one piece of art (a sprite or a background) on the configured ComfyUI servers, with provenance.

A render is cached by ``(character, style, pose)`` (sprites) or ``(project, style, place)``
(backgrounds): its registry path is ``characters/<char>/<style>/<pose>.png`` or
``backgrounds/<project>/<style>/<key>.png``. The registered asset remembers the digest of everything
that went into it (workflow, prompt, seed, LoRAs, checkpoint choice); a cached render is reused while
that digest is the same, unless ``force``. A server that is down, dies mid-run or fails executing
hands the render to the next server (the outcome counts the retries) and is tried last for a while; a
server that cannot run the graph (a node or a model it lacks) hands it on too, without that penalty.
When every server failed, the error names each one's reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import attrs
import structlog
from comfyvn.errors import ComfyVNError, Invalid, NotFound, UpstreamError
from comfyvn.paths import atomic_write_text, safe_join
from comfyvn_assets import AssetRegistry

from .client import ComfyClient, ComfyExecutionError, ComfyRejected, ComfyUnavailable, RunResult
from .loras import LoraEntry, LoraStore
from .matte import is_cutout, matte, open_image
from .prompts import STYLES, PromptSpec, background_prompt, seed_for, sprite_prompt
from .servers import POOL, SETUP_HINT, Server, ServerPool, ServerSettings
from .workflows import Workflow, bind, builtin, check_graph, load_custom

__all__ = [
    "GAME_SIZE",
    "SlotRequest",
    "cache_path",
    "current_digest",
    "dest_path",
    "is_cached",
    "project_path",
    "render_digest",
    "render_slot",
]

log = structlog.get_logger("comfyvn.pov.render")

#: Backgrounds are delivered at the game's resolution (the exporter's default).
GAME_SIZE = (1920, 1080)
_MAX_FAILURES_SHOWN = 8


@attrs.frozen
class SlotRequest:
    """What to render: a character's sprite in one expression, or one background place."""

    kind: str  # "sprite" | "background"
    style: str
    character_id: str | None = None
    character: Mapping[str, Any] = attrs.field(factory=dict)
    expression: str | None = None
    place: Mapping[str, Any] = attrs.field(factory=dict)  # key, location, time_of_day, weather, ref
    project: str | None = None
    portrait: bytes | None = None
    force: bool = False

    def label(self) -> str:
        if self.kind == "sprite":
            return f"{self.character_id} {self.expression} ({self.style})"
        return f"background {self.place.get('key')} ({self.style})"


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _segment(text: str | None) -> str:
    """``text`` as one registry path segment. Ids and expression names are free text in a project ("wow?",
    "Very Stern"); a plain name stays as it is (so existing caches stay valid), any other gets a slug and a
    short hash of the original, so two names never share a file."""
    value = str(text or "")
    slug = _UNSAFE.sub("_", value)[:48].strip("_.") or "x"
    return slug if slug == value else f"{slug}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def dest_path(request: SlotRequest) -> str:
    """The registry path of a render: the cache key made visible."""
    if request.kind == "sprite":
        return f"characters/{_segment(request.character_id)}/{request.style}/{_segment(request.expression)}.png"
    return f"backgrounds/{_segment(request.project or 'shared')}/{request.style}/{_segment(request.place['key'])}.png"


def project_path(request: SlotRequest) -> str | None:
    """Where a sprite goes when another project holds a different look at `dest_path` (None: backgrounds,
    which are per project already, and sprites outside a project)."""
    if request.kind != "sprite" or not request.project:
        return None
    char, expression = _segment(request.character_id), _segment(request.expression)
    return f"characters/{char}/{request.style}/projects/{_segment(request.project)}/{expression}.png"


def cache_path(registry: AssetRegistry, request: SlotRequest, digest: str) -> str:
    """The registry path this render reads and writes. Character ids come from names, so two projects can
    each have an ``alice``: the shared `dest_path` serves every project with the same look (same digest),
    but a different look held by another project is never replaced there (same uid: that project's export
    would show the wrong person) — it goes to the project's own `project_path`."""
    shared, own = dest_path(request), project_path(request)
    if own is None:
        return shared
    if registry.by_path(own) is not None:
        return own
    existing = registry.by_path(shared)
    if existing is None or existing.provenance.get("render_digest") == digest:
        return shared
    return own if any(ref != f"project:{request.project}" for ref in existing.refs) else shared


def _tool_version() -> str:
    try:
        return version("comfyvn-comfyui")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "0"


def _prompt(request: SlotRequest) -> PromptSpec:
    style = STYLES[request.style]
    if request.kind == "sprite":
        return sprite_prompt(request.character, request.expression or "neutral", style)
    return background_prompt(request.place, style)


def _is_cutout(data: bytes) -> bool:
    try:
        return is_cutout(data)
    except ComfyVNError:  # a portrait Pillow cannot read is no reference picture
        return False


def user_workflows(kernel: Any) -> Path:
    """``<config>/comfyui/workflows``: an API-format workflow named like a built-in one replaces it."""
    return Path(kernel.paths.config) / "comfyui" / "workflows"


def workflow_named(kernel: Any, name: str) -> tuple[Workflow, str]:
    """``(workflow, source)``: the user's ``<name>.json`` from `user_workflows` (with its ``comfyvn_bindings``;
    source ``custom``), else the built-in one (source ``builtin``)."""
    custom = user_workflows(kernel) / f"{name}.json"
    return (load_custom(custom), "custom") if custom.is_file() else (builtin(name), "builtin")


def _workflow_name(request: SlotRequest, portrait_img2img: bool) -> str:
    """Backgrounds: ``background``. Sprites: from the card portrait when it is a cut-out (pasted on a flat
    backdrop and redrawn: the face is kept and the result still mattes), else from the text alone — a
    framed portrait redrawn image-to-image keeps its scenery, which no matte can take away — unless
    ``comfyui.portrait_img2img`` asks for that anyway."""
    if request.kind == "background":
        return "background"
    if request.portrait and _is_cutout(request.portrait):
        return "sprite_pose_composite"
    if request.portrait and portrait_img2img:
        return "sprite_img2img"
    return "sprite"


def _params(request: SlotRequest, spec: PromptSpec, loras: Sequence[LoraEntry], workflow: Workflow) -> dict[str, Any]:
    seed_key = request.character_id if request.kind == "sprite" else f"{request.project}/{request.place.get('key')}"
    params: dict[str, Any] = {
        **spec.to_params(),
        "seed": seed_for(request.kind, str(seed_key), request.expression or "", request.style),
        "loras": [entry.to_wire() for entry in loras],
        "filename_prefix": f"comfyvn/{request.kind}",
    }
    if "init_image" in workflow.bindings:
        # Keeps the face of the card portrait; redraws the pose and the backdrop.
        params["denoise"] = STYLES[request.style].img2img_denoise
    return params


def render_digest(request: SlotRequest, workflow: Workflow, params: Mapping[str, Any], checkpoint: str | None) -> str:
    """The digest of everything a render is made of; a cached render with another digest is stale."""
    used = request.portrait if "init_image" in workflow.bindings else None
    portrait = hashlib.sha256(used).hexdigest() if used else None
    body = {
        "workflow": workflow.name,
        "graph": workflow.graph,
        "params": dict(params),
        "checkpoint": checkpoint,
        "portrait": portrait,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _checkpoint(object_info: Mapping[str, Any], wanted: str | None) -> str:
    """The checkpoint to load: the configured one when the server has it, else the server's first."""
    spec = object_info.get("CheckpointLoaderSimple", {}).get("input", {}).get("required", {}).get("ckpt_name")
    names = spec[0] if isinstance(spec, list) and spec and isinstance(spec[0], list) else []
    if wanted:
        if wanted not in names:
            raise ComfyRejected(f"the server has no checkpoint {wanted!r}")
        return wanted
    if not names:
        raise ComfyRejected("the server lists no checkpoint (CheckpointLoaderSimple.ckpt_name is empty)")
    return str(names[0])


def _cover(data: bytes, size: tuple[int, int]) -> bytes:
    """A picture scaled and centre-cropped to exactly ``size`` (a background fills the screen)."""
    with open_image(data) as image:  # bounded like a sprite's: the bytes come from a server
        picture = image.convert("RGB")
    scale = max(size[0] / picture.width, size[1] / picture.height)
    scaled = picture.resize((max(size[0], round(picture.width * scale)), max(size[1], round(picture.height * scale))))
    left, top = (scaled.width - size[0]) // 2, (scaled.height - size[1]) // 2
    out = io.BytesIO()
    scaled.crop((left, top, left + size[0], top + size[1])).save(out, "PNG", optimize=True)
    return out.getvalue()


def _matte_answer(answer: object, size: tuple[int, int]) -> tuple[bytes, dict[str, Any]] | str:
    """A ``comfyui_matte_sprite`` answer as ``(png, provenance record)``, or why it cannot be used."""
    if not isinstance(answer, Mapping):
        return f"the answer is {type(answer).__name__}, not an object"
    png = answer.get("png")
    if not isinstance(png, bytes) or not png:
        return "the answer has no PNG bytes"
    try:
        with open_image(png) as image:
            if image.size != size:
                return f"the cut-out is {image.width}x{image.height}, the render {size[0]}x{size[1]}"
        if not is_cutout(png):
            return "the cut-out's border is not transparent"
    except ComfyVNError as exc:
        return f"the cut-out cannot be read: {exc.message}"
    record: dict[str, Any] = {"method": str(answer.get("method") or "plugin")[:40]}
    for key in ("model", "provider"):
        if isinstance(answer.get(key), str):
            record[key] = Path(str(answer[key])).name[:200]  # a base name: provenance never holds a server path
    warnings = answer.get("warnings")
    if isinstance(warnings, list | tuple):
        record["warnings"] = [str(w)[:300] for w in warnings[:8]]
    return png, record


def _matte_sprite(kernel: Any, raw: bytes) -> tuple[bytes, dict[str, Any]]:
    """The sprite as a cut-out and the provenance record of how: ``flood_fill`` (a flat backdrop keyed out),
    an implementation of ``comfyui_matte_sprite`` (e.g. ``depth``), or ``none`` with the reason the render is
    kept as it came. An implementation that raises or answers garbage is logged and ignored: the render is
    finished, losing it to an optional matte would waste it."""
    keyed = matte(raw)
    if keyed != raw:  # `matte` hands the input back unchanged when there is no flat backdrop to key
        return keyed, {"method": "flood_fill"}
    if is_cutout(raw):
        return raw, {"method": "none", "reason": "the render is already transparent around the figure"}
    hook = getattr(kernel.pm.hook, "comfyui_matte_sprite", None)
    if hook is None or not hook.get_hookimpls():
        return raw, {"method": "none", "reason": "no flat backdrop to key, and no depth matte installed"}
    try:
        answer = hook(image=raw, kernel=kernel)
    except Exception as exc:
        log.warning("sprite matte hook failed; the render keeps its backdrop", error=f"{type(exc).__name__}: {exc}")
        return raw, {"method": "none", "reason": f"the matte hook failed ({type(exc).__name__})"}
    if answer is None:
        return raw, {"method": "none", "reason": "no flat backdrop to key, and no matte plugin could cut the figure"}
    with open_image(raw) as image:
        size = image.size
    used = _matte_answer(answer, size)
    if isinstance(used, str):
        log.warning("sprite matte answer unusable; the render keeps its backdrop", reason=used)
        return raw, {"method": "none", "reason": f"the matte plugin's answer was unusable: {used}"}
    return used


@attrs.define
class _Attempt:
    result: RunResult
    server: Server
    checkpoint: str
    graph: dict[str, Any]
    retries: int
    failures: list[dict[str, str]]


def _run(
    settings: ServerSettings,
    servers: Sequence[Server],
    request: SlotRequest,
    workflow: Workflow,
    params: Mapping[str, Any],
    *,
    checkpoint: str | None,
    pool: ServerPool,
    progress: Callable[[float, str], None] | None,
    cancelled: Callable[[], bool] | None,
) -> _Attempt:
    failures: list[dict[str, str]] = []
    for server in pool.order(servers):
        pool.acquire(server)
        failed = True
        try:
            with ComfyClient(server.url, token=settings.token(server), timeout=30.0) as client:
                chosen = _checkpoint(client.object_info(), checkpoint)
                bound = dict(params, checkpoint=chosen)
                if "init_image" in workflow.bindings and request.portrait:
                    bound["init_image"] = client.upload_image(request.portrait, f"{_slug(request)}.png")
                graph = bind(workflow, bound)
                problems = check_graph(graph, client.object_info())
                if problems:
                    raise ComfyRejected(f"the server cannot run workflow {workflow.name!r}: {problems[0]}")
                result = client.run(graph, on_progress=progress, cancelled=cancelled)
            failed = False
            return _Attempt(result, server, chosen, graph, len(failures), failures)
        except (ComfyUnavailable, ComfyExecutionError) as exc:
            failures.append({"server": server.name, "error": type(exc).__name__, "message": str(exc)[:300]})
            log.warning("render failed on a server; trying the next", server=server.name, error=str(exc)[:300])
        except ComfyRejected as exc:
            # This server lacks a node or a model the workflow needs: another one may have them. It is
            # not down, so other renders still go to it first.
            failed = False
            failures.append({"server": server.name, "error": "ComfyRejected", "message": str(exc)[:300]})
            log.warning("server cannot run the workflow", server=server.name, error=str(exc)[:300])
        finally:
            pool.release(server, failed=failed)
    shown = "; ".join(f"{f['server']}: {f['message']}" for f in failures[:_MAX_FAILURES_SHOWN])
    raise UpstreamError(
        f"every ComfyUI server failed to render {request.label()}: {shown}", field="servers", code="render_failed"
    )


def _slug(request: SlotRequest) -> str:
    return hashlib.sha256(dest_path(request).encode()).hexdigest()[:16]


def _prepare(
    kernel: Any, request: SlotRequest
) -> tuple[list[LoraEntry], Workflow, str, PromptSpec, dict[str, Any], str | None, str]:
    """Everything a render is made of, read now: LoRAs, workflow (and its source), prompt, parameters, the
    configured checkpoint and the `render_digest` of them."""
    loras = LoraStore(kernel.paths.data).get(request.character_id) if request.character_id else []
    workflow, workflow_source = workflow_named(
        kernel, _workflow_name(request, _config(kernel, "portrait_img2img") is True)
    )
    spec = _prompt(request)
    params = _params(request, spec, loras, workflow)
    wanted_checkpoint = _configured_checkpoint(kernel)
    digest = render_digest(request, workflow, params, wanted_checkpoint)
    return list(loras), workflow, workflow_source, spec, params, wanted_checkpoint, digest


def current_digest(kernel: Any, request: SlotRequest) -> str:
    """The `render_digest` ``request`` has with the settings as they are now (LoRAs, workflows, checkpoint):
    what a job key must carry so that a change to them is a new job rather than the last run's answer."""
    return _prepare(kernel, request)[-1]


def is_cached(kernel: Any, request: SlotRequest) -> bool:
    """Whether `render_slot` would reuse a cached render for ``request`` now (no ``force``). A workflow that
    cannot be read says False: the render would fail naming it."""
    try:
        digest = current_digest(kernel, request)
    except ComfyVNError:
        return False
    registry = AssetRegistry.for_kernel(kernel)
    existing = registry.by_path(cache_path(registry, request, digest))
    return existing is not None and existing.provenance.get("render_digest") == digest


def render_slot(
    kernel: Any,
    request: SlotRequest,
    *,
    servers: Sequence[Server] | None = None,
    pool: ServerPool = POOL,
    progress: Callable[[float, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Render (or reuse) one slot; return the spec's per-pose entry plus what the batch summary counts:
    ``{cached, asset_uid, asset_path, asset_sidecar, bridge_sidecar, loras, server, retries, failures}``."""
    if request.style not in STYLES:
        raise Invalid(f"unknown style {request.style!r}; one of {', '.join(sorted(STYLES))}", field="style")
    settings = ServerSettings(kernel)
    listed = list(servers) if servers is not None else settings.servers()
    registry = AssetRegistry.for_kernel(kernel)
    loras, workflow, workflow_source, spec, params, wanted_checkpoint, digest = _prepare(kernel, request)
    path = cache_path(registry, request, digest)
    entry = {
        "asset_path": path,
        "asset_sidecar": f"{path}.asset.json",
        "bridge_sidecar": f"{path}.bridge.json",
        "loras": [entry.to_wire() for entry in loras],
    }
    existing = registry.by_path(path)
    if existing is not None and not request.force and existing.provenance.get("render_digest") == digest:
        log.debug("render cache hit", path=path)
        return {"cached": True, "asset_uid": existing.uid, **entry, "server": None, "retries": 0, "failures": []}
    if not listed:
        raise NotFound(SETUP_HINT, field="servers", code="comfyui_not_configured")
    log.debug("render cache miss", path=path, force=request.force, stale=existing is not None)
    started = time.time()
    attempt = _run(
        settings,
        listed,
        request,
        workflow,
        params,
        checkpoint=wanted_checkpoint,
        pool=pool,
        progress=progress,
        cancelled=cancelled,
    )
    images = [image for image in attempt.result.images if image.type == "output"] or list(attempt.result.images)
    if not images:
        raise UpstreamError(
            f"{attempt.server.name} finished {request.label()} without an output image",
            field="outputs",
            code="render_failed",
        )
    size = (spec.output_width or GAME_SIZE[0], spec.output_height or GAME_SIZE[1])
    matting: dict[str, Any] | None = None
    try:
        if request.kind == "sprite":
            data, matting = _matte_sprite(kernel, images[0].data)
        else:
            data = _cover(images[0].data, size)
    except ComfyVNError as exc:
        raise UpstreamError(
            f"{attempt.server.name} returned an output image that cannot be used for {request.label()}: {exc.message}",
            field="outputs",
            code="render_failed",
        ) from exc
    provenance = {
        "tool": "comfyvn-comfyui",
        "tool_version": _tool_version(),
        "workflow": workflow.name,
        "workflow_source": workflow_source,
        "prompt_id": attempt.result.prompt_id,
        "seed": params["seed"],
        "checkpoint": attempt.checkpoint,
        "loras": entry["loras"],
        "prompt": params["prompt"],
        "negative": params["negative"],
        "style": request.style,
        "character": request.character_id,
        "expression": request.expression,
        "place": dict(request.place) if request.kind == "background" else None,
        "project": request.project,
        "pov": request.character_id if request.kind == "sprite" else None,
        "matte": matting,
        "comfyui_server": {"name": attempt.server.name, "url": attempt.server.url},
        "render_time": round(time.time() - started, 3),
        "rendered_at": round(started, 3),
        "render_digest": digest,
    }
    asset = registry.register_bytes(
        data,
        asset_type="character.sprite" if request.kind == "sprite" else "background",
        dest_path=path,
        provenance=provenance,
        tags=_tags(request),
        source="comfyui",
        metadata={"rendered": True, "retries": attempt.retries},
    )
    bridge = {
        "prompt_id": attempt.result.prompt_id,
        "server": {"name": attempt.server.name, "url": attempt.server.url},
        "workflow": workflow.name,
        "prompt": attempt.graph,
        "outputs": [
            {"node": i.node_id, "filename": i.filename, "subfolder": i.subfolder, "type": i.type}
            for i in attempt.result.images
        ],
        "history": attempt.result.history,
        "elapsed": round(attempt.result.elapsed, 3),
    }
    atomic_write_text(safe_join(registry.root, f"{path}.bridge.json"), json.dumps(bridge, indent=2, sort_keys=True))
    log.debug("rendered", path=path, server=attempt.server.name, retries=attempt.retries)
    return {
        "cached": False,
        "asset_uid": asset.uid,
        **entry,
        "server": attempt.server.name,
        "retries": attempt.retries,
        "failures": attempt.failures,
    }


def _tags(request: SlotRequest) -> list[str]:
    if request.kind == "sprite":
        return ["comfyui", "sprite", f"character:{request.character_id}", f"expression:{request.expression}"]
    return ["comfyui", "background", f"style:{request.style}"]


def _config(kernel: Any, name: str) -> Any:
    section = kernel.config.get("comfyui")
    return section.get(name) if isinstance(section, dict) else None


def _configured_checkpoint(kernel: Any) -> str | None:
    value = _config(kernel, "checkpoint")
    return value if isinstance(value, str) and value else None

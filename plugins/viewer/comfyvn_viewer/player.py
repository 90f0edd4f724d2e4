"""The web player's HTTP surface: the page, its static files, and the JSON the page plays through.

``GET /play/{project_id}`` is the page (plain HTML/CSS/JS shipped in ``static/``, no build step, nothing
from a CDN). The page talks to ``/api/viewer/play/{project_id}/…``: ``info``, ``start``, ``step``,
``view`` (see `playback.Playable`) and ``asset/<path>`` for the project's pictures. Every answer comes
from the project store's current version; a compiled project is kept while its files are unchanged.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from comfyvn.errors import ComfyVNError
from comfyvn.wire import read_json
from comfyvn_renpy.fonts import configured_font
from comfyvn_renpy.service import resolve_asset
from comfyvn_scenario.store import ProjectStore
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .features import FLAG_WEB
from .playback import Playable
from .share import ShareLinks

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["SHARE_PREFIX", "STATIC_DIR", "STATIC_PREFIX", "PlayerService", "player_routes"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: Under these the server needs no API token off-loopback (see plugin.server_open_prefixes): a share link
#: carries its own signed token, and the page it opens loads the player's static files.
SHARE_PREFIX, STATIC_PREFIX = "/api/viewer/web/", "/play/static/"
_MEDIA = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif"}
_MEDIA.update(
    {".bmp": "image/bmp", ".ogg": "audio/ogg", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".opus": "audio/ogg"}
)
_MAX_SEED = 2**63


class PlayerService:
    """Compiled projects by store id, rebuilt when the project's files change (a few kept)."""

    KEEP = 8

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.store = ProjectStore.for_kernel(kernel)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[Any, ...], Playable]] = {}

    def playable(self, project_id: str) -> Playable:
        """The project compiled for play (404 when the store has no such project)."""
        stored = self.store.load(project_id)
        key = (stored.version, tuple(sorted(stored.files.items())))
        with self._lock:
            cached = self._cache.get(project_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        config = self.kernel.config if isinstance(self.kernel.config, dict) else {}
        renpy = config.get("renpy") if isinstance(config.get("renpy"), dict) else {}
        playable = Playable(
            stored.project,
            resolve_asset=lambda ref: resolve_asset(self.kernel, ref),
            user_font=configured_font(renpy) if renpy else None,
        )
        with self._lock:
            self._cache[project_id] = (key, playable)
            while len(self._cache) > self.KEEP:
                self._cache.pop(next(iter(self._cache)))
        return playable


def _page(api: str) -> str:
    """player.html with the API base and the static folder filled in (escaped: they hold ids)."""
    template = (STATIC_DIR / "player.html").read_text(encoding="utf-8")
    return template.replace("{{API}}", html.escape(api, quote=True)).replace("{{STATIC}}", "/play/static")


def _index(projects: list[dict[str, Any]]) -> str:
    """The page at ``/play``: every store project with a link to play it (titles and ids escaped)."""
    rows = []
    for summary in projects:
        scenes, nodes = len(summary["scenes"]), summary["nodes"]
        size = f"{scenes} scene{'s' if scenes != 1 else ''}, {nodes} node{'s' if nodes != 1 else ''}"
        rows.append(
            f'<li><a href="/play/{quote(summary["id"], safe="")}">{html.escape(summary["title"] or summary["id"])}</a>'
            f' <span class="meta">{html.escape(summary["id"])} &middot; {size}</span></li>'
        )
    listing = (
        f'<ul class="projects">{"".join(rows)}</ul>'
        if rows
        else "<p>No projects yet. Import a chat and add it to the studio:</p>"
        "<pre>comfyvn import sillytavern CHAT.jsonl --out my-story\ncomfyvn projects add my-story</pre>"
    )
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return template.replace("{{STATIC}}", "/play/static").replace("{{PROJECTS}}", listing)


def _seed(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_SEED:
        raise ComfyVNError("seed must be a whole number from 0", field="seed", code="invalid_seed")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value or len(value) > 255):
        raise ComfyVNError(f"{key} must be a non-empty string", field=key, code=f"invalid_{key}")
    return value


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request, default={})
    if not isinstance(body, dict):
        raise ComfyVNError("the request body must be a JSON object", field="body", code="invalid_request")
    return body


def play_api(
    service: PlayerService, project_of: Callable[[Request], str], base_of: Callable[[Request], str]
) -> dict[str, Callable[[Request], Any]]:
    """The page's endpoints for a project named by ``project_of(request)``; ``base_of(request)`` is the
    URL prefix asset links are built under (so a shared link's page loads through the shared link)."""
    kernel = service.kernel

    def urls(request: Request) -> Callable[[str], str]:
        base = base_of(request)
        return lambda dest: f"{base}/asset/{dest}"

    async def info(request: Request) -> JSONResponse:
        """Title and POVs of the project the player plays.
        ---
        summary: Player title screen
        responses:
          200: {description: "{ok, id, title, default_pov, povs: [{id, name}]}"}
          403: {description: enable_viewer_webmode is off}
          404: {description: no such project, or the share link is not valid or has expired}
        """
        kernel.flags.require(FLAG_WEB)
        project_id = project_of(request)
        playable = await run_in_threadpool(service.playable, project_id)
        return JSONResponse({"ok": True, **playable.info()})

    async def start(request: Request) -> JSONResponse:
        """The first moment of a run: the start node (its actions applied), nothing drawn yet.
        ---
        summary: Start a run in the player
        requestBody:
          content: {application/json: {schema: {type: object, properties: {seed: {type: integer, minimum: 0},
                    pov: {type: string}}}}}
        responses:
          200: {description: "a frame: {ok, state, scene, node{id, type, speaker, pages}, stage{background, sprites,
                side}, audio{music, music_cue, sounds, voice}, choices[{id, label}], mode (menu|draw|end), finished}"}
          400: {description: bad seed or an unknown POV}
          404: {description: no such project, or the share link is not valid or has expired}
        """
        kernel.flags.require(FLAG_WEB)
        body = await _body(request)
        seed, pov = _seed(body.get("seed")), _optional_str(body, "pov")

        def work() -> dict[str, Any]:
            playable = service.playable(project_of(request))
            return {"ok": True, **playable.frame(playable.start(seed=seed, pov=pov), urls(request))}

        return JSONResponse(await run_in_threadpool(work))

    async def step(request: Request) -> JSONResponse:
        """One runner step from the state the last frame gave: the choice taken, or a seeded draw.
        ---
        summary: Step the player
        requestBody:
          required: true
          content: {application/json: {schema: {type: object, required: [state], properties: {state: {type: object},
                    choice_id: {type: string}}}}}
        responses:
          200: {description: the next frame}
          400: {description: state missing or malformed}
          422: {description: an unknown node or an unavailable choice}
        """
        kernel.flags.require(FLAG_WEB)
        body = await _body(request)
        choice = _optional_str(body, "choice_id")
        if "state" not in body:
            raise ComfyVNError(
                "state is required (the state the last answer gave)", field="state", code="invalid_state"
            )

        def work() -> dict[str, Any]:
            playable = service.playable(project_of(request))
            return {"ok": True, **playable.frame(playable.step(body["state"], choice), urls(request))}

        return JSONResponse(await run_in_threadpool(work))

    async def view(request: Request) -> JSONResponse:
        """The frame of a state without stepping (a loaded save, a POV switch).
        ---
        summary: Show a saved state
        requestBody:
          required: true
          content: {application/json: {schema: {type: object, required: [state], properties: {state: {type: object},
                    pov: {type: string}}}}}
        responses:
          200: {description: the frame of that state}
          400: {description: state missing or malformed, or an unknown POV}
          422: {description: the state names an unknown node}
        """
        kernel.flags.require(FLAG_WEB)
        body = await _body(request)
        pov = _optional_str(body, "pov")
        if "state" not in body:
            raise ComfyVNError("state is required", field="state", code="invalid_state")

        def work() -> dict[str, Any]:
            playable = service.playable(project_of(request))
            return {"ok": True, **playable.frame(playable.view(body["state"], pov), urls(request))}

        return JSONResponse(await run_in_threadpool(work))

    async def asset(request: Request) -> Response:
        """A picture or sound of the project, by its path in the export plan (nothing else is served).
        ---
        summary: Player asset
        parameters: [{name: path, in: path, required: true, schema: {type: string}}]
        responses:
          200: {description: the file}
          404: {description: no such asset in the project's export plan}
        """
        kernel.flags.require(FLAG_WEB)
        playable = await run_in_threadpool(service.playable, project_of(request))
        path = playable.asset_file(str(request.path_params["path"]))
        return FileResponse(path, media_type=_MEDIA.get(path.suffix.lower(), "application/octet-stream"))

    return {"info": info, "start": start, "step": step, "view": view, "asset": asset}


def player_routes(kernel: Kernel) -> list[BaseRoute]:
    """``/play/{project_id}``, ``/play/static/…``, ``/api/viewer/play/{project_id}/…``, and the share links:
    ``POST /api/viewer/share`` and ``/api/viewer/web/{token}/…`` (the same page and endpoints)."""
    service = PlayerService(kernel)

    async def page(request: Request) -> HTMLResponse:
        """The web player page for a store project.
        ---
        summary: Play a project in the browser
        parameters: [{name: project_id, in: path, required: true, schema: {type: string}}]
        responses:
          200: {description: the player page (HTML)}
          403: {description: enable_viewer_webmode is off}
          404: {description: no stored project with that id}
        """
        kernel.flags.require(FLAG_WEB)
        project_id = request.path_params["project_id"]
        service.store.path(project_id)  # 404 before a page that could only fail
        return HTMLResponse(_page(f"/api/viewer/play/{project_id}"))

    async def index(request: Request) -> HTMLResponse:
        """The projects of the studio, each with a link to its player.
        ---
        summary: List the projects to play
        responses:
          200: {description: the project list (HTML)}
          403: {description: enable_viewer_webmode is off}
        """
        kernel.flags.require(FLAG_WEB)
        return HTMLResponse(_index(await run_in_threadpool(service.store.list_projects)))

    async def home(request: Request) -> RedirectResponse:
        """The server's address opens the project list.
        ---
        summary: Go to the project list
        responses:
          307: {description: redirect to /play/}
        """
        return RedirectResponse("/play/", status_code=307)

    links = ShareLinks(kernel.paths.data / "plugins" / "viewer" / "share.key")

    async def share(request: Request) -> JSONResponse:
        """A read-only link to play a project, valid for ``ttl`` seconds (default a day, at most 30 days).
        ---
        summary: Share the web player
        requestBody:
          required: true
          content: {application/json: {schema: {type: object, required: [project], additionalProperties: false,
                    properties: {project: {type: string}, ttl: {type: integer, minimum: 60, maximum: 2592000}}}}}
        responses:
          200: {description: "{ok, token, url, expires_at (unix seconds), ttl}"}
          400: {description: project or ttl missing or invalid}
          403: {description: enable_viewer_webmode is off}
          404: {description: no stored project with that id}
        """
        kernel.flags.require(FLAG_WEB)
        body = await _body(request)
        unknown = sorted(set(body) - {"project", "ttl"})
        if unknown:
            raise ComfyVNError(f"unknown field {unknown[0]!r}", field=unknown[0], code="invalid_request")
        project_id = _optional_str(body, "project")
        if project_id is None:
            raise ComfyVNError("project is required (a store project's id)", field="project", code="invalid_project")
        await run_in_threadpool(service.store.path, project_id)
        issued = links.issue(project_id, body.get("ttl"))
        return JSONResponse({"ok": True, **issued, "url": f"/api/viewer/web/{issued['token']}/"})

    def shared_project(request: Request) -> str:
        return links.check(str(request.path_params["token"]))

    async def shared_page(request: Request) -> HTMLResponse:
        """The web player through a share link (no store id in the address).
        ---
        summary: Play a shared project
        parameters: [{name: token, in: path, required: true, schema: {type: string}}]
        responses:
          200: {description: the player page (HTML)}
          403: {description: enable_viewer_webmode is off}
          404: {description: the link is not valid, has expired, or its project is gone}
        """
        kernel.flags.require(FLAG_WEB)
        service.store.path(shared_project(request))
        return HTMLResponse(_page(f"/api/viewer/web/{request.path_params['token']}"))

    shared = play_api(service, shared_project, lambda r: f"/api/viewer/web/{r.path_params['token']}")
    web = "/api/viewer/web/{token}"
    api = play_api(
        service, lambda r: str(r.path_params["project_id"]), lambda r: f"/api/viewer/play/{r.path_params['project_id']}"
    )
    base = "/api/viewer/play/{project_id}"
    return [
        Route("/", home, methods=["GET"]),
        Route("/play", index, methods=["GET"]),
        Route("/play/", index, methods=["GET"]),
        Route("/play/{project_id}", page, methods=["GET"]),
        Mount("/play/static", app=StaticFiles(directory=STATIC_DIR), name="viewer_static"),
        Route(f"{base}/info", api["info"], methods=["GET"]),
        Route(f"{base}/start", api["start"], methods=["POST"]),
        Route(f"{base}/step", api["step"], methods=["POST"]),
        Route(f"{base}/view", api["view"], methods=["POST"]),
        Route(f"{base}/asset/{{path:path}}", api["asset"], methods=["GET"]),
        Route("/api/viewer/share", share, methods=["POST"]),
        Route(web, shared_page, methods=["GET"]),
        Route(f"{web}/", shared_page, methods=["GET"]),
        Route(f"{web}/info", shared["info"], methods=["GET"]),
        Route(f"{web}/start", shared["start"], methods=["POST"]),
        Route(f"{web}/step", shared["step"], methods=["POST"]),
        Route(f"{web}/view", shared["view"], methods=["POST"]),
        Route(f"{web}/asset/{{path:path}}", shared["asset"], methods=["GET"]),
    ]

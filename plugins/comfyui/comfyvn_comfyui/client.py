"""A client for one ComfyUI server: its HTTP API (httpx) and its ``/ws?clientId=`` event stream (websockets).

``run`` opens the WebSocket first (so no event of the prompt is missed), queues the graph with this client's id and a
prompt id chosen here (a caller retrying with the same id finds the prompt instead of queueing it twice), follows the
events of that prompt only, falls back to polling ``/history/{id}`` when the socket fails, and downloads every output
image through ``/view``. Cancellation and timeouts interrupt the prompt and delete it from the queue. Failures become
meaning: ``ComfyUnavailable`` (the server is unreachable, died or lost the prompt: try another), ``ComfyRejected``
(the graph is wrong: no other server will take it either), ``ComfyExecutionError`` (a node failed while running),
``ComfyCancelled``. A bearer token, when given, goes in every request and never into a message or a log line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import attrs
import httpx
import structlog
from comfyvn.errors import Invalid, TooLarge, UpstreamError, clip
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

__all__ = [
    "ComfyCancelled",
    "ComfyClient",
    "ComfyError",
    "ComfyExecutionError",
    "ComfyRejected",
    "ComfyUnavailable",
    "OutputImage",
    "RunResult",
]

log = structlog.get_logger("comfyvn.comfyui")

MAX_JSON = 32 * 1024 * 1024
MAX_OBJECT_INFO = 128 * 1024 * 1024  # every installed node's spec and model list: several MB on a busy server
MAX_IMAGE = 64 * 1024 * 1024
MAX_UPLOAD = 64 * 1024 * 1024
MAX_WS_MESSAGE = 16 * 1024 * 1024
MAX_IMAGES = 64
WS_TICK = 0.2  # how often a quiet socket lets run() look at the clock and the cancel flag
SAFETY_POLL = 5.0  # with a live socket, still ask /history this often in case an event was lost
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF", b"GIF8")
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ ()-]{0,150}$")


class ComfyError(UpstreamError):
    """Something about a ComfyUI server or its answer; the subclasses say what the caller may do about it."""

    code = "comfyui_error"


class ComfyUnavailable(ComfyError):
    """Unreachable, refused, timed out, died mid-run or lost the prompt: another server may do the work."""

    code = "comfyui_unavailable"


class ComfyRejected(ComfyError):
    """The server refused the graph (``invalid_prompt``, ``node_errors``): retrying it elsewhere will not help."""

    code = "comfyui_rejected"

    def __init__(self, message: str, *, node_errors: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.node_errors = dict(node_errors or {})


class ComfyExecutionError(ComfyError):
    """A node failed while the prompt ran (out of memory, a missing file...): another server may succeed."""

    code = "comfyui_execution_error"

    def __init__(self, message: str, *, node_id: str | None = None, node_type: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.node_id, self.node_type = node_id, node_type


class ComfyCancelled(ComfyError):
    """The caller cancelled the run; the prompt was interrupted and taken off the queue."""

    code = "comfyui_cancelled"


@attrs.frozen
class OutputImage:
    """One image a prompt produced, with where the server keeps it."""

    node_id: str
    filename: str
    subfolder: str
    type: str
    data: bytes = attrs.field(repr=lambda data: f"<{len(data)} bytes>")


@attrs.frozen
class RunResult:
    """A finished prompt: its id, the server (credentials removed), its images, the seconds it took, its history."""

    prompt_id: str
    server: str
    images: tuple[OutputImage, ...]
    elapsed: float
    history: dict[str, Any] = attrs.field(repr=False)


class _NoDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The WebSocket library logs every handshake header at DEBUG, the Authorization header included: never that."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (the stdlib's name)
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOGGER = _NoDebug(logging.getLogger("comfyvn.comfyui.websocket"), {})


def _label(base_url: str) -> str:
    """The server as messages name it: scheme, host, port and path, never user:password or a query."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class _Progress:
    """Turns ``executing``/``progress``/``execution_cached`` events into a monotone fraction and a line of text."""

    def __init__(self, graph: Mapping[str, Any], callback: Callable[[float, str], None] | None) -> None:
        self.graph, self.callback = graph, callback
        self.done: set[str] = set()
        self.current: str | None = None
        self.fraction = 0.0

    def _name(self, node: str) -> str:
        spec = self.graph.get(node)
        class_type = spec.get("class_type") if isinstance(spec, Mapping) else None
        return f"node {node} ({class_type})" if class_type else f"node {node}"

    def _emit(self, message: str, partial: float = 0.0) -> None:
        share = (len(self.done) + partial) / max(1, len(self.graph))
        self.fraction = max(self.fraction, min(0.99, share))
        if self.callback is not None:
            self.callback(self.fraction, message)

    def cached(self, nodes: Any) -> None:
        if isinstance(nodes, list):
            self.done |= {str(n) for n in nodes if str(n) in self.graph}
            self._emit(f"{len(self.done)} nodes cached")

    def executing(self, node: str) -> None:
        if self.current is not None:
            self.done.add(self.current)
        self.current = node
        self._emit(f"running {self._name(node)}")

    def progress(self, node: str, value: Any, maximum: Any) -> None:
        if isinstance(value, int | float) and isinstance(maximum, int | float) and maximum > 0:
            self._emit(f"{self._name(node)} step {value:g}/{maximum:g}", min(1.0, value / maximum))


class ComfyClient:
    """One ComfyUI server. Thread-compatible, not thread-safe: give each worker thread its own client."""

    def __init__(
        self, base_url: str, *, token: str | None = None, timeout: float = 30.0, client_id: str | None = None
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid("a ComfyUI server URL looks like http://127.0.0.1:8188", field="base_url", code="bad_url")
        if not timeout > 0:
            raise Invalid("timeout must be positive", field="timeout")
        self.base_url = base_url.strip().rstrip("/")
        self.server = _label(self.base_url)
        self.timeout = float(timeout)
        self.client_id = client_id or uuid.uuid4().hex
        self._secrets = [s for s in (token, parts.password) if s]
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=self.timeout, follow_redirects=False
        )
        self._object_info: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"ComfyClient({self.server!r}, client_id={self.client_id!r})"

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    # -- plumbing ----------------------------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _fail(self, kind: type[ComfyError], message: str, **kwargs: Any) -> NoReturn:
        raise kind(self._scrub(message), details={"server": self.server, **kwargs.pop("details", {})}, **kwargs)

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        limit: int = MAX_JSON,
        timeout: float | None = None,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        """``(status, body)`` of a request; transport trouble, auth refusals and 5xx become ``ComfyUnavailable``."""
        try:
            with self._http.stream(method, path, timeout=timeout or self.timeout, **kwargs) as response:
                status = response.status_code
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        self._fail(ComfyUnavailable, f"ComfyUI at {self.server} sent {what} over {limit} bytes")
        except httpx.TimeoutException:
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} did not answer {what} in time")
        except httpx.HTTPError as exc:
            reason = clip(str(exc) or type(exc).__name__, 120)
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} is unreachable ({reason})")
        if status in ok:
            return status, bytes(body)
        if status in (401, 403):
            why = "a missing or wrong token" if status == 401 else "a wrong token or a refused origin"
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} refused {what} ({status}: {why})")
        if status >= 500 or status in (404, 405):
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} answered {what} with HTTP {status}")
        return status, bytes(body)

    def _json(self, body: bytes, what: str) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} answered {what} with something that is not JSON")

    def _get_json(self, path: str, what: str, *, limit: int = MAX_JSON, **kwargs: Any) -> Any:
        status, body = self._request("GET", path, what=what, limit=limit, **kwargs)
        if status != 200:
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} answered {what} with HTTP {status}")
        return self._json(body, what)

    # -- small calls -------------------------------------------------------------------------------------------------
    def system_stats(self) -> dict[str, Any]:
        """``/system_stats``: ``system`` (versions, RAM) and ``devices`` (name, type, VRAM)."""
        stats = self._get_json("/system_stats", "/system_stats")
        if not isinstance(stats, dict):
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} answered /system_stats with a non-object")
        return stats

    def object_info(self) -> dict[str, Any]:
        """``/object_info``: every node class the server has, with its inputs; fetched once per client."""
        if self._object_info is None:
            info = self._get_json("/object_info", "/object_info", limit=MAX_OBJECT_INFO, timeout=max(self.timeout, 60))
            if not isinstance(info, dict):
                self._fail(ComfyUnavailable, f"ComfyUI at {self.server} answered /object_info with a non-object")
            self._object_info = info
        return self._object_info

    def upload_image(self, data: bytes, name: str, *, subfolder: str = "comfyvn", overwrite: bool = True) -> str:
        """Put an image in the server's input folder; returns the name a LoadImage node refers to it by."""
        if not _UPLOAD_NAME.match(name) or ".." in name:
            raise Invalid("an upload name is a plain file name (letters, digits, . _ - space)", field="name")
        if subfolder and not all(_UPLOAD_NAME.match(part) and part != ".." for part in subfolder.split("/")):
            raise Invalid("subfolder must be plain folder names separated by /", field="subfolder")
        if not data:
            raise Invalid("the image is empty", field="data")
        if len(data) > MAX_UPLOAD:
            raise TooLarge(f"the image is over {MAX_UPLOAD} bytes", field="data")
        form = {"type": "input", "subfolder": subfolder, "overwrite": "true" if overwrite else "false"}
        files = {"image": (name, data, "application/octet-stream")}
        status, body = self._request("POST", "/upload/image", what="an upload", data=form, files=files)
        answer = self._json(body, "an upload") if status == 200 else None
        if not isinstance(answer, dict) or not isinstance(answer.get("name"), str):
            self._fail(ComfyUnavailable, f"ComfyUI at {self.server} did not take the upload (HTTP {status})")
        folder = answer.get("subfolder") if isinstance(answer.get("subfolder"), str) else subfolder
        return f"{folder}/{answer['name']}" if folder else str(answer["name"])

    def _queue_state(self, prompt_id: str) -> str | None:
        """``"running"``, ``"pending"`` or None for a prompt id, from ``GET /queue``."""
        queue = self._get_json("/queue", "/queue", timeout=min(self.timeout, 10))
        if not isinstance(queue, dict):
            return None
        for state, key in (("running", "queue_running"), ("pending", "queue_pending")):
            items = queue.get(key)
            if isinstance(items, list) and any(isinstance(i, list) and len(i) > 1 and i[1] == prompt_id for i in items):
                return state
        return None

    def interrupt(self, prompt_id: str) -> None:
        """Stop ``prompt_id`` if it is the one running (never someone else's prompt, whatever the server version)."""
        if self._queue_state(prompt_id) == "running":
            self._request("POST", "/interrupt", what="an interrupt", json={"prompt_id": prompt_id})

    def delete(self, prompt_id: str) -> None:
        """Take ``prompt_id`` off the pending queue (a no-op for a prompt that runs or ran)."""
        self._request("POST", "/queue", what="a queue deletion", json={"delete": [prompt_id]})

    def _abandon(self, prompt_id: str) -> None:
        """Best effort on the way out of a cancelled or timed-out run: off the queue, and interrupted if running."""
        try:
            self.delete(prompt_id)
            self.interrupt(prompt_id)
        except ComfyError as exc:
            log.warning("comfyui.abandon_failed", server=self.server, prompt_id=prompt_id, error=exc.message)

    def _history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry, or None while it is queued or running."""
        answer = self._get_json(f"/history/{prompt_id}", "/history", timeout=min(self.timeout, 10))
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    # -- running a prompt --------------------------------------------------------------------------------------------
    def run(
        self,
        graph: dict[str, Any],
        *,
        timeout: float = 600.0,
        on_progress: Callable[[float, str], None] | None = None,
        prompt_id: str | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Queue ``graph``, follow it to the end and download its images.

        ``on_progress(fraction, text)`` hears about nodes and sampler steps; ``cancelled()`` is asked a few times a
        second and, when true, the prompt is interrupted, deleted from the queue and ``ComfyCancelled`` raised. A
        ``prompt_id`` passed again (a retry) is looked up first, so a prompt that got queued is never queued twice.
        """
        if not isinstance(graph, dict) or not graph:
            raise Invalid("the graph must be a non-empty object of nodes", field="graph")
        started = time.monotonic()
        deadline = started + timeout
        retry = prompt_id is not None
        prompt_id = prompt_id or str(uuid.uuid4())
        with contextlib.ExitStack() as stack:
            ws = self._connect(deadline, stack)
            entry = self._history(prompt_id) if retry else None
            if entry is None and not (retry and self._queue_state(prompt_id)):
                prompt_id = self._queue(graph, prompt_id)
            try:
                if entry is None:
                    entry = self._follow(ws, prompt_id, graph, deadline, on_progress, cancelled)
            except (ComfyCancelled, ComfyUnavailable, ComfyExecutionError):
                raise
            except BaseException:
                # Ctrl-C or a failing progress callback: leave nothing running on the server on our account.
                self._abandon(prompt_id)
                raise
        self._check_status(entry, prompt_id)
        images = self._download(entry)
        if on_progress is not None:
            on_progress(1.0, "done")
        elapsed = time.monotonic() - started
        log.info("comfyui.run_done", server=self.server, prompt_id=prompt_id, images=len(images), seconds=elapsed)
        return RunResult(prompt_id=prompt_id, server=self.server, images=images, elapsed=elapsed, history=entry)

    def _connect(self, deadline: float, stack: contextlib.ExitStack) -> ClientConnection | None:
        """The event socket for this client id, closed with ``stack``; None when it cannot be had (then the run polls
        ``/history``)."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws", f"clientId={self.client_id}", ""))
        try:
            opening = connect(
                url,
                additional_headers=self._headers,
                open_timeout=max(1.0, min(10.0, deadline - time.monotonic())),
                close_timeout=2,
                max_size=MAX_WS_MESSAGE,
                proxy=None,
                logger=_WS_LOGGER,
            )
            # Entered as a context manager: newer websockets warn about (and will drop) bare connect() calls.
            return stack.enter_context(opening)
        except (OSError, WebSocketException, TimeoutError) as exc:
            reason = self._scrub(clip(str(exc) or type(exc).__name__, 120))
            log.warning("comfyui.websocket_unavailable", server=self.server, error=reason)
            return None

    def _queue(self, graph: dict[str, Any], prompt_id: str) -> str:
        """POST the prompt; returns the id the server runs it under (old servers choose their own)."""
        body = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        try:
            status, raw = self._request("POST", "/prompt", what="the prompt", json=body, ok=(200, 400))
        except ComfyUnavailable:
            # The request may have arrived before the connection broke: ask before sending it a second time.
            if self._queue_state(prompt_id) or self._history(prompt_id) is not None:
                return prompt_id
            status, raw = self._request("POST", "/prompt", what="the prompt", json=body, ok=(200, 400))
        answer = self._json(raw, "the prompt") if status in (200, 400) else None
        if status == 200 and isinstance(answer, dict) and isinstance(answer.get("prompt_id"), str):
            if answer.get("node_errors"):
                # Some outputs failed validation and will not run; the ones that passed still do.
                log.warning("comfyui.partial_prompt", server=self.server, nodes=sorted(answer["node_errors"])[:10])
            return str(answer["prompt_id"])
        self._reject(status, answer)

    def _reject(self, status: int, answer: Any) -> NoReturn:
        node_errors = answer.get("node_errors") if isinstance(answer, dict) else None
        error = answer.get("error") if isinstance(answer, dict) else None
        prefix = f"ComfyUI at {self.server} rejected the workflow"
        details: dict[str, Any] = {}
        if isinstance(node_errors, dict) and node_errors:
            node_id, entry = next(iter(node_errors.items()))
            entry = entry if isinstance(entry, dict) else {}
            errors = entry.get("errors") if isinstance(entry.get("errors"), list) else []
            first = errors[0] if errors and isinstance(errors[0], dict) else {}
            text = ": ".join(str(first[k]) for k in ("message", "details") if first.get(k))
            class_type = str(entry.get("class_type") or "?")
            more = f" (and {len(node_errors) - 1} more nodes)" if len(node_errors) > 1 else ""
            message = f"{prefix}: node {node_id} ({class_type}): {text or 'invalid'}{more}"
            details = {"node_id": str(node_id), "class_type": class_type, "error_type": first.get("type")}
        elif isinstance(error, dict):
            text = str(error.get("message") or error.get("type") or "invalid prompt")
            where = re.search(r"#([^']+)'", str(error.get("details") or ""))
            message = f"{prefix}: node {where.group(1)}: {text}" if where else f"{prefix}: {text}"
            details = {"error_type": error.get("type")}
            if where:
                details["node_id"] = where.group(1)
        elif isinstance(error, str):
            message = f"{prefix}: {error}"
        else:
            message = f"{prefix} (HTTP {status})"
        self._fail(
            ComfyRejected,
            message,
            node_errors=node_errors if isinstance(node_errors, dict) else {},
            details={k: clip(str(v), 120) for k, v in details.items() if v is not None},
        )

    def _follow(
        self,
        ws: ClientConnection | None,
        prompt_id: str,
        graph: Mapping[str, Any],
        deadline: float,
        on_progress: Callable[[float, str], None] | None,
        cancelled: Callable[[], bool] | None,
    ) -> dict[str, Any]:
        """Wait for the prompt's end, from its events or (without a socket) by polling; returns its history entry."""
        progress = _Progress(graph, on_progress)
        poll_gap = 0.25
        next_poll = time.monotonic() + (SAFETY_POLL if ws is not None else 0.0)
        unreachable = 0
        while True:
            now = time.monotonic()
            if cancelled is not None and cancelled():
                self._abandon(prompt_id)
                self._fail(ComfyCancelled, f"the render on ComfyUI at {self.server} was cancelled")
            if now >= deadline:
                self._abandon(prompt_id)
                self._fail(ComfyUnavailable, f"ComfyUI at {self.server} did not finish the prompt in time")
            if ws is not None:
                try:
                    message = ws.recv(timeout=max(0.01, min(WS_TICK, deadline - now)))
                except TimeoutError:
                    message = None
                except (ConnectionClosed, OSError, WebSocketException) as exc:
                    log.warning("comfyui.websocket_lost", server=self.server, error=type(exc).__name__)
                    with contextlib.suppress(Exception):
                        ws.close()
                    ws, next_poll = None, now
                    continue
                if isinstance(message, str) and self._event(message, prompt_id, progress):
                    return self._final_history(prompt_id, deadline)
            if time.monotonic() < next_poll:
                continue
            try:
                entry = self._history(prompt_id)
                if entry is None and self._queue_state(prompt_id) is None:
                    # Neither queued nor finished, unless it finished between the two questions.
                    entry = self._history(prompt_id)
                    if entry is None:
                        self._fail(ComfyUnavailable, f"ComfyUI at {self.server} no longer has the prompt {prompt_id}")
                unreachable = 0
            except ComfyUnavailable:
                unreachable += 1
                if unreachable >= 3:
                    raise
                entry = None
            if entry is not None:
                return entry
            if ws is None:
                poll_gap = min(poll_gap * 1.5, 2.0)
                next_poll = time.monotonic() + (0.25 if unreachable else poll_gap)
                time.sleep(max(0.0, min(next_poll - time.monotonic(), WS_TICK, deadline - time.monotonic())))
            else:
                next_poll = time.monotonic() + SAFETY_POLL

    def _event(self, message: str, prompt_id: str, progress: _Progress) -> bool:
        """Handle one WebSocket frame; True when it says the prompt is done. Other prompts' events are ignored."""
        try:
            event = json.loads(message)
        except ValueError:
            return False
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict) or data.get("prompt_id") != prompt_id:
            return False
        kind = event.get("type")
        if kind == "executing":
            node = data.get("node")
            if node is None:
                return True
            progress.executing(str(node))
        elif kind == "execution_cached":
            progress.cached(data.get("nodes"))
        elif kind == "progress":
            progress.progress(str(data.get("node")), data.get("value"), data.get("max"))
        elif kind == "execution_error":
            self._execution_error(data)
        elif kind == "execution_interrupted":
            self._interrupted(data)
        return False

    def _execution_error(self, data: Mapping[str, Any]) -> NoReturn:
        node_id, node_type = str(data.get("node_id")), str(data.get("node_type") or "?")
        kind = str(data.get("exception_type") or "error").rsplit(".", 1)[-1]
        text = str(data.get("exception_message") or "").strip() or "no message"
        self._fail(
            ComfyExecutionError,
            f"ComfyUI at {self.server} failed running the workflow: node {node_id} ({node_type}): {kind}: {text}",
            node_id=node_id,
            node_type=node_type,
            details={"node_id": clip(node_id, 60), "node_type": clip(node_type, 120)},
        )

    def _interrupted(self, data: Mapping[str, Any]) -> NoReturn:
        node_id, node_type = str(data.get("node_id")), str(data.get("node_type") or "?")
        self._fail(
            ComfyExecutionError,
            f"ComfyUI at {self.server} interrupted the prompt at node {node_id} ({node_type}) (someone cancelled it)",
            node_id=node_id,
            node_type=node_type,
        )

    def _final_history(self, prompt_id: str, deadline: float) -> dict[str, Any]:
        """The history entry of a prompt the events say is done (ComfyUI writes it just before saying so)."""
        for pause in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0):
            time.sleep(pause)
            entry = self._history(prompt_id)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                break
        self._fail(ComfyUnavailable, f"ComfyUI at {self.server} finished the prompt but has no history of it")

    def _check_status(self, entry: Mapping[str, Any], prompt_id: str) -> None:
        status = entry.get("status")
        if not isinstance(status, dict) or status.get("status_str") != "error":
            return
        messages: list[Any] = status["messages"] if isinstance(status.get("messages"), list) else []
        for item in messages:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                if item[0] == "execution_error":
                    self._execution_error(item[1])
                if item[0] == "execution_interrupted":
                    self._interrupted(item[1])
        self._fail(ComfyExecutionError, f"ComfyUI at {self.server} reports prompt {prompt_id} failed")

    def _download(self, entry: Mapping[str, Any]) -> tuple[OutputImage, ...]:
        """Every image the history lists, fetched through ``/view`` (bounded in count and size)."""
        outputs: dict[str, Any] = entry["outputs"] if isinstance(entry.get("outputs"), dict) else {}
        wanted = [
            (str(node_id), image)
            for node_id, output in outputs.items()
            if isinstance(output, dict) and isinstance(output.get("images"), list)
            for image in output["images"]
            if isinstance(image, dict) and isinstance(image.get("filename"), str)
        ]
        if not wanted:
            self._fail(ComfyExecutionError, f"ComfyUI at {self.server} finished the workflow without any image")
        if len(wanted) > MAX_IMAGES:
            self._fail(ComfyExecutionError, f"ComfyUI at {self.server} listed over {MAX_IMAGES} output images")
        images = []
        for node_id, image in wanted:
            params = {
                "filename": image["filename"],
                "subfolder": str(image.get("subfolder") or ""),
                "type": str(image.get("type") or "output"),
            }
            status, data = self._request("GET", "/view", what="an output image", params=params, limit=MAX_IMAGE)
            if status != 200 or not data.startswith(IMAGE_MAGIC):
                name = clip(image["filename"], 80)
                self._fail(ComfyUnavailable, f"ComfyUI at {self.server} could not serve its output {name} ({status})")
            images.append(OutputImage(node_id=node_id, data=data, **params))
        return tuple(images)

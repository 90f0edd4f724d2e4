"""A fake ComfyUI server for the comfyui tests: ComfyUI's HTTP + WebSocket protocol over real sockets on loopback.

Routes (each also under ``/api``, as ComfyUI serves them): ``POST /prompt`` (validated like ComfyUI: ``invalid_prompt``,
``prompt_no_outputs``, ``prompt_outputs_failed_validation`` with ``node_errors``), ``GET /prompt``,
``GET|POST /history[/{id}]`` (``{}`` for a prompt until it is done), ``GET /view``, ``POST /upload/image``,
``GET|POST /queue``, ``POST /interrupt``, ``GET /object_info[/{class}]``, ``GET /system_stats`` and the WebSocket
``/ws?clientId=``: ``status`` on connect and on queue changes (to everyone), execution events only to the client id
the prompt was queued with. The queue runs serially; every node takes ``--step-delay`` seconds and a KSampler one
step-delay per step with a ``progress`` event each (and one binary preview frame), so progress is observable.

Test controls (never under ``/api``, never behind the token): ``POST /_fake/fail {"mode", "after"}`` makes the
prompt after ``after`` more successful ones (and every later one, until ``none``) fail halfway through its KSampler:
``execution_error`` (an out-of-memory error event and an error history entry), ``die`` (the process exits at once,
like a killed server), ``hang`` (the sampler stalls until interrupted), ``drop_ws`` (the queuing client's WebSocket
is closed, the run goes on). ``GET /_fake/log`` returns ``{"requests", "prompts", "events"}`` (events: who got
which execution event), ``POST /_fake/reset`` clears queue, history, files, log and failure mode.

Like ComfyUI it answers 403 to a request whose Host is loopback and whose Origin names another host. With
``--token T`` every other request needs ``Authorization: Bearer T`` (401 otherwise), as behind an auth proxy.

Run: ``python fake_comfyui.py [--port N] [--step-delay S] [--token T] [--checkpoints a,b] [--loras a,b]``; the port
is printed on the first line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import posixpath
import signal
import socket
import struct
import sys
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import fake_comfyui_nodes as nodes
from hypercorn.asyncio import serve
from hypercorn.config import Config
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_UPLOAD = 100 * 1024 * 1024
FAIL_MODES = ("none", "execution_error", "die", "hang", "drop_ws")


class Interrupted(Exception):
    """``POST /interrupt`` reached the running prompt."""


class Fake:
    """The server's state: queue, history, files, sockets, the failure mode and the log."""

    def __init__(self, step_delay: float, token: str | None, checkpoints: list[str], loras: list[str]) -> None:
        self.step_delay, self.token = step_delay, token
        self.checkpoints, self.loras = checkpoints, loras
        self.sockets: dict[str, WebSocket] = {}
        self.wake = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """Forget everything a test did (queue, history, files, log, failure mode, cache)."""
        self.number = 0
        self.queue: list[list[Any]] = []
        self.running: list[Any] | None = None
        self.history: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.cache: dict[str, tuple[list[Any], dict[str, Any] | None]] = {}
        self.interrupt = True  # a prompt still running from the last test stops; the next one clears the flag
        self.fail_mode, self.fail_after = "none", 0
        self.log: dict[str, list[dict[str, Any]]] = {"requests": [], "prompts": [], "events": []}

    # -- sockets -------------------------------------------------------------------------------------------------
    async def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        """One JSON frame to ``sid`` (to every socket when None); a dead socket is skipped as ComfyUI does."""
        if sid is not None:
            self.log["events"].append({"sid": sid, "type": event, "prompt_id": data.get("prompt_id")})
        targets = list(self.sockets.items()) if sid is None else [(sid, self.sockets.get(sid))]
        text = json.dumps({"type": event, "data": data})
        for target_sid, ws in targets:
            if ws is None:
                continue
            try:
                await ws.send_text(text)
            except Exception:
                self.sockets.pop(target_sid, None)

    async def send_preview(self, sid: str | None) -> None:
        """A binary preview frame: event 1 (preview image), format 2 (PNG), then the bytes."""
        ws = self.sockets.get(sid) if sid is not None else None
        if ws is None:
            return
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (128, 128, 128)).save(buffer, format="PNG")
        with contextlib.suppress(Exception):
            await ws.send_bytes(struct.pack(">II", 1, 2) + buffer.getvalue())

    def queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": len(self.queue) + (1 if self.running else 0)}}

    async def queue_updated(self) -> None:
        await self.send("status", {"status": self.queue_info()}, None)

    # -- files ---------------------------------------------------------------------------------------------------
    def specs(self) -> dict[str, dict[str, Any]]:
        top_inputs = [name for (kind, sub, name) in self.files if kind == "input" and not sub]
        return nodes.catalogue(self.checkpoints, self.loras, top_inputs)

    def input_file(self, annotated: str) -> bytes | None:
        """An uploaded input by the name LoadImage uses (``subfolder/name``)."""
        sub, name = posixpath.split(annotated)
        return self.files.get(("input", sub, name))

    # -- the queue -----------------------------------------------------------------------------------------------
    async def worker(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.queue:
                self.queue.sort(key=lambda item: item[0])
                self.running = self.queue.pop(0)
                await self.queue_updated()
                try:
                    await self.execute(*self.running)
                finally:
                    self.running = None
                    await self.queue_updated()

    def failure_for_next(self) -> str:
        if self.fail_mode == "none":
            return "none"
        if self.fail_after > 0:
            self.fail_after -= 1
            return "none"
        return self.fail_mode

    async def execute(
        self, number: float, prompt_id: str, prompt: dict[str, Any], extra: dict[str, Any], outputs: list[str]
    ) -> None:
        sid = extra.get("client_id")
        self.interrupt = False
        failure = self.failure_for_next()
        messages: list[list[Any]] = []

        async def add(event: str, data: dict[str, Any]) -> None:
            data = {**data, "timestamp": int(time.time() * 1000)}
            messages.append([event, data])
            await self.send(event, data, sid)

        await add("execution_start", {"prompt_id": prompt_id})
        order = nodes.execution_order(prompt, outputs)
        memo: dict[str, str] = {}
        sigs = {node_id: nodes.signature(prompt, node_id, memo) for node_id in order}
        cached = [node_id for node_id in order if sigs[node_id] in self.cache]
        await add("execution_cached", {"nodes": cached, "prompt_id": prompt_id})
        values: dict[str, list[Any]] = {}
        ui: dict[str, dict[str, Any]] = {}
        executed: list[str] = []
        current = ""
        success = False
        try:
            for node_id in order:
                current = node_id
                if node_id in cached:
                    values[node_id], node_ui = self.cache[sigs[node_id]]
                    if node_ui is not None:
                        ui[node_id] = node_ui
                        data = {"node": node_id, "display_node": node_id, "output": node_ui, "prompt_id": prompt_id}
                        await self.send("executed", data, sid)
                    continue
                if self.interrupt:
                    raise Interrupted
                await self.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}, sid)
                node = prompt[node_id]
                inputs = {
                    name: values[str(v[0])][v[1]] if isinstance(v, list) else v for name, v in node["inputs"].items()
                }
                values[node_id], node_ui = await self.run_node(node_id, node["class_type"], inputs, prompt, failure)
                if node_ui is not None:
                    ui[node_id] = node_ui
                    data = {"node": node_id, "display_node": node_id, "output": node_ui, "prompt_id": prompt_id}
                    await self.send("executed", data, sid)
                executed.append(node_id)
            await add("execution_success", {"prompt_id": prompt_id})
            success = True
        except Interrupted:
            data = {
                "prompt_id": prompt_id,
                "node_id": current,
                "node_type": prompt[current]["class_type"],
                "executed": executed,
            }
            await add("execution_interrupted", data)
        except nodes.NodeFailure as exc:
            await add(
                "execution_error",
                {
                    "prompt_id": prompt_id,
                    "node_id": current,
                    "node_type": prompt[current]["class_type"],
                    "executed": executed,
                    "exception_message": str(exc),
                    "exception_type": exc.exception_type,
                    "traceback": ['  File "/ComfyUI/execution.py", line 496, in execute\n'],
                    "current_inputs": {},
                    "current_outputs": {},
                },
            )
        self.cache = {sigs[n]: (values[n], ui.get(n)) for n in order if n in values}
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, extra, outputs],
            "outputs": ui,
            "status": {"status_str": "success" if success else "error", "completed": success, "messages": messages},
            "meta": {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in ui},
        }
        await self.send("executing", {"node": None, "prompt_id": prompt_id}, sid)

    async def run_node(
        self, node_id: str, class_type: str, inputs: dict[str, Any], prompt: dict[str, Any], failure: str
    ) -> tuple[list[Any], dict[str, Any] | None]:
        await asyncio.sleep(self.step_delay)
        if class_type == "CheckpointLoaderSimple":
            model = {"ckpt": inputs["ckpt_name"], "loras": []}
            return [model, dict(model), {"ckpt": inputs["ckpt_name"]}], None
        if class_type == "LoraLoader":
            model = {
                **inputs["model"],
                "loras": [*inputs["model"]["loras"], [inputs["lora_name"], inputs["strength_model"]]],
            }
            clip = {
                **inputs["clip"],
                "loras": [*inputs["clip"]["loras"], [inputs["lora_name"], inputs["strength_clip"]]],
            }
            return [model, clip], None
        if class_type == "CLIPTextEncode":
            return [{"text": str(inputs["text"]), "clip": inputs["clip"]}], None
        if class_type == "EmptyLatentImage":
            return [nodes.new_latent(inputs["width"], inputs["height"], inputs["batch_size"])], None
        if class_type == "KSampler":
            await self.sample_steps(node_id, int(inputs["steps"]), prompt, failure)
            return [await asyncio.to_thread(nodes.sample, inputs)], None
        if class_type == "VAEDecode":
            return [nodes.decode(inputs["samples"])], None
        if class_type == "VAEEncode":
            return [nodes.encode(inputs["pixels"])], None
        if class_type in ("SaveImage", "PreviewImage"):
            return [], {"images": await asyncio.to_thread(self.save, class_type, inputs, prompt)}
        if class_type == "LoadImage":
            data = self.input_file(str(inputs["image"]))
            if data is None:
                raise nodes.NodeFailure(f"Invalid image file: {inputs['image']}", "FileNotFoundError")
            return list(nodes.load_image(data)), None
        if class_type == "ImageScale":
            return [nodes.scale(inputs)], None
        if class_type == "EmptyImage":
            color = int(inputs["color"])
            rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
            size = (int(inputs["width"]), int(inputs["height"]))
            return [[Image.new("RGB", size, rgb) for _ in range(int(inputs["batch_size"]))]], None
        if class_type == "ImageCompositeMasked":
            return [nodes.composite(inputs)], None
        if class_type == "InvertMask":
            return [[Image.eval(mask, lambda v: 255 - v) for mask in inputs["mask"]]], None
        raise nodes.NodeFailure(f"no executor for {class_type}")

    async def sample_steps(self, node_id: str, steps: int, prompt: dict[str, Any], failure: str) -> None:
        running = self.running
        prompt_id = running[1] if running else ""
        sid = running[3].get("client_id") if running else None
        for step in range(1, steps + 1):
            if self.interrupt:
                raise Interrupted
            if step == max(1, steps // 2) and failure != "none":
                await self.fail(failure, sid)
            progress = {"value": step, "max": steps, "prompt_id": prompt_id, "node": node_id}
            await self.send("progress", progress, sid)
            if step == 1:
                await self.send_preview(sid)
            await asyncio.sleep(self.step_delay)

    async def fail(self, failure: str, sid: str | None) -> None:
        if failure == "die":
            sys.stdout.flush()
            os._exit(1)
        if failure == "execution_error":
            message = "Allocation on device 0 would exceed allowed memory. (out of memory)"
            raise nodes.NodeFailure(message, "torch.OutOfMemoryError")
        if failure == "drop_ws" and sid is not None:
            ws = self.sockets.pop(sid, None)
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close(code=1011)
        if failure == "hang":
            while not self.interrupt:
                await asyncio.sleep(0.01)
            raise Interrupted

    def save(self, class_type: str, inputs: dict[str, Any], prompt: dict[str, Any]) -> list[dict[str, Any]]:
        if class_type == "SaveImage":
            kind, (subfolder, base) = "output", nodes.save_path(str(inputs["filename_prefix"]))
        else:
            kind, subfolder, base = "temp", "", "ComfyUI_temp_" + uuid.uuid4().hex[:5]
        results = []
        for image in inputs["images"]:
            counter = self.counters.get((subfolder, base), 0) + 1
            self.counters[(subfolder, base)] = counter
            filename = f"{base}_{counter:05}_.png"
            self.files[(kind, subfolder, filename)] = nodes.png_bytes(image, prompt)
            results.append({"filename": filename, "subfolder": subfolder, "type": kind})
        return results


# -- HTTP ----------------------------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(body, status_code=status)


def routes(fake: Fake) -> list[BaseRoute]:
    """ComfyUI's routes (plain and under ``/api``) plus the ``/_fake`` controls."""

    async def post_prompt(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _json({"error": {"type": "invalid_json", "message": "bad json"}}, 400)
        if not isinstance(body, dict) or "prompt" not in body:
            missing = {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided"}
            return _json({"error": {**missing, "extra_info": {}}, "node_errors": {}}, 400)
        number: float = fake.number
        if body.get("front"):
            number = -number
        fake.number += 1
        prompt = body["prompt"]
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if "client_id" in body:
            extra["client_id"] = body["client_id"]
        fake.log["prompts"].append({"prompt_id": prompt_id, "client_id": body.get("client_id"), "number": number})
        ok, error, outputs, node_errors = nodes.validate_prompt(
            prompt, fake.specs(), lambda name: fake.input_file(name) is not None
        )
        if not ok:
            return _json({"error": error, "node_errors": node_errors}, 400)
        fake.queue.append([number, prompt_id, prompt, extra, outputs])
        fake.wake.set()
        await fake.queue_updated()
        return _json({"prompt_id": prompt_id, "number": number, "node_errors": node_errors})

    async def get_prompt(request: Request) -> Response:
        return _json(fake.queue_info())

    async def get_history(request: Request) -> Response:
        prompt_id = request.path_params.get("prompt_id")
        if prompt_id is not None:
            return _json({prompt_id: fake.history[prompt_id]} if prompt_id in fake.history else {})
        items = list(fake.history.items())
        max_items = request.query_params.get("max_items")
        if max_items is not None and max_items.isdigit():
            items = items[-int(max_items) :] if int(max_items) else []
        return _json(dict(items))

    async def post_history(request: Request) -> Response:
        body = await request.json()
        if body.get("clear"):
            fake.history.clear()
        for prompt_id in body.get("delete", []):
            fake.history.pop(str(prompt_id), None)
        return Response(status_code=200)

    async def view(request: Request) -> Response:
        query = request.query_params
        if "filename" not in query:
            return Response(status_code=404)
        filename = query["filename"]
        if not filename or filename[0] == "/" or ".." in filename:
            return Response(status_code=400)
        kind = query.get("type", "output")
        if kind not in ("output", "input", "temp"):
            return Response(status_code=400)
        subfolder = posixpath.normpath(query.get("subfolder", "") or ".")
        if subfolder.startswith(("/", "..")):
            return Response(status_code=403)
        data = fake.files.get((kind, "" if subfolder == "." else subfolder, posixpath.basename(filename)))
        if data is None:
            return Response(status_code=404)
        headers = {"Content-Disposition": f'filename="{posixpath.basename(filename)}"'}
        return Response(data, media_type="image/png", headers=headers)

    async def upload_image(request: Request) -> Response:
        if int(request.headers.get("content-length") or 0) > MAX_UPLOAD:
            return Response(status_code=413)
        form = await request.form()
        image = form.get("image")
        if image is None or isinstance(image, str) or not image.filename:
            return Response(status_code=400)
        kind = str(form.get("type") or "input")
        subfolder = str(form.get("subfolder") or "")
        name = image.filename
        target = posixpath.normpath(posixpath.join(subfolder, name))
        if kind not in ("input", "temp", "output") or target.startswith(("/", "..")) or "/" in name:
            return Response(status_code=400)
        sub = posixpath.dirname(target)
        data = await image.read()
        if str(form.get("overwrite") or "") not in ("true", "1"):
            stem, ext = posixpath.splitext(name)
            index = 1
            while (kind, sub, name) in fake.files and fake.files[(kind, sub, name)] != data:
                name, index = f"{stem} ({index}){ext}", index + 1
        fake.files[(kind, sub, name)] = data
        return _json({"name": name, "subfolder": subfolder, "type": kind})

    async def get_queue(request: Request) -> Response:
        running = [fake.running] if fake.running else []
        return _json({"queue_running": running, "queue_pending": sorted(fake.queue, key=lambda item: item[0])})

    async def post_queue(request: Request) -> Response:
        body = await request.json()
        if body.get("clear"):
            fake.queue.clear()
        for prompt_id in body.get("delete", []):
            fake.queue[:] = [item for item in fake.queue if item[1] != prompt_id]
        await fake.queue_updated()
        return Response(status_code=200)

    async def interrupt(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        # Newer ComfyUI interrupts only the named prompt when it is the running one; no id interrupts whatever runs.
        if not prompt_id or (fake.running is not None and fake.running[1] == prompt_id):
            fake.interrupt = fake.running is not None
        return Response(status_code=200)

    async def object_info(request: Request) -> Response:
        specs = fake.specs()
        node_class = request.path_params.get("node_class")
        if node_class is None:
            return _json(specs)
        return _json({node_class: specs[node_class]} if node_class in specs else {})

    async def system_stats(request: Request) -> Response:
        gib = 1024**3
        device = {
            "name": "cuda:0 NVIDIA Fake 24GB : cudaMallocAsync",
            "type": "cuda",
            "index": 0,
            "vram_total": 24 * gib,
            "vram_free": 20 * gib,
            "torch_vram_total": 2 * gib,
            "torch_vram_free": gib,
        }
        system = {
            "os": "posix",
            "ram_total": 64 * gib,
            "ram_free": 48 * gib,
            "comfyui_version": "0.3.40",
            "python_version": sys.version,
            "pytorch_version": "2.7.0+cu126",
            "embedded_python": False,
            "argv": ["main.py"],
        }
        return _json({"system": system, "devices": [device]})

    async def websocket(ws: WebSocket) -> None:
        sid = ws.query_params.get("clientId") or uuid.uuid4().hex
        await ws.accept()
        fake.sockets[sid] = ws
        try:
            await ws.send_text(json.dumps({"type": "status", "data": {"status": fake.queue_info(), "sid": sid}}))
            while True:
                await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if fake.sockets.get(sid) is ws:
                del fake.sockets[sid]

    async def control_fail(request: Request) -> Response:
        body = await request.json()
        if body.get("mode") not in FAIL_MODES:
            return _json({"error": f"mode must be one of {FAIL_MODES}"}, 400)
        fake.fail_mode, fake.fail_after = body["mode"], int(body.get("after") or 0)
        return _json({"mode": fake.fail_mode, "after": fake.fail_after})

    async def control_log(request: Request) -> Response:
        return _json(fake.log)

    async def control_reset(request: Request) -> Response:
        fake.reset()
        return _json({"ok": True})

    comfy: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("/prompt", post_prompt, ["POST"]),
        ("/prompt", get_prompt, ["GET"]),
        ("/history", get_history, ["GET"]),
        ("/history", post_history, ["POST"]),
        ("/history/{prompt_id}", get_history, ["GET"]),
        ("/view", view, ["GET"]),
        ("/upload/image", upload_image, ["POST"]),
        ("/queue", get_queue, ["GET"]),
        ("/queue", post_queue, ["POST"]),
        ("/interrupt", interrupt, ["POST"]),
        ("/object_info", object_info, ["GET"]),
        ("/object_info/{node_class}", object_info, ["GET"]),
        ("/system_stats", system_stats, ["GET"]),
    ]
    out: list[BaseRoute] = [
        Route(prefix + path, handler, methods=methods) for prefix in ("", "/api") for path, handler, methods in comfy
    ]
    out += [WebSocketRoute("/ws", websocket), WebSocketRoute("/api/ws", websocket)]
    out += [
        Route("/_fake/fail", control_fail, methods=["POST"]),
        Route("/_fake/log", control_log, methods=["GET"]),
        Route("/_fake/reset", control_reset, methods=["POST"]),
    ]
    return out


def _loopback(host: str | None) -> bool:
    return host is not None and (host == "localhost" or host.startswith("127.") or host == "::1")


def guard(app: ASGIApp, fake: Fake) -> ASGIApp:
    """ComfyUI's origin-only middleware, the optional bearer token, and the request log."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = scope["path"]
        status = 0
        if "host" in headers and "origin" in headers:
            host = urllib.parse.urlsplit("//" + headers["host"].lower())
            origin = urllib.parse.urlsplit(headers["origin"].lower())
            host_part = headers["host"].lower() if origin.port is not None else host.hostname
            origin_part = origin.netloc if host.port is not None else origin.hostname
            if _loopback(host.hostname) and host_part and origin_part and host_part != origin_part:
                status = 403
        guarded = fake.token is not None and not path.startswith("/_fake/")
        if not status and guarded and headers.get("authorization") != f"Bearer {fake.token}":
            status = 401
        if not path.startswith("/_fake/"):
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            fake.log["requests"].append(
                {
                    "method": scope.get("method", "WEBSOCKET"),
                    "path": path,
                    "query": {k: v[0] for k, v in query.items()},
                    "headers": headers,
                    "status": status or None,
                }
            )
        if not status:
            await app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            if "websocket.http.response" in scope.get("extensions", {}):
                start = {"type": "websocket.http.response.start", "status": status, "headers": []}
                await send(start)
                await send({"type": "websocket.http.response.body", "body": b""})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await Response(status_code=status)(scope, receive, send)

    return middleware


async def main_async(args: argparse.Namespace) -> None:
    fake = Fake(args.step_delay, args.token, args.checkpoints.split(","), args.loras.split(","))
    app = guard(Starlette(routes=routes(fake)), fake)
    sock = socket.create_server(("127.0.0.1", args.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print(sock.getsockname()[1], flush=True)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.5
    worker = asyncio.create_task(fake.worker())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    finally:
        worker.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--step-delay", type=float, default=0.02)
    parser.add_argument("--token")
    parser.add_argument("--checkpoints", default=",".join(nodes.DEFAULT_CHECKPOINTS))
    parser.add_argument("--loras", default=",".join(nodes.DEFAULT_LORAS))
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

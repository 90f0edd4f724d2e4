"""HTTP surface of the job system: ``/api/schedule/*``, ``/api/jobs``, and the ``/jobs/ws`` event stream."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

import anyio
from comfyvn.errors import ComfyVNError, NotFound
from comfyvn.wire import parse_request, read_json
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from . import views
from .events import JOB_EVENTS
from .records import STATUSES
from .service import jobs_for
from .wire import CancelRequest, EnqueueRequest

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["make_routes"]

_JOB_ID = re.compile(r"^job-[0-9a-f]{32}$")
HEARTBEAT = 15.0
WS_QUEUE = 512


def _job_id(value: Any, field: str = "job_id") -> str:
    if not isinstance(value, str) or not _JOB_ID.match(value):
        raise NotFound("no such job (ids look like job-<32 hex digits>)", field=field, code="job_not_found")
    return value


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise ComfyVNError("limit must be a whole number from 1 to 1000", field="limit", code="invalid_query")
    return int(raw)


def _statuses(request: Request) -> tuple[str, ...] | None:
    raw = request.query_params.get("status")
    if not raw:
        return None
    names = tuple(part.strip() for part in raw.split(",") if part.strip())
    for name in names:
        if name not in STATUSES:
            raise ComfyVNError(f"status is one of {', '.join(STATUSES)}", field="status", code="invalid_query")
    return names


def make_routes(kernel: Kernel) -> list[Any]:
    """The job routes bound to ``kernel``."""

    async def enqueue(request: Request) -> JSONResponse:
        """Submit a job of a registered kind; Dask runs it where its resources are.
        ---
        summary: Enqueue a job
        requestBody:
          required: true
          content:
            application/json:
              schema:
                type: object
                required: [kind]
                additionalProperties: false
                properties:
                  kind: {type: string, description: a registered job kind (GET /api/schedule/state lists them)}
                  params: {type: object, description: the kind's parameters (never credentials)}
                  resources:
                    type: object
                    additionalProperties: {type: number}
                    description: "Dask worker resources, e.g. {COMFYUI: 1}"
                  priority: {type: integer, default: 0, description: higher runs first}
                  retries:
                    {type: integer, minimum: 0, maximum: 10, description: "Dask retries on failure (default: per kind)"}
                  key: {type: string, maxLength: 200, description: idempotency key; the same key returns the same job}
        responses:
          202: {description: "{job}: the job's record (queued, or the existing job of that key)"}
          400: {description: "invalid input (error.field names the field); kind_is_local: a kind the CLI runs only"}
          409: {description: the key names a different job}
        """
        req = parse_request(await read_json(request), EnqueueRequest)
        service = jobs_for(kernel)
        kind = service.kinds().get(req.kind)
        if kind is not None and kind.local:
            # Its params name files of the submitting machine: a client must not point the server at its files.
            raise ComfyVNError(
                f"jobs of kind {req.kind} run from this machine's command line only", field="kind", code="kind_is_local"
            )

        def submit() -> dict[str, Any]:
            job_id = service.submit(
                req.kind, req.params, resources=req.resources, priority=req.priority, retries=req.retries, key=req.key
            )
            return service.get(job_id)

        return JSONResponse({"job": await run_in_threadpool(submit)}, status_code=202)

    async def state(request: Request) -> JSONResponse:
        """Raw queues: running, queued and recently completed jobs, counts, kinds and workers.
        ---
        summary: Scheduler state
        responses:
          200: {description: "{scheduler, started, counts, active[], queued[], completed[], kinds[], workers[]}"}
        """
        return JSONResponse(await run_in_threadpool(views.state, jobs_for(kernel)))

    async def board(request: Request) -> JSONResponse:
        """Per worker: running and assigned jobs with start/end times, durations and costs (Gantt-friendly).
        ---
        summary: Scheduler board
        responses:
          200:
            description: >-
              {scheduler, workers[{name, connected, running[], queued[], recent[], cost_estimate}], queued[],
              generated_at}
        """
        return JSONResponse(await run_in_threadpool(views.board, jobs_for(kernel)))

    async def health(request: Request) -> JSONResponse:
        """Whether jobs can run: engine, workers, missing resources, provider file problems.
        ---
        summary: Scheduler health
        responses:
          200: {description: "{ok, engine, scheduler, started, workers, counts, missing_resources[], problems[]}"}
        """
        return JSONResponse(await run_in_threadpool(views.health, jobs_for(kernel)))

    async def cancel(request: Request) -> JSONResponse:
        """Cancel a queued or running job (an ended job is returned as it is).
        ---
        summary: Cancel a job
        requestBody:
          required: true
          content:
            application/json:
              schema:
                {type: object, required: [job_id], additionalProperties: false, properties: {job_id: {type: string}}}
        responses:
          200: {description: "{job}: its record (cancelled, or flagged for the process that owns it)"}
          404: {description: no such job}
        """
        req = parse_request(await read_json(request), CancelRequest)
        job_id = _job_id(req.job_id)
        return JSONResponse({"job": await run_in_threadpool(jobs_for(kernel).cancel, job_id)})

    async def list_jobs(request: Request) -> JSONResponse:
        """Job records, newest first.
        ---
        summary: List jobs
        parameters:
          - {name: status, in: query, required: false, schema: {type: string}, description: comma-separated statuses}
          - {name: kind, in: query, required: false, schema: {type: string}}
          - {name: limit, in: query, required: false, schema: {type: integer, minimum: 1, maximum: 1000}}
        responses:
          200: {description: "{jobs[]}"}
        """
        statuses, limit = _statuses(request), _limit(request)
        kind = request.query_params.get("kind") or None

        def rows() -> list[Any]:
            return jobs_for(kernel).list(status=statuses, kind=kind, limit=limit)

        return JSONResponse({"jobs": await run_in_threadpool(rows)})

    async def get_job(request: Request) -> JSONResponse:
        """One job's record: params, status, progress, result, error, attempts and runs, timings, cost.
        ---
        summary: A job
        parameters:
          - {name: job_id, in: path, required: true, schema: {type: string}}
        responses:
          200: {description: the record}
          404: {description: no such job}
        """
        job_id = _job_id(request.path_params["job_id"])
        return JSONResponse(await run_in_threadpool(jobs_for(kernel).get, job_id))

    async def jobs_ws(websocket: WebSocket) -> None:
        """Stream job events as ``{"topic": "jobs.<event>", event, payload, ts, seq}``.
        ---
        summary: Job events over a WebSocket
        description: >
          First `{"topic": "ready"}`; then one message per on_job_* event (of one job with `?job=<id>`);
          `{"topic": "heartbeat"}` after each quiet 15 s; `{"topic": "dropped", "dropped": n}` when this
          client fell behind and its bounded queue overflowed.
        parameters:
          - {name: job, in: query, required: false, schema: {type: string}}
        responses:
          101: {description: switching to the WebSocket protocol}
        """
        only = websocket.query_params.get("job")
        if only is not None:
            _job_id(only, "job")
        await websocket.accept()
        async with (
            kernel.events.stream(JOB_EVENTS, max_buffer=WS_QUEUE) as stream,
            anyio.create_task_group() as group,
        ):

            async def watch_client() -> None:
                # Reading is how a disconnect is noticed; client messages carry no commands.
                while (await websocket.receive())["type"] != "websocket.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch_client)
            await _pump(websocket, stream, only)
            group.cancel_scope.cancel()

    return [
        Route("/api/schedule/enqueue", enqueue, methods=["POST"], name="schedule_enqueue"),
        Route("/api/schedule/state", state, methods=["GET"], name="schedule_state"),
        Route("/api/schedule/board", board, methods=["GET"], name="schedule_board"),
        Route("/api/schedule/health", health, methods=["GET"], name="schedule_health"),
        Route("/api/schedule/cancel", cancel, methods=["POST"], name="schedule_cancel"),
        Route("/api/jobs", list_jobs, methods=["GET"], name="jobs_list"),
        Route("/api/jobs/{job_id}", get_job, methods=["GET"], name="jobs_get"),
        WebSocketRoute("/jobs/ws", jobs_ws, name="jobs_ws"),
    ]


async def _pump(websocket: WebSocket, stream: Any, only: str | None) -> None:
    try:
        await websocket.send_text(json.dumps({"topic": "ready", "job": only, "ts": time.time()}))
        while True:
            envelope = None
            with anyio.move_on_after(HEARTBEAT):
                envelope = await stream.receive()
            dropped = stream.take_dropped()
            if dropped:
                await websocket.send_text(json.dumps({"topic": "dropped", "dropped": dropped, "ts": time.time()}))
            if envelope is None:
                await websocket.send_text(json.dumps({"topic": "heartbeat", "ts": time.time()}))
            elif only is None or envelope.payload.get("id") == only:
                body = envelope.data  # encoded once by the bus, always strict JSON
                head = json.dumps({"topic": f"jobs.{envelope.event}", "event": envelope.event})
                meta = json.dumps({"ts": envelope.ts, "seq": envelope.seq})
                await websocket.send_text(f'{head[:-1]},"payload":{body},{meta[1:]}')
    except (anyio.EndOfStream, anyio.ClosedResourceError):
        return
    except Exception:  # a send failing means the peer is gone
        return

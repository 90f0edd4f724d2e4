"""``/api/weather/*``: parse → store/planner → JSON, and the ``on_weather_plan`` event."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from comfyvn.wire import read_json
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .presets import ALIASES, CANONICAL, DEFAULTS
from .store import WeatherPlanStore
from .wire import parse_state_update, plan_to_dict

if TYPE_CHECKING:
    from comfyvn import Kernel

__all__ = ["FLAG", "event_payload", "make_routes"]

FLAG = "enable_weather_planner"
log = structlog.get_logger("comfyvn.weather.routes")


def event_payload(plan: dict[str, Any]) -> dict[str, Any]:
    """The ``on_weather_plan`` payload: ``{state, summary, transition, particles, meta}``."""
    return {
        "state": plan["state"],
        "summary": plan["scene"]["summary"],
        "transition": plan["transition"],
        "particles": plan["particles"],
        "meta": plan["meta"],
    }


def make_routes(kernel: Kernel, store: WeatherPlanStore | None = None) -> list[Route]:
    """The weather routes bound to ``kernel`` and one shared `WeatherPlanStore`."""
    store = store or WeatherPlanStore()

    async def read_state(request: Request) -> JSONResponse:
        """Read the shared weather plan.
        ---
        summary: The shared weather plan
        responses:
          200:
            description: >-
              {state, scene{background_layers, light_rig, lut, bake_ready, summary}, transition, particles, sfx,
              meta{hash, warnings, version, updated_at}}
          403: {description: enable_weather_planner is off}
        """
        kernel.flags.require(FLAG)
        return JSONResponse(plan_to_dict(store.snapshot()))

    async def update_state(request: Request) -> JSONResponse:
        """Update the shared weather plan: the body is merged over the current state (version + 1).
        ---
        summary: Update the shared weather plan
        requestBody:
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                description: >-
                  top-level values or {state: {...}}; null keeps a value; unknown values fall back with a warning
                properties:
                  time_of_day: {type: [string, "null"], examples: [dawn, day, dusk, night, sunset]}
                  weather: {type: [string, "null"], examples: [clear, overcast, rain, storm, snow, fog]}
                  ambience: {type: [string, "null"], examples: [calm, tense, mystic, energetic, melancholic]}
                  state: {type: object}
        responses:
          200: {description: the new plan (same shape as GET), meta.version one higher}
          400: {description: invalid input; error.field names the field}
          403: {description: enable_weather_planner is off}
        """
        kernel.flags.require(FLAG)
        plan = plan_to_dict(store.update(parse_state_update(await read_json(request))))
        log.info(
            "weather plan updated",
            hash=plan["meta"]["hash"],
            version=plan["meta"]["version"],
            exposure_shift=plan["transition"]["exposure_shift"],
            particles=(plan["particles"] or {}).get("type"),
        )
        kernel.events.emit("on_weather_plan", event_payload(plan))
        return JSONResponse(plan)

    async def history(request: Request) -> JSONResponse:
        """Recent plan versions for cheap diffs.
        ---
        summary: Weather plan history
        responses:
          200: {description: "{history: [{version, updated_at, hash, state}]} oldest first"}
          403: {description: enable_weather_planner is off}
        """
        kernel.flags.require(FLAG)
        return JSONResponse({"history": store.history()})

    async def presets(request: Request) -> JSONResponse:
        """Canonical values, defaults and aliases the planner understands.
        ---
        summary: Weather presets
        responses:
          200: {description: "{values{time_of_day, weather, ambience}, defaults, aliases}"}
        """
        return JSONResponse(
            {"values": {k: list(v) for k, v in CANONICAL.items()}, "defaults": DEFAULTS, "aliases": ALIASES}
        )

    return [
        Route("/api/weather/state", read_state, methods=["GET"], name="weather_state"),
        Route("/api/weather/state", update_state, methods=["POST"], name="weather_state_update"),
        Route("/api/weather/history", history, methods=["GET"], name="weather_history"),
        Route("/api/weather/presets", presets, methods=["GET"], name="weather_presets"),
    ]

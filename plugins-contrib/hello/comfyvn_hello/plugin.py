"""Hook implementations only: the thin wiring between the kernel and the greeting domain."""

from __future__ import annotations

from typing import Any

import click
from comfyvn import Kernel, hookimpl
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .greeting import greet

EVENT = "hello.greeted"
FLAG = "enable_hello_shout"


@hookimpl
def register_events(register: Any) -> None:
    register(
        EVENT,
        "Someone was greeted by the hello plugin.",
        {
            "type": "object",
            "required": ["name", "text"],
            "properties": {"name": {"type": "string"}, "text": {"type": "string"}},
        },
    )


@hookimpl
def register_flags(register: Any) -> None:
    register(FLAG, False, "Greet in capital letters.")


def _greet_and_tell(kernel: Kernel, name: str) -> str:
    text = greet(name, shout=kernel.flags.is_enabled(FLAG))
    kernel.events.emit(EVENT, {"name": name, "text": text})
    return text


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.group("hello")
    def hello() -> None:
        """The example plugin."""

    @hello.command("greet")
    @click.argument("name")
    @click.pass_obj
    def greet_cmd(kernel: Kernel, name: str) -> None:
        """Print a greeting for NAME."""
        click.echo(_greet_and_tell(kernel, name))


@hookimpl
def register_routes(kernel: Kernel) -> list[Route]:
    async def hello_route(request: Request) -> JSONResponse:
        """Greet someone.
        ---
        parameters:
          - {name: name, in: path, required: true, schema: {type: string, maxLength: 80}}
        responses:
          200:
            description: The greeting.
            content:
              application/json:
                schema: {type: object, required: [text], properties: {text: {type: string}}}
        """
        return JSONResponse({"text": _greet_and_tell(kernel, request.path_params["name"])})

    return [Route("/api/hello/{name}", hello_route, methods=["GET"])]

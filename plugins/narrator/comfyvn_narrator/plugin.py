"""Hook implementations of the narrator plugin (wiring only).

Routes come from every factory in `ROUTE_FACTORIES`; ``comfyvn narrator`` holds the session commands plus every
command in `GROUP_COMMANDS`. The narrator's implementations of other plugins' hooks (roleplay clean-up, battle
narration) are hookimpls of this module as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from comfyvn import hookimpl

from . import battle, cleanup, pov_routes, routes
from .cli import narrator_group
from .packs_cli import packs_group, pov_rewrite_command
from .session import APPLY_EVENT, FLAG, PROPOSAL_EVENT

if TYPE_CHECKING:
    import click
    from comfyvn import Kernel

ROUTE_FACTORIES: tuple[Callable[[Kernel], list[Any]], ...] = (routes.make_routes, pov_routes.make_pov_routes)
GROUP_COMMANDS: tuple[click.Command, ...] = (packs_group, pov_rewrite_command)

_ID = {"type": "string", "minLength": 1}
_COMMON: dict[str, Any] = {
    "scene_id": _ID,
    "node_id": _ID,
    "proposal_id": {"type": "string", "pattern": "^p[0-9]{4,9}$"},
    "turn_index": {"type": "integer", "minimum": 1},
    "choice_id": {"type": ["string", "null"]},
    "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "vars_patch": {"type": "object", "required": ["$narrator"]},
}
_REQUIRED = ["scene_id", "node_id", "proposal_id", "turn_index", "choice_id", "digest", "vars_patch"]
PROPOSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*_REQUIRED, "mode", "adapter"],
    "properties": {**_COMMON, "mode": {"enum": ["propose", "apply"]}, "adapter": {"type": ["string", "null"]}},
}
APPLY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [*_REQUIRED, "rolled_back"],
    "properties": {**_COMMON, "rolled_back": {"type": "boolean"}},
}


@hookimpl
def register_flags(register: Any) -> None:
    register(
        FLAG, False, "The narrator sessions: /api/narrator/* and `comfyvn narrator` (force: true for local drills)."
    )


@hookimpl
def register_events(register: Any) -> None:
    register(
        PROPOSAL_EVENT,
        "The narrator queued a proposal: ids, turn, suggested choice, the vars_patch with its $narrator digest.",
        PROPOSAL_SCHEMA,
    )
    register(
        APPLY_EVENT,
        "A narrator proposal was applied (rolled_back false) or undone by a rollback (rolled_back true).",
        APPLY_SCHEMA,
    )


@hookimpl
def register_routes(kernel: Kernel) -> list[Any]:
    return [route for factory in ROUTE_FACTORIES for route in factory(kernel)]


@hookimpl
def register_commands(cli: click.Group) -> None:
    for command in GROUP_COMMANDS:
        if command.name not in narrator_group.commands:
            narrator_group.add_command(command)
    cli.add_command(narrator_group)


# optionalhook: each hook belongs to another plugin (roleplay, battle); a kernel without it still loads this one.
@hookimpl(optionalhook=True)
def roleplay_cleanup_scene(
    kernel: Kernel, scene: dict[str, Any], detail_level: str, characters: dict[str, Any]
) -> dict[str, Any] | None:
    """Tidy an imported scene at a detail level through the ROLEPLAY_CLEANUP pack (speakers, order and
    choices are kept by construction; offline: a deterministic tidy)."""
    return cleanup.cleanup_scene(kernel, scene, detail_level, characters)


@hookimpl(optionalhook=True)
def narrate_battle(kernel: Kernel, request: Any) -> dict[str, Any] | None:
    """Beats from the model through the BATTLE_NARRATION pack, the resolved outcome kept."""
    return battle.narrate_battle(kernel, request)

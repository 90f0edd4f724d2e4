"""Extension points the battle plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from comfyvn.hookspecs import hookspec

if TYPE_CHECKING:
    from comfyvn import Kernel

    from .narration import NarrationRequest


@hookspec(firstresult=True)
def narrate_battle(request: NarrationRequest, kernel: Kernel) -> dict[str, Any] | None:
    """Narrate a decided battle in 4-8 beats; the first non-None answer wins.

    Called for ``/api/battle/resolve`` and ``/api/battle/sim`` (and their CLI twins) when
    ``narrate`` is true. ``request`` carries ``mode`` (``choice``/``sim``), ``outcome``,
    ``contenders``, ``pov``, ``rounds``, ``seed``, ``rng``, ``weights``, ``breakdown`` and
    ``context``; ``request.prompt_inputs()`` gives the Battle Narration prompt pack's inputs.
    ``kernel`` is the calling kernel (its config, flags and services, for a narrator that asks a model).

    Return ``{outcome, beats[{speaker, text, sfx?}], vars_patch{battle_outcome}, next_choice_hint?,
    source?}`` — ``outcome`` and ``vars_patch.battle_outcome`` must equal ``request.outcome``,
    4-8 beats, under 800 characters of text — or None to pass. An answer that breaks the contract
    (or raises) is replaced by the battle plugin's own template narration (``trylast``), which
    reports ``source: "template"`` and a warning saying why.
    """

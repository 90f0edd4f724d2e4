"""Applying a theme: a checksum-stable ``plan_delta`` of mutations, never a render.

`apply_theme` flattens a template into ``set`` mutations (LUT stack, ambience, music, prompt style,
assets, per-character looks). Given the ``current`` plan, mutations carry the ``previous`` value and
no-ops are dropped, so the delta is a real diff. The checksum is a sha256 of the canonical JSON of
the theme id and the mutations: the same request always gives the same checksum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from comfyvn.digest import digest
from comfyvn.errors import ComfyVNError, NotFound

from .templates import CHARACTER_FIELDS, TEMPLATES, CharacterStyle, ThemeTemplate

__all__ = ["CharacterRequest", "Mutation", "PlanDelta", "apply_theme", "find_template"]

_MISSING = object()


@attrs.frozen
class CharacterRequest:
    """A character to restyle: its id, optional role in the template, explicit field overrides."""

    id: str
    role: str | None = None
    overrides: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Mutation:
    target: str  # theme | lut | ambience | music | prompt | asset | character
    path: tuple[str, ...]
    value: Any
    previous: Any = _MISSING

    def as_dict(self) -> dict[str, Any]:
        data = {"target": self.target, "path": ".".join(self.path), "op": "set", "value": self.value}
        if self.previous is not _MISSING:
            data["previous"] = self.previous
        return data


@attrs.frozen
class PlanDelta:
    theme: str
    mutations: tuple[Mutation, ...]
    unchanged: int
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """``{theme, checksum, mutations[], counts, unchanged, warnings}``."""
        mutations = [m.as_dict() for m in self.mutations]
        counts: dict[str, int] = {}
        for m in self.mutations:
            counts[m.target] = counts.get(m.target, 0) + 1
        return {
            "theme": self.theme,
            "checksum": digest({"theme": self.theme, "mutations": mutations}),
            "mutations": mutations,
            "counts": counts,
            "unchanged": self.unchanged,
            "warnings": list(self.warnings),
        }


def find_template(name: str, field: str = "theme") -> ThemeTemplate:
    """The template called ``name`` (case-insensitive id or label); `NotFound` naming ``field``."""
    key = name.strip().lower()
    for template in TEMPLATES.values():
        if key in (template.id, template.label.lower()):
            return template
    raise NotFound(f"unknown theme {name!r}; expected one of {sorted(TEMPLATES)}", field=field, code="unknown_theme")


def _style(template: ThemeTemplate, person: CharacterRequest, warnings: list[str]) -> CharacterStyle:
    style = template.character
    if person.role is not None:
        if person.role in template.roles:
            style = template.roles[person.role]
        else:
            warnings.append(
                f"characters.{person.id}.role: theme {template.id!r} has no {person.role!r} look; "
                f"using its default (roles: {', '.join(sorted(template.roles))})"
            )
    return attrs.evolve(style, **dict(person.overrides)) if person.overrides else style


def _targets(
    template: ThemeTemplate, characters: Sequence[CharacterRequest], warnings: list[str]
) -> list[tuple[str, tuple[str, ...], Any]]:
    t = template
    rows: list[tuple[str, tuple[str, ...], Any]] = [
        ("theme", ("theme",), t.id),
        ("lut", ("luts",), list(t.luts)),
        ("ambience", ("ambience", "time_of_day"), t.ambience.time_of_day),
        ("ambience", ("ambience", "weather"), t.ambience.weather),
        ("ambience", ("ambience", "mood"), t.ambience.mood),
        ("ambience", ("ambience", "sfx"), list(t.ambience.sfx)),
        ("music", ("music", "pack"), t.music.pack),
        ("music", ("music", "mood"), t.music.mood),
        ("music", ("music", "tempo"), t.music.tempo),
        ("music", ("music", "intensity"), t.music.intensity),
        ("prompt", ("prompt", "style"), t.prompt.style),
        ("prompt", ("prompt", "lighting"), t.prompt.lighting),
        ("prompt", ("prompt", "keywords"), list(t.prompt.keywords)),
        ("prompt", ("prompt", "negative"), list(t.prompt.negative)),
        ("asset", ("assets", "backdrop"), t.assets.backdrop),
        ("asset", ("assets", "overlays"), list(t.assets.overlays)),
    ]
    for person in sorted(characters, key=lambda p: p.id):
        style = _style(template, person, warnings)
        rows += [("character", ("characters", person.id, name), getattr(style, name)) for name in CHARACTER_FIELDS]
    return rows


def _lookup(current: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = current
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def apply_theme(
    template: ThemeTemplate, characters: Sequence[CharacterRequest] = (), current: Mapping[str, Any] | None = None
) -> PlanDelta:
    """The plan delta that turns ``current`` (or an empty plan) into ``template``'s look."""
    seen: set[str] = set()
    for person in characters:
        if person.id in seen:
            raise ComfyVNError(
                f"character {person.id!r} listed twice", field=f"characters.{person.id}", code="invalid_request"
            )
        seen.add(person.id)
    warnings: list[str] = []
    mutations = []
    unchanged = 0
    for target, path, value in _targets(template, characters, warnings):
        if current is None:
            mutations.append(Mutation(target, path, value))
            continue
        previous = _lookup(current, path)
        if previous == value:
            unchanged += 1
            continue
        mutations.append(Mutation(target, path, value, previous if previous is not _MISSING else None))
    return PlanDelta(template.id, tuple(mutations), unchanged, tuple(warnings))

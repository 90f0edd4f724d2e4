"""The built-in scanners: rating above the project's target, assets without a licence or provenance,
third-party cards without credits, secrets-looking strings in scripts.

Each is a plain function of a project (and, for the rating, a function rating it), so the tests call them
directly; `builtin_findings` runs them all for the advisory plugin's own ``advisory_scan``.

Where the project records what it knows (``project.json``):

- ``metadata.target_rating`` (else ``metadata.rating``): the rating the creator aims for (E, T, M, Adult);
- ``metadata.assets``: ``{"<path relative to the project>": {"license": "CC-BY-4.0", "provenance": "…"}}``
  (``licence`` and ``source`` are read too). Files in a ``<stem>.layers/`` folder (the depth planes a
  layers split made of ``<stem>.<ext>`` beside it) are derived from that picture and carry its record;
- ``credits`` (or ``metadata.credits``): strings, or objects with a ``name``, crediting card creators.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from comfyvn.errors import ComfyVNError
from comfyvn.paths import safe_join

from .findings import finding

__all__ = [
    "asset_findings",
    "builtin_findings",
    "credit_findings",
    "project_assets",
    "rating_findings",
    "secret_findings",
]

LEVELS = ("E", "T", "M", "Adult")
MAX_ASSET_FILES = 5000
MAX_STRINGS = 200_000
MAX_SCANNED_CHARS = 100_000

#: Known credential formats: finding one in a game's script would publish it (block).
SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
    ("OpenAI-style API key", re.compile(r"\bsk-(?:[A-Za-z0-9_-]*-)?[A-Za-z0-9]{20,}")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}")),
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
)
#: ``api_key = …``-style assignments: likely a secret, possibly a line of fiction (warn).
ASSIGNMENT = re.compile(
    r"\b(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|password)\s*[:=]\s*['\"]?[A-Za-z0-9_\-./+]{12,}",
    re.IGNORECASE,
)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _level(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    folded = value.strip().lower()
    return next((level for level in LEVELS if level.lower() == folded), None)


# -- rating ------------------------------------------------------------------------------------------
def rating_findings(project: Any, rate: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """``warn`` when the project rates above ``metadata.target_rating`` (or ``metadata.rating``).

    ``rate(project)`` answers the rating plugin's wire ``rating`` object (``rating``, ``reasons``). A project
    without a target gets no finding; one whose target is not a level gets an ``info``.
    """
    metadata = _obj(project.meta.get("metadata"))
    key = "target_rating" if "target_rating" in metadata else "rating"
    raw = metadata.get(key)
    if raw is None:
        return []
    where = f"project.json#/metadata/{key}"
    target = _level(raw)
    if target is None:
        return [
            finding(
                "info", "rating_target_unknown", f"the target rating {str(raw)[:40]!r} is not E, T, M or Adult", where
            )
        ]
    rated = rate(project)
    level = rated.get("rating")
    if isinstance(level, str) and level in LEVELS and LEVELS.index(level) > LEVELS.index(target):
        terms = ", ".join(str(r) for r in (rated.get("reasons") or [])[:3])
        return [
            finding(
                "warn",
                "rating_above_target",
                f"the project rates {level} ({terms}), above its target {target}",
                where,
            )
        ]
    return []


# -- assets ------------------------------------------------------------------------------------------
def _asset_refs(project: Any) -> Iterator[str]:
    for character in project.characters.values():
        if not isinstance(character, dict):
            continue
        for key in ("portrait", "avatar"):
            if isinstance(character.get(key), str):
                yield character[key]
        yield from (v for v in _obj(character.get("sprites")).values() if isinstance(v, str))
    for scene in project.scenes.values():
        for holder in (scene, *(n for n in scene.get("nodes") or () if isinstance(n, dict))):
            if isinstance(holder.get("background"), str):
                yield holder["background"]
            if isinstance(_obj(holder.get("music")).get("track"), str):
                yield holder["music"]["track"]
            if isinstance(holder.get("voice"), str):
                yield holder["voice"]
            yield from (
                s["sound"] for s in holder.get("sfx") or () if isinstance(s, dict) and isinstance(s.get("sound"), str)
            )


def project_assets(project: Any) -> list[str]:
    """The asset files a project uses or carries, as paths relative to its folder (sorted): the files its
    characters and scenes name that exist below the folder, and every file under ``assets/``."""
    if project.root is None or not project.root.is_dir():
        return []
    # Resolved, because safe_join answers resolved paths: a root given relative (`policy check examples/demo`)
    # or through a symlink would otherwise not contain them.
    root: Path = project.root.resolve()
    found: set[str] = set()
    for ref in _asset_refs(project):
        try:
            path = safe_join(root, ref)
            if not path.is_file():
                continue
        except (ComfyVNError, OSError):  # outside the project or unnameable: the validator's business, not an asset
            continue
        found.add(path.relative_to(root).as_posix())
    assets = root / "assets"
    if assets.is_dir():
        for count, path in enumerate(p for p in assets.rglob("*") if p.is_file() and not p.is_symlink()):
            if count >= MAX_ASSET_FILES:
                break
            found.add(path.relative_to(root).as_posix())
    return sorted(found)


def _derived_from(path: str, records: dict[str, Any]) -> dict[str, Any]:
    """The record of the picture a file in a ``<stem>.layers/`` folder was split from (``<stem>.<ext>``
    beside the folder, the one with a record), else ``{}``."""
    parent = Path(path).parent
    if parent.suffix != ".layers":
        return {}
    source = parent.with_suffix("").as_posix() + "."
    for key in sorted(records):
        if key.startswith(source) and "/" not in key[len(source) :] and isinstance(records[key], dict):
            return _obj(records[key])
    return {}


def asset_findings(project: Any) -> list[dict[str, Any]]:
    """``warn`` for each asset without a licence, ``info`` for each without provenance (``metadata.assets``)."""
    records = _obj(_obj(project.meta.get("metadata")).get("assets"))
    out: list[dict[str, Any]] = []
    for path in project_assets(project):
        record = _obj(records.get(path)) or _derived_from(path, records)
        licence = record.get("license", record.get("licence"))
        provenance = record.get("provenance", record.get("source"))
        if not (isinstance(licence, str) and licence.strip()):
            out.append(
                finding(
                    "warn",
                    "asset_unlicensed",
                    f"{path} has no licence; record one in metadata.assets before distributing it",
                    path,
                )
            )
        if not provenance:
            out.append(finding("info", "asset_no_provenance", f"{path} has no provenance (where it came from)", path))
    return out


# -- credits -----------------------------------------------------------------------------------------
def _credit_names(meta: dict[str, Any]) -> list[str]:
    raw = meta.get("credits", _obj(meta.get("metadata")).get("credits"))
    names: list[str] = []
    for item in raw if isinstance(raw, list) else [raw] if isinstance(raw, str) else []:
        if isinstance(item, str):
            names.append(item.casefold())
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.append(item["name"].casefold())
    return names


def credit_findings(project: Any) -> list[dict[str, Any]]:
    """``warn`` for each character card with a ``creator`` whom the project's ``credits`` do not name."""
    credits = _credit_names(project.meta)
    out: list[dict[str, Any]] = []
    for cid, character in project.characters.items():
        card = _obj(_obj(_obj(character).get("metadata")).get("card"))
        creator = card.get("creator")
        if not (isinstance(creator, str) and creator.strip()):
            continue
        if any(creator.strip().casefold() in credit for credit in credits):
            continue
        out.append(
            finding(
                "warn",
                "card_credit_missing",
                f"the card of {cid!r} is by {creator.strip()[:80]!r}, who is not in the project's credits",
                f"project.json#/characters/{cid}/metadata/card/creator",
            )
        )
    return out


# -- secrets -----------------------------------------------------------------------------------------
def _strings(value: Any, pointer: str, budget: list[int]) -> Iterator[tuple[str, str]]:
    stack: list[tuple[Any, str]] = [(value, pointer)]
    while stack and budget[0] > 0:
        current, where = stack.pop()
        if isinstance(current, str):
            budget[0] -= 1
            yield where, current[:MAX_SCANNED_CHARS]
        elif isinstance(current, dict):
            stack.extend((v, f"{where}/{_escape(str(k))}") for k, v in reversed(list(current.items())))
        elif isinstance(current, list):
            stack.extend((v, f"{where}/{i}") for i, v in reversed(list(enumerate(current))))


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _mask(secret: str) -> str:
    return secret[:4] + "…"


def secret_findings(project: Any) -> list[dict[str, Any]]:
    """``block`` for a known credential format anywhere in the project's files (``project.json``, each
    scene); ``warn`` for ``password = …``-style assignments. Messages show four characters, never the rest."""
    budget = [MAX_STRINGS]
    documents = [("project.json#", project.meta)] + [(f"scenes/{sid}.json#", s) for sid, s in project.scenes.items()]
    out: list[dict[str, Any]] = []
    for prefix, document in documents:
        for where, text in _strings(document, prefix, budget):
            hit = next(((name, m) for name, pattern in SECRET_PATTERNS if (m := pattern.search(text))), None)
            if hit is not None:
                name, match = hit
                out.append(
                    finding("block", "secret_in_script", f"a {name} ({_mask(match.group(0))}) is in the script", where)
                )
            elif (assigned := ASSIGNMENT.search(text)) is not None:
                out.append(
                    finding(
                        "warn",
                        "secret_like_assignment",
                        f"{_mask(assigned.group(0))} looks like a credential assignment; check it is not a real one",
                        where,
                    )
                )
    return out


def builtin_findings(project: Any, rate: Callable[[Any], dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Every built-in scanner over ``project`` (the rating one when ``rate`` is given)."""
    if project is None:
        return []
    found = asset_findings(project) + credit_findings(project) + secret_findings(project)
    if rate is not None:
        found = rating_findings(project, rate) + found
    return found

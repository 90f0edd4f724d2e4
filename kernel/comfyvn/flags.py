"""Feature flags declared by plugins, persisted under ``features`` in ``<config>/comfyvn.json``.

Resolution: ``COMFYVN_FEATURE_<NAME>=0|1`` (or a legacy alias's), then the file (name, else alias), then
the default. Undeclared names in the file are kept on every write and reported by `FeatureFlags.unknown`.
Writes hold a file lock (on the config folder), so the CLI and a running server never lose each other's
changes; reads notice when the file changed and refresh, so a server sees a CLI change.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import attrs
import structlog

from .errors import ComfyVNError, FeatureDisabled, NotFound
from .paths import atomic_write_json
from .wire import loads

__all__ = ["FeatureFlags", "FlagRegistrar", "FlagSpec", "FlagState", "parse_bool"]

log = structlog.get_logger("comfyvn.flags")
CHANGED_EVENT = "on_feature_flag_changed"
_FLAG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,79}$")
_TRUE, _FALSE = {"1", "true", "on", "yes", "enabled"}, {"0", "false", "off", "no", "disabled"}


def parse_bool(value: object, *, field: str | None = None) -> bool:
    """Accept booleans and the usual spellings (1/0, true/false, on/off, yes/no)."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ComfyVNError(
        f"expected a boolean (on/off, true/false, 1/0), got {value!r}", field=field, code="invalid_boolean"
    )


@attrs.frozen
class FlagSpec:
    name: str
    default: bool
    description: str
    owner: str
    aliases: tuple[str, ...] = ()


@attrs.frozen
class FlagState:
    """A flag's effective value and where it came from (``default``, ``file`` or ``env``)."""

    spec: FlagSpec
    value: bool
    source: str
    name = property(lambda self: self.spec.name)
    description = property(lambda self: self.spec.description)
    owner = property(lambda self: self.spec.owner)

    def as_dict(self) -> dict[str, Any]:
        return {
            **attrs.asdict(self.spec),
            "aliases": list(self.spec.aliases),
            "value": self.value,
            "source": self.source,
        }


class FlagRegistrar:
    """The ``register`` handed to one plugin's ``register_flags`` hook."""

    def __init__(self, flags: FeatureFlags, owner: str) -> None:
        self._flags, self.owner = flags, owner

    def __call__(self, name: str, default: bool, description: str, aliases: Iterable[str] = ()) -> None:
        aliases = tuple(aliases)
        for candidate in (name, *aliases):
            if not isinstance(candidate, str) or not _FLAG_NAME.match(candidate):
                raise ValueError(f"invalid flag name {candidate!r}: lower-case letters, digits and _")
            spec = self._flags._specs.get(self._flags._aliases.get(candidate, candidate))
            if spec is not None:
                raise ValueError(f"flag {candidate!r} is already declared by {spec.owner!r}")
        if not isinstance(default, bool):
            raise TypeError(f"flag {name!r}: default must be a bool, got {type(default).__name__}")
        if not isinstance(description, str) or not description.strip():
            raise ValueError(f"flag {name!r} needs a description")
        self._flags._specs[name] = FlagSpec(name, default, description.strip(), self.owner, aliases)
        self._flags._aliases.update(dict.fromkeys(aliases, name))
        self._flags._states.pop(name, None)


class FeatureFlags:
    """The flag registry and its file. `refresh()` re-reads; `set()` persists atomically."""

    def __init__(
        self,
        path: Path,
        *,
        env: Mapping[str, str] | None = None,
        emit: Callable[[str, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self._env = os.environ if env is None else env
        self._emit = emit
        self._specs: dict[str, FlagSpec] = {}
        self._aliases: dict[str, str] = {}
        self._states: dict[str, FlagState] = {}
        self._document: dict[str, Any] = {}
        self.file_error: str | None = None
        self._lock = threading.RLock()
        self._stamp: tuple[int, ...] | None = (-1,)  # the file's (mtime, size, inode) when last read

    def registrar(self, owner: str) -> FlagRegistrar:
        return FlagRegistrar(self, owner)

    def remove_owner(self, owner: str) -> None:
        for name in [n for n, s in self._specs.items() if s.owner == owner]:
            for alias in self._specs.pop(name).aliases:
                self._aliases.pop(alias, None)
            self._states.pop(name, None)

    def _file_stamp(self) -> tuple[int, ...] | None:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _why(self, exc: Exception) -> str:
        return str(exc) if isinstance(exc, ComfyVNError) else f"{self.path.name}: {exc}"  # loads names the file

    def _read_document(self) -> dict[str, Any]:
        try:
            document = loads(self.path.read_bytes(), field=self.path.name)  # depth, number and Unicode limits
        except FileNotFoundError:
            return {}
        if not isinstance(document, dict) or not isinstance(document.get("features", {}), dict):
            raise ValueError("expected a JSON object with an object under 'features'")
        return document

    def refresh(self) -> FeatureFlags:
        """Re-read the file and the environment; emit a change event for each value that moved."""
        with self._lock:
            previous = {name: state.value for name, state in self._states.items()}
            self._stamp = self._file_stamp()
            try:
                self._document, self.file_error = self._read_document(), None
            except (ValueError, OSError, ComfyVNError) as exc:
                # A broken file is reported and left alone; defaults apply until it is fixed.
                self._document, self.file_error = {}, self._why(exc)
                log.error("feature flags file unreadable", path=str(self.path), error=str(exc))
            self._states = {name: self._resolve(spec) for name, spec in self._specs.items()}
        for name, state in self._states.items():
            if name in previous and previous[name] != state.value:
                self._changed(name, state.value, previous[name], "refresh")
        return self

    def _resolve(self, spec: FlagSpec) -> FlagState:
        names = (spec.name, *spec.aliases)
        features = self._document.get("features", {})
        candidates = [
            (self._env.get(f"COMFYVN_FEATURE_{n.upper()}"), "env", f"COMFYVN_FEATURE_{n.upper()}") for n in names
        ] + [(features.get(n), "file", f"features.{n}") for n in names]
        for raw, source, where in candidates:
            if raw is not None:
                try:
                    return FlagState(spec, parse_bool(raw), source)
                except ComfyVNError:
                    log.warning("ignoring invalid flag value", where=where)
        return FlagState(spec, spec.default, "default")

    def _canonical(self, name: str) -> str:
        canonical = self._aliases.get(name, name)
        if canonical not in self._specs:
            raise NotFound(f"unknown feature flag {name!r}", field="name", code="unknown_flag")
        return canonical

    def get(self, name: str) -> FlagState:
        """The state of a flag (by name or legacy alias). Unknown names raise `NotFound`."""
        if self._file_stamp() != self._stamp:  # another process (the CLI, an editor) changed the file
            self.refresh()
        canonical = self._canonical(name)
        state = self._states.get(canonical)
        if state is None:
            state = self._states[canonical] = self._resolve(self._specs[canonical])
        return state

    def is_enabled(self, name: str) -> bool:
        return self.get(name).value

    def require(self, name: str) -> None:
        """Raise `FeatureDisabled` (HTTP 403, CLI exit 2) unless the flag is on."""
        if not self.get(name).value:
            raise FeatureDisabled(self._canonical(name))

    def states(self) -> list[FlagState]:
        return [self.get(name) for name in sorted(self._specs)]

    def snapshot(self) -> dict[str, bool]:
        return {state.name: state.value for state in self.states()}

    def unknown(self) -> dict[str, Any]:
        """Names under ``features`` in the file that no installed plugin declares (kept, reported)."""
        features = self._document.get("features", {})
        return {k: v for k, v in features.items() if k not in self._specs and k not in self._aliases}

    def document(self) -> dict[str, Any]:
        """A copy of the whole ``comfyvn.json``, read again when another process changed it."""
        if self._file_stamp() != self._stamp:
            self.refresh()
        return cast(dict[str, Any], json.loads(json.dumps(self._document)))

    def set(self, name: str, value: object) -> FlagState:
        """Persist a flag atomically (other keys kept, alias keys synced); emit ``on_feature_flag_changed``.
        Under an environment override the file changes but the effective value stays the override's."""
        enabled = parse_bool(value, field=name)
        before = self.get(name).value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)  # the folder outlives the file's atomic replacement
        with self._lock:
            try:  # read-modify-write under the file lock: no other process writes in between
                fcntl.flock(fd, fcntl.LOCK_EX)
                canonical = self._canonical(name)
                try:
                    document = self._read_document()
                except (ValueError, OSError, ComfyVNError) as exc:
                    raise ComfyVNError(
                        f"refusing to overwrite unreadable {self._why(exc)}",
                        field="comfyvn.json",
                        code="config_unreadable",
                    ) from None
                features = document.setdefault("features", {})
                for key in (canonical, *[a for a in self._specs[canonical].aliases if a in features]):
                    features[key] = enabled
                atomic_write_json(self.path, document)
            finally:
                os.close(fd)
            self._document, self.file_error, self._stamp = document, None, self._file_stamp()
            state = self._states[canonical] = self._resolve(self._specs[canonical])
        if state.value != before:
            self._changed(canonical, state.value, before, "set")
        return state

    def _changed(self, name: str, value: bool, previous: bool, source: str) -> None:
        log.info("feature flag changed", flag=name, value=value, previous=previous, source=source)
        if self._emit is not None:
            self._emit(CHANGED_EVENT, {"name": name, "value": value, "previous": previous, "source": source})

"""The secrets vault: ``{provider: {field: value}}`` in one PyNaCl SecretBox, ``comfyvn.secrets.json``.

Key: Argon2id over ``COMFYVN_SECRETS_KEY`` (salt in the file) or the 0600 key file ``comfyvn.secrets.key``.
``COMFYVN_SECRET_<PROVIDER>_<FIELD>`` overrides are merged on read without touching disk; every access is
audited (names, never values). The file is canonical JSON, checked on read: any changed byte is detected.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.pwhash
import nacl.secret
import nacl.utils

from .errors import ComfyVNError
from .paths import atomic_write_bytes

__all__ = ["Vault", "VaultError", "env_variable"]

FORMAT, MAX_BACKUPS, KEY_SIZE = "comfyvn-vault", 5, nacl.secret.SecretBox.KEY_SIZE
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ARGON = nacl.pwhash.argon2id
Data = dict[str, dict[str, str]]


class VaultError(ComfyVNError):
    """The vault cannot be opened (no key, wrong key, damaged file). The file is never touched."""

    code = "vault_unavailable"


def _corrupted(why: str) -> VaultError:
    return VaultError(f"the vault file is corrupted ({why})", code="vault_corrupted")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise _corrupted(f"{what} is not base64") from None


def _canonical(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _check(key: bytes) -> bytes:
    return nacl.hash.blake2b(b"", key=key, person=b"comfyvn.vault.1", digest_size=16, encoder=nacl.encoding.RawEncoder)


def env_variable(provider: str, field: str) -> str:
    """The override variable for a secret: ``COMFYVN_SECRET_<PROVIDER>_<FIELD>``."""
    return re.sub(r"[^A-Z0-9]", "_", f"COMFYVN_SECRET_{provider}_{field}".upper())


def _check_names(provider: str, field: str) -> None:
    for what, value in (("provider", provider), ("field", field)):
        if not isinstance(value, str) or not _NAME.match(value):
            raise ComfyVNError(
                f"invalid secret {what} name {value!r}: letters, digits, '_', '.', '-'",
                field=what,
                code="invalid_secret_name",
            )


class Vault:
    """Encrypted provider secrets. Thread-safe; each operation re-reads the file."""

    def __init__(
        self,
        config_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        emit: Callable[[str, dict[str, Any]], Any] | None = None,
        audit_path: Path | None = None,
        kdf_limits: tuple[int, int] = (_ARGON.OPSLIMIT_INTERACTIVE, _ARGON.MEMLIMIT_INTERACTIVE),
    ) -> None:
        self.path = Path(config_dir) / "comfyvn.secrets.json"
        self.key_path = Path(config_dir) / "comfyvn.secrets.key"
        self.backup_dir = Path(config_dir) / "secrets-backups"
        self._env = os.environ if env is None else env
        self._emit, self._audit_path, self._kdf_limits = emit, audit_path, kdf_limits
        self._derived: dict[tuple[str, bytes, int, int], bytes] = {}
        self._lock = threading.RLock()

    def get(self, provider: str, field: str) -> str | None:
        """A secret's value: the environment override if set, else the vault's; audited."""
        _check_names(provider, field)
        value, source = self._env.get(env_variable(provider, field)), "env"
        if value is None:
            value, source = self._open()[0].get(provider, {}).get(field), "vault"
        self._audit(
            "security.secret_read", provider=provider, field=field, source=source if value is not None else "missing"
        )
        return value

    def set(self, provider: str, field: str, value: str) -> None:
        """Store a secret (re-encrypting the whole vault atomically); audited without the value."""
        _check_names(provider, field)
        if not isinstance(value, str):
            raise ComfyVNError("secret values must be strings", field="value", code="invalid_secret")
        with self._lock:
            data, key, header = self._open(create=True)
            data.setdefault(provider, {})[field] = value
            self._store(data, key, header)
        self._audit("security.secret_write", provider=provider, field=field, action="set")

    def delete(self, provider: str, field: str) -> bool:
        """Remove a secret; returns whether it existed."""
        _check_names(provider, field)
        with self._lock:
            data, key, header = self._open()
            if field not in data.get(provider, {}):
                return False
            del data[provider][field]
            if not data[provider]:
                del data[provider]
            self._store(data, key, header)
        self._audit("security.secret_write", provider=provider, field=field, action="delete")
        return True

    def list(self) -> list[dict[str, str]]:
        """Provider and field names with their source (``vault``, ``vault+env`` or ``env``), never values."""
        pairs = sorted((p, f) for p, fields in self._open()[0].items() for f in fields)
        listed = [
            {"provider": p, "field": f, "source": "vault+env" if env_variable(p, f) in self._env else "vault"}
            for p, f in pairs
        ]
        known = {env_variable(p, f) for p, f in pairs}
        return listed + [
            {"provider": "", "field": "", "source": "env", "variable": name}
            for name in sorted(self._env)
            if name.startswith("COMFYVN_SECRET_") and name not in known
        ]

    def rotate_key(self, new_passphrase: str | None = None) -> dict[str, Any]:
        """Re-encrypt under a new key (``new_passphrase``, a new salt, or a new key file); back up the old
        file and key file, keeping five."""
        with self._lock:
            data, _, header = self._open(create=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**9:09d}"
            backup = self.backup_dir / f"comfyvn.secrets.{stamp}.json"
            if self.path.exists():
                atomic_write_bytes(backup, self.path.read_bytes(), mode=0o600)
            if header["type"] == "keyfile":
                atomic_write_bytes(backup.with_suffix(".key"), self.key_path.read_bytes(), mode=0o600)
                new_key, pending = nacl.utils.random(KEY_SIZE), self.key_path.with_name(self.key_path.name + ".new")
                atomic_write_bytes(pending, _b64(new_key).encode(), mode=0o600)
                self._store(data, new_key, header)
                os.replace(pending, self.key_path)
            else:
                new_header = self._new_salt()
                self._store(data, self._derive(new_passphrase or self._passphrase(), new_header), new_header)
            for old in sorted(self.backup_dir.glob("comfyvn.secrets.*.json"))[:-MAX_BACKUPS]:
                old.unlink(missing_ok=True)
                old.with_suffix(".key").unlink(missing_ok=True)
        self._audit("security.key_rotated", kdf=header["type"], backup=backup.name)
        return {"backup": str(backup), "kdf": header["type"], "secrets": sum(len(f) for f in data.values())}

    def _open(self, *, create: bool = False) -> tuple[Data, bytes, dict[str, Any]]:
        """Decrypt the vault: ``(data, key, kdf header)``; a missing vault is empty (with a new key if ``create``)."""
        if not self.path.exists():
            if not create:
                return {}, b"", {}
            if self._env.get("COMFYVN_SECRETS_KEY"):
                header = self._new_salt()
                return {}, self._derive(self._passphrase(), header), header
            return {}, self._key_from_file(create=True), {"type": "keyfile"}
        try:  # a folder, unreadable bytes or JSON nested past the recursion limit are all a damaged vault
            raw = self.path.read_bytes()
            document = json.loads(raw.decode("ascii"))
        except (OSError, ValueError, RecursionError):
            raise _corrupted("not a readable JSON file") from None
        if (
            not isinstance(document, dict)
            or set(document) != {"format", "version", "kdf", "check", "box"}
            or document["format"] != FORMAT
            or document["version"] != 1
            or not isinstance(document["kdf"], dict)
            or _canonical(document) != raw
        ):
            raise _corrupted("unexpected structure")
        header = document["kdf"]
        if header.get("type") == "argon2id":
            key = self._derive(self._passphrase(), header)
        elif header == {"type": "keyfile"}:
            key = self._key_from_file(create=False)
        else:
            raise _corrupted("unknown kdf")
        check = _unb64(document["check"], "check")
        pending = self.key_path.with_name(self.key_path.name + ".new")
        # A rotation stopped between writing the vault and installing its new key: finish it.
        if (
            check != _check(key)
            and header == {"type": "keyfile"}
            and pending.exists()
            and check == _check(new_key := _unb64(pending.read_text().strip(), "pending key"))
        ):
            os.replace(pending, self.key_path)
            key = new_key
        if check != _check(key):
            raise VaultError(
                "the vault key does not match (wrong COMFYVN_SECRETS_KEY or key file), or the vault file is damaged",
                code="vault_wrong_key",
            )
        try:
            data = json.loads(nacl.secret.SecretBox(key).decrypt(_unb64(document["box"], "box")).decode("utf-8"))
        except (nacl.exceptions.CryptoError, ValueError, RecursionError):
            raise _corrupted("authentication failed") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise _corrupted("bad content")
        return data, key, header

    def _store(self, data: Data, key: bytes, header: dict[str, Any]) -> None:
        box = nacl.secret.SecretBox(key).encrypt(json.dumps(data, sort_keys=True).encode("utf-8"))
        document = {"format": FORMAT, "version": 1, "kdf": header, "check": _b64(_check(key)), "box": _b64(bytes(box))}
        atomic_write_bytes(self.path, _canonical(document), mode=0o600)

    def _passphrase(self) -> str:
        passphrase = self._env.get("COMFYVN_SECRETS_KEY")
        if not passphrase:
            raise VaultError("the vault is passphrase-protected: set COMFYVN_SECRETS_KEY", code="vault_locked")
        return passphrase

    def _new_salt(self) -> dict[str, Any]:
        ops, mem = self._kdf_limits
        return {"type": "argon2id", "salt": _b64(nacl.utils.random(_ARGON.SALTBYTES)), "opslimit": ops, "memlimit": mem}

    def _derive(self, passphrase: str, header: Mapping[str, Any]) -> bytes:
        salt, ops, mem = _unb64(header.get("salt"), "salt"), header.get("opslimit"), header.get("memlimit")
        if (
            len(salt) != _ARGON.SALTBYTES
            or not isinstance(ops, int)
            or not isinstance(mem, int)
            or not _ARGON.OPSLIMIT_MIN <= ops <= _ARGON.OPSLIMIT_MAX
            or not _ARGON.MEMLIMIT_MIN <= mem <= 2**32
        ):
            raise _corrupted("bad kdf parameters")
        cache_key = (passphrase, salt, ops, mem)
        if cache_key not in self._derived:  # Argon2id is deliberately slow: keep the current key only
            self._derived = {cache_key: _ARGON.kdf(KEY_SIZE, passphrase.encode(), salt, opslimit=ops, memlimit=mem)}
        return self._derived[cache_key]

    def _key_from_file(self, *, create: bool) -> bytes:
        try:
            key = _unb64(self.key_path.read_text(encoding="ascii").strip(), "key file")
        except FileNotFoundError:
            if not create:
                raise VaultError(f"the vault key file {self.key_path} is missing", code="vault_locked") from None
            key = nacl.utils.random(KEY_SIZE)
            self.key_path.parent.mkdir(parents=True, exist_ok=True)
            with os.fdopen(os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                handle.write(_b64(key) + "\n")  # O_EXCL: two processes never install two different keys
                handle.flush()
                os.fsync(handle.fileno())
        except (UnicodeDecodeError, VaultError):
            key = b""
        if len(key) != KEY_SIZE:
            raise VaultError(f"the vault key file {self.key_path} is damaged", code="vault_locked")
        return key

    def _audit(self, event: str, **fields: Any) -> None:
        if self._audit_path is not None:
            self._audit_path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"ts": time.time(), "event": event, **fields}, sort_keys=True) + "\n"
            with open(os.open(self._audit_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as handle:
                handle.write(line.encode("utf-8"))
        if self._emit is not None:
            self._emit(event, fields)

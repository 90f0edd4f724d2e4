from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import nacl.pwhash
import pytest
from comfyvn import Kernel
from comfyvn.errors import ComfyVNError
from comfyvn.secrets import Vault, VaultError
from hypothesis import given
from hypothesis import strategies as st

FAST_KDF = (nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
ident = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True)


def vault_at(folder: Path, **env: str) -> Vault:
    return Vault(folder, env=env, audit_path=folder / "audit.jsonl", kdf_limits=FAST_KDF)


@given(secrets=st.dictionaries(st.tuples(ident, ident), st.text(max_size=40), min_size=1, max_size=6))
def test_vault_round_trips_arbitrary_unicode(
    tmp_path_factory: pytest.TempPathFactory, secrets: dict[tuple[str, str], str]
) -> None:
    folder = tmp_path_factory.mktemp("vault")
    vault = vault_at(folder)
    for (provider, field), value in secrets.items():
        vault.set(provider, field, value)
    fresh = vault_at(folder)
    for (provider, field), value in secrets.items():
        assert fresh.get(provider, field) == value
    # On disk: only the fixed header and one ciphertext; no value appears in the ciphertext.
    document = json.loads((folder / "comfyvn.secrets.json").read_bytes())
    assert set(document) == {"format", "version", "kdf", "check", "box"} and document["kdf"] == {"type": "keyfile"}
    box = base64.b64decode(document["box"])
    for value in secrets.values():
        if len(value.encode()) >= 6:
            assert value.encode() not in box


@given(
    secrets=st.dictionaries(st.tuples(ident, ident), st.text(max_size=20), min_size=1, max_size=5),
    rotations=st.integers(1, 7),
)
def test_rotation_keeps_every_value_and_at_most_five_backups(
    tmp_path_factory: pytest.TempPathFactory, secrets: dict[tuple[str, str], str], rotations: int
) -> None:
    folder = tmp_path_factory.mktemp("vault")
    vault = vault_at(folder)
    for (provider, field), value in secrets.items():
        vault.set(provider, field, value)
    keys = set()
    for _ in range(rotations):
        keys.add((folder / "comfyvn.secrets.key").read_bytes())
        vault.rotate_key()
    keys.add((folder / "comfyvn.secrets.key").read_bytes())
    assert len(keys) == rotations + 1
    for (provider, field), value in secrets.items():
        assert vault_at(folder).get(provider, field) == value
    backups = sorted((folder / "secrets-backups").glob("*.json"))
    assert len(backups) == min(rotations, 5)
    # each backup opens with the key file kept beside it
    newest = backups[-1]
    restore = folder / "restore"
    restore.mkdir()
    (restore / "comfyvn.secrets.json").write_bytes(newest.read_bytes())
    (restore / "comfyvn.secrets.key").write_bytes(newest.with_suffix(".key").read_bytes())
    provider, field = next(iter(secrets))
    assert vault_at(restore).get(provider, field) == secrets[(provider, field)]


@given(position=st.integers(min_value=0), flip=st.integers(1, 255))
def test_tampering_with_any_byte_is_detected_and_the_file_left_alone(
    tmp_path_factory: pytest.TempPathFactory, position: int, flip: int
) -> None:
    folder = tmp_path_factory.mktemp("vault")
    vault = vault_at(folder)
    vault.set("openai", "api_key", "sk-secret-value")
    path = folder / "comfyvn.secrets.json"
    data = bytearray(path.read_bytes())
    data[position % len(data)] ^= flip
    path.write_bytes(bytes(data))
    with pytest.raises(VaultError) as info:
        vault_at(folder).get("openai", "api_key")
    assert "sk-secret-value" not in str(info.value)
    with pytest.raises(VaultError):
        vault_at(folder).set("openai", "other", "x")
    assert path.read_bytes() == bytes(data)


def test_passphrase_vault_and_wrong_passphrase(tmp_path: Path) -> None:
    vault = vault_at(tmp_path, COMFYVN_SECRETS_KEY="correct horse")
    vault.set("comfyui", "token", "t0k3n")
    assert not (tmp_path / "comfyvn.secrets.key").exists()
    header = json.loads((tmp_path / "comfyvn.secrets.json").read_text())["kdf"]
    assert header["type"] == "argon2id" and len(header["salt"]) > 10
    before = (tmp_path / "comfyvn.secrets.json").read_bytes()
    with pytest.raises(VaultError, match="does not match") as info:
        vault_at(tmp_path, COMFYVN_SECRETS_KEY="wrong").get("comfyui", "token")
    assert info.value.code == "vault_wrong_key"
    with pytest.raises(VaultError, match="set COMFYVN_SECRETS_KEY"):
        vault_at(tmp_path).get("comfyui", "token")
    assert (tmp_path / "comfyvn.secrets.json").read_bytes() == before
    vault.rotate_key("new passphrase")
    assert vault_at(tmp_path, COMFYVN_SECRETS_KEY="new passphrase").get("comfyui", "token") == "t0k3n"


def test_key_file_is_private(tmp_path: Path) -> None:
    vault_at(tmp_path).set("p", "f", "v")
    for name in ("comfyvn.secrets.key", "comfyvn.secrets.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_env_overrides_merge_without_touching_disk(tmp_path: Path) -> None:
    vault = vault_at(tmp_path, COMFYVN_SECRET_OPENAI_API_KEY="from-env", COMFYVN_SECRET_OPENAI_ORG="org-1")
    assert vault.get("openai", "api_key") == "from-env"
    assert vault.get("openai", "org") == "org-1"
    assert not (tmp_path / "comfyvn.secrets.json").exists()
    vault.set("openai", "api_key", "stored")
    assert vault.get("openai", "api_key") == "from-env"
    assert {"provider": "openai", "field": "api_key", "source": "vault+env"} in vault.list()


def test_audit_never_carries_values(make_kernel: Callable[..., Kernel], caplog: pytest.LogCaptureFixture) -> None:
    kernel = make_kernel()
    secret = "sk-do-not-leak-1234"
    kernel.secrets.set("openai", "api_key", secret)
    assert kernel.secrets.get("openai", "api_key") == secret
    kernel.secrets.rotate_key()
    kernel.secrets.delete("openai", "api_key")
    audit = (kernel.paths.logs / "secrets_audit.jsonl").read_text()
    actions = [json.loads(line)["event"] for line in audit.splitlines()]
    assert actions == ["security.secret_write", "security.secret_read", "security.key_rotated", "security.secret_write"]
    events = kernel.events.history()
    assert [e.event for e in events] == actions
    assert secret not in audit + json.dumps([e.as_dict() for e in events]) + caplog.text


def test_interrupted_vault_write_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = vault_at(tmp_path)
    vault.set("p", "f", "old")
    before = (tmp_path / "comfyvn.secrets.json").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        vault.set("p", "f", "new")
    monkeypatch.undo()
    assert (tmp_path / "comfyvn.secrets.json").read_bytes() == before
    assert vault_at(tmp_path).get("p", "f") == "old"


def test_rotation_interrupted_before_key_install_is_finished_on_next_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = vault_at(tmp_path)
    vault.set("p", "f", "value")
    real_replace = os.replace

    def crash_on_key(src: str, dst: str) -> None:
        if str(dst).endswith("comfyvn.secrets.key"):
            raise OSError("killed while installing the key")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_key)
    with pytest.raises(OSError):
        vault.rotate_key()
    monkeypatch.undo()
    assert vault_at(tmp_path).get("p", "f") == "value"
    assert not (tmp_path / "comfyvn.secrets.key.new").exists()


@pytest.mark.parametrize(("provider", "field"), [("", "f"), ("p", "../x"), ("a b", "f"), ("p", "x" * 200)])
def test_bad_names_are_client_errors(tmp_path: Path, provider: str, field: str) -> None:
    with pytest.raises(ComfyVNError) as info:
        vault_at(tmp_path).set(provider, field, "v")
    assert info.value.code == "invalid_secret_name" and type(info.value) is ComfyVNError

from __future__ import annotations

import os
from pathlib import Path

import pytest
from comfyvn.errors import ComfyVNError
from comfyvn.paths import RuntimePaths, atomic_write_bytes, atomic_write_json, safe_join
from hypothesis import given
from hypothesis import strategies as st

SAFE_ROOT = Path("/tmp/comfyvn-safe-root")


def _joined_or_refused(parts: list[str]) -> Path | None:
    """``safe_join`` below a fixed root, or None when it refused (always as ``invalid_path``)."""
    try:
        return safe_join(SAFE_ROOT, *parts)
    except ComfyVNError as exc:
        assert exc.code == "invalid_path"
        return None


def test_runtime_root_sets_all_four(tmp_path: Path) -> None:
    paths = RuntimePaths.from_env({"COMFYVN_RUNTIME_ROOT": str(tmp_path)})
    assert paths == RuntimePaths(tmp_path / "config", tmp_path / "data", tmp_path / "cache", tmp_path / "logs")


def test_per_root_variables_win(tmp_path: Path) -> None:
    env = {
        "COMFYVN_RUNTIME_ROOT": str(tmp_path / "all"),
        "COMFYVN_LOG_DIR": str(tmp_path / "mylogs"),
        "COMFYVN_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    paths = RuntimePaths.from_env(env)
    assert paths.logs == tmp_path / "mylogs"
    assert paths.config == tmp_path / "cfg"
    assert paths.data == tmp_path / "all" / "data"


def test_default_roots_come_from_platformdirs_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    paths = RuntimePaths.from_env({})
    for root in (paths.config, paths.data, paths.cache, paths.logs):
        assert "comfyvn" in str(root)
        assert tmp_path not in root.parents


def test_plugin_dir_is_created_below_its_root(runtime: RuntimePaths) -> None:
    folder = runtime.plugin_dir("weather")
    assert folder == runtime.data / "plugins" / "weather" and folder.is_dir()
    assert runtime.plugin_dir("weather", "cache") == runtime.cache / "plugins" / "weather"
    with pytest.raises(ValueError):
        runtime.plugin_dir("../escape")


def test_atomic_write_replaces_content_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "file.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert target.read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    os.chmod(target, 0o600)
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_interrupted_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "file.txt"
    target.write_text("old")

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        atomic_write_bytes(target, b"new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@given(
    st.lists(
        st.sampled_from(["..", ".", "a", "b", "/", "\\", "..\\..", "a/../..", "\x00", "~", "c/d"]),
        min_size=1,
        max_size=6,
    )
)
def test_safe_join_never_escapes_its_root(parts: list[str]) -> None:
    joined = _joined_or_refused(parts)
    assert joined is None or joined == SAFE_ROOT.resolve() or SAFE_ROOT.resolve() in joined.parents


def test_safe_join_refuses_symlink_out(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ComfyVNError, match="escapes"):
        safe_join(root, "link", "x")


@pytest.mark.parametrize(
    "parts",
    [
        ["x" * 256],  # one name past NAME_MAX
        ["assets", "é" * 128 + ".png"],  # 256 bytes in UTF-8 though 132 characters
        ["/".join(["ab"] * 2100)],  # short names, but the whole path passes PATH_MAX
        ["\ud800.png"],  # a lone surrogate no file system can name
    ],
    ids=["long-name", "long-utf8-name", "long-path", "surrogate"],
)
def test_safe_join_refuses_what_the_os_cannot_open(tmp_path: Path, parts: list[str]) -> None:
    # Such a path used to come back, and probing it (is_file) raised OSError ENAMETOOLONG: a 500 in callers.
    with pytest.raises(ComfyVNError) as caught:
        safe_join(tmp_path, *parts, field="background")
    assert caught.value.code == "invalid_path"
    assert caught.value.field == "background"
    assert str(tmp_path) not in caught.value.message


def test_safe_join_accepts_names_up_to_the_limit(tmp_path: Path) -> None:
    name = "x" * 251 + ".png"  # exactly 255 bytes
    joined = safe_join(tmp_path, "assets", name)
    assert joined == tmp_path.resolve() / "assets" / name
    assert not joined.is_file()  # probing it is fine: the OS takes the name


_NAMES = st.one_of(
    st.text(min_size=1, max_size=40),
    # one character repeated around the 255-byte limit (1 to 4 bytes each in UTF-8)
    st.builds(lambda ch, n: ch * n, st.characters(blacklist_categories=("Cs",)), st.integers(60, 300)),
)


@given(st.lists(_NAMES, min_size=1, max_size=4))
def test_safe_join_answers_paths_that_can_be_probed(parts: list[str]) -> None:
    joined = _joined_or_refused(parts)
    if joined is not None:
        joined.is_file()  # raises OSError (ENAMETOOLONG) if safe_join let an over-long name through

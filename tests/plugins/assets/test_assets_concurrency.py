"""Concurrency and crashes (issue 14 must-holds): concurrent registrations of one file give one blob (threads
and processes); kill -9 at any point leaves the database and files consistent, and rebuild/gc clean up."""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from assets_support import png, sha
from comfyvn import Kernel
from comfyvn_assets import AssetRegistry
from comfyvn_assets.db import Database

HERE = Path(__file__).resolve().parent
CHILD = HERE / "assets_child.py"


def _child(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(CHILD), str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".tmp")]


def _assert_consistent(registry: AssetRegistry) -> None:
    """Every row's blob, visible file and sidecar exist and agree; every blob is some row's; no temp files."""
    rows = registry.find(limit=1000)
    with sqlite3.connect(registry.root / "registry.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    for asset in rows:
        blob = registry.blobs.path(asset.sha256)
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == asset.sha256
        visible = registry.root / asset.path
        assert hashlib.sha256(visible.read_bytes()).hexdigest() == asset.sha256, asset.path
        assert registry.sidecar(asset.uid) == asset.sidecar_payload()
    assert {s for s, _ in registry.blobs.shas()} == {a.sha256 for a in rows}
    assert _temp_files(registry.root) == []
    sidecars = [p for p in registry.root.rglob("*.asset.json")]
    assert len(sidecars) == len(rows)


# -- threads ------------------------------------------------------------------------------------------------


def _together(count: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_threads_registering_one_file_make_one_blob(registry: AssetRegistry, events: list[Any]) -> None:
    data = png()
    same_path = _together(8, lambda i: registry.register_bytes(data, asset_type="image"))
    assert len({a.uid for a in same_path}) == 1 and len(registry.find()) == 1
    assert len([e for e in events if e.event == "on_asset_registered"]) == 1
    own_paths = _together(8, lambda i: registry.register_bytes(data, asset_type="image", dest_path=f"t/{i}.png"))
    assert len({a.uid for a in own_paths}) == 8
    assert [s for s, _ in registry.blobs.shas()] == [sha(data)] and registry.blob_refs(sha(data)) == 9
    _assert_consistent(registry)


def test_gc_running_during_registrations_never_loses_a_blob(registry: AssetRegistry) -> None:
    stop = threading.Event()
    collected: list[dict[str, Any]] = []

    def collector() -> None:
        while not stop.is_set():
            collected.append(registry.gc())

    thread = threading.Thread(target=collector)
    thread.start()
    try:
        # Every registration reuses or writes blobs while gc deletes everything no row names yet.
        _together(
            4, lambda i: [registry.register_bytes(png(8, 8, (i, j, 0, 255)), asset_type="image") for j in range(15)]
        )
    finally:
        stop.set()
        thread.join(60)
    assert collected and len(registry.find()) == 60
    _assert_consistent(registry)


def test_replacing_one_path_from_many_threads_leaves_the_last_committed_content(registry: AssetRegistry) -> None:
    _together(6, lambda i: registry.register_bytes(png(8, 8, (i, 0, 0, 255)), asset_type="image", dest_path="race.png"))
    registry.gc()
    _assert_consistent(registry)


# -- processes ----------------------------------------------------------------------------------------------


def test_two_processes_registering_one_file_make_one_blob(kernel: Kernel, tmp_path: Path) -> None:
    root = kernel.paths.data.parent
    go = tmp_path / "go"
    children = [_child(root, "same", str(go), "", "10") for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "done"
    registry = AssetRegistry.for_kernel(kernel)
    rows = registry.find()
    assert len(rows) == 3  # the default path once, and one path per process
    assert [s for s, _ in registry.blobs.shas()] == [sha(png())] and registry.blob_refs(sha(png())) == 3
    _assert_consistent(registry)


@pytest.mark.parametrize("point", ["blob_write", "blob", "commit", "link", "sidecar"])
def test_a_crash_at_each_step_leaves_no_row_or_a_complete_one(kernel: Kernel, point: str) -> None:
    child = _child(kernel.paths.data.parent, "crash", point)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 137 and "survived" not in out, err
    registry = AssetRegistry.for_kernel(kernel)
    rows = registry.find()
    if point in ("blob_write", "blob"):
        assert rows == []  # the row never committed
    else:
        assert [a.path for a in rows] == ["hero/happy.png"]
        assert sha(registry.blobs.path(rows[0].sha256).read_bytes()) == rows[0].sha256  # complete: its bytes exist
    leftovers = _temp_files(registry.root)
    assert bool(leftovers) == (point in ("blob_write", "link", "sidecar"))
    rebuilt = registry.rebuild()
    assert rebuilt["skipped"] == [] and rebuilt["dropped"] == []
    gc = registry.gc()
    assert gc["temp_files"] == len(leftovers) and gc["orphan_blobs"] == (1 if point == "blob" else 0)
    _assert_consistent(registry)
    assert registry.find() == rows


def test_kill_9_while_registering_in_a_loop_leaves_a_consistent_registry(kernel: Kernel) -> None:
    root = kernel.paths.data.parent
    rng = random.Random(14)
    for _ in range(3):
        child = _child(root, "loop")
        assert child.stdout is not None
        target = rng.randint(3, 25)
        for _ in range(target):
            assert child.stdout.readline(), child.stderr.read() if child.stderr else ""
        time.sleep(rng.random() * 0.05)  # land somewhere inside the next registration
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL

        registry = AssetRegistry.for_kernel(kernel)
        rows = registry.find(limit=1000)
        assert rows
        for asset in rows:  # before any repair: every committed row's bytes are complete
            assert sha(registry.blobs.path(asset.sha256).read_bytes()) == asset.sha256
        registry.rebuild()
        registry.gc()
        _assert_consistent(registry)


def test_opening_a_new_registry_waits_for_another_process_setting_it_up(tmp_path: Path) -> None:
    # Switching a new database to WAL does not wait on the busy timeout: two processes opening a new
    # registry at once failed with "database is locked" (seen in CI). The set-up now runs under an
    # exclusive flock on registry.sqlite3.init-lock; here this test holds that lock as the other process.
    db = tmp_path / "assets" / "registry.sqlite3"
    db.parent.mkdir()
    fd = os.open(db.parent / "registry.sqlite3.init-lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    opened: list[Database] = []
    thread = threading.Thread(target=lambda: opened.append(Database(db)))
    try:
        thread.start()
        thread.join(0.5)
        assert thread.is_alive() and not db.exists()  # waiting for the lock, nothing touched yet
    finally:
        os.close(fd)
    thread.join(30)
    assert opened and not thread.is_alive()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()

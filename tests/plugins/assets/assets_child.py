"""A separate process that registers assets, for the concurrency and crash tests.

``python assets_child.py ROOT loop``            register new assets forever, printing a line after each
``python assets_child.py ROOT same GO DEST N``  wait for the file GO, then register one fixed image N times
``python assets_child.py ROOT crash POINT``     register one asset and die (os._exit) at POINT:
    blob_write (blob bytes written, not renamed in), blob (blob stored, row not committed),
    commit (row committed, no visible file yet), link (visible link made, not renamed in),
    sidecar (sidecar written to its temporary file, not renamed in)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import comfyvn_assets.plugin as assets_plugin
from assets_support import png
from comfyvn import RuntimePaths, create_kernel
from comfyvn.log import configure_logging
from comfyvn_assets import AssetRegistry
from comfyvn_assets import blobs as blobs_module


def _registry(root: str) -> AssetRegistry:
    kernel = create_kernel(plugins=[assets_plugin], paths=RuntimePaths.under(root), env={})
    return AssetRegistry.for_kernel(kernel)


def _die(*_: Any, **__: Any) -> None:
    os._exit(137)


def loop(registry: AssetRegistry) -> None:
    i = 0
    while True:
        i += 1
        colour = (i % 256, (i // 256) % 256, 99, 255)
        dest = f"loop/{i % 7}.png" if i % 2 else None  # replacements at fixed paths and new default paths
        asset = registry.register_bytes(
            png(16 + i % 5, 16, colour), asset_type="sprite", dest_path=dest, provenance={"i": i}, tags=[f"t{i % 3}"]
        )
        if i % 5 == 0:
            registry.update_meta(asset.uid, metadata={"i": i})
        if i % 11 == 0:
            registry.remove(asset.uid, force=True)
        print(i, flush=True)


def same(registry: AssetRegistry, go: str, dest: str, count: int) -> None:
    while not Path(go).exists():
        time.sleep(0.005)
    for _ in range(count):
        registry.register_bytes(png(), asset_type="image", dest_path=dest or None)
        registry.register_bytes(png(), asset_type="image", dest_path=f"per-process/{os.getpid()}.png")
    print("done", flush=True)


def crash(registry: AssetRegistry, point: str) -> None:
    real_replace, real_put = os.replace, blobs_module.BlobStore.put

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        target = str(dst)
        blob = f"{os.sep}.blobs{os.sep}" in target
        if (
            (point == "blob_write" and blob)
            or (point == "link" and not blob and not target.endswith(".asset.json"))
            or (point == "sidecar" and target.endswith(".asset.json"))
        ):
            _die()
        real_replace(src, dst, *args, **kwargs)

    def put(self: Any, sha256: str, data: bytes) -> Path:
        path = real_put(self, sha256, data)
        if point == "blob":
            _die()
        return path

    os.replace = replace  # type: ignore[assignment]
    blobs_module.BlobStore.put = put  # type: ignore[method-assign]
    if point == "commit":
        AssetRegistry._materialize = _die  # type: ignore[assignment,method-assign]
    registry.register_bytes(png(), asset_type="sprite", dest_path="hero/happy.png", provenance={"seed": 1})
    print("survived", flush=True)


if __name__ == "__main__":
    configure_logging(None, level="WARNING", env={})  # stdout carries this script's own lines only
    root, mode, *rest = sys.argv[1:]
    target = _registry(root)
    if mode == "loop":
        loop(target)
    elif mode == "same":
        same(target, rest[0], rest[1], int(rest[2]))
    else:
        crash(target, rest[0])

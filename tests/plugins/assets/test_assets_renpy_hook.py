"""``renpy_resolve_asset`` (the Ren'Py exporter's hook): the assets plugin resolves ``asset:<uid>`` refs to the file
and its provenance; other refs and unknown uids are not its to answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import comfyvn_assets.plugin as assets_plugin
import comfyvn_renpy.plugin as renpy_plugin
from assets_support import png, sha
from comfyvn import Kernel
from comfyvn_assets import AssetRegistry


def test_hook_renpy_resolve_asset(make_kernel: Callable[..., Kernel]) -> None:
    kernel = make_kernel(renpy_plugin, assets_plugin)
    try:
        registry = AssetRegistry.for_kernel(kernel)
        asset = registry.register_bytes(
            png(),
            asset_type="sprite",
            dest_path="characters/hero/happy.png",
            provenance={"seed": 9},
            license="CC-BY-4.0",
            source="comfyui",
        )
        (registry.root / asset.path).unlink()  # the exporter still gets a file: it is re-made from the blob
        answers = kernel.pm.hook.renpy_resolve_asset(ref=f"asset:{asset.uid}", kernel=kernel)
        assert len(answers) == 1
        answer = answers[0]
        assert answer["path"] == str(registry.root / "characters/hero/happy.png")
        assert sha(Path(answer["path"]).read_bytes()) == asset.sha256 == answer["sha256"]
        assert (answer["uid"], answer["provenance"], answer["license"], answer["source"]) == (
            asset.uid,
            {"seed": 9},
            "CC-BY-4.0",
            "comfyui",
        )
        for ref in ("asset:0123456789abcdef", "asset:../../etc", "images/hero.png", "asset:"):
            assert kernel.pm.hook.renpy_resolve_asset(ref=ref, kernel=kernel) == []
    finally:
        AssetRegistry.forget(kernel)

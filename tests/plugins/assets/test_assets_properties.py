"""Property tests: destination paths never escape the root and never crash; find() agrees with a plain model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from assets_support import png
from comfyvn.errors import ComfyVNError, Invalid
from comfyvn_assets import AssetRegistry, AssetSettings
from comfyvn_assets.destpath import check_dest_path, dest_file
from hypothesis import given, settings
from hypothesis import strategies as st

PIECES = st.sampled_from([*"ab.Z9-_ é/\\:\x00\n*~\u202eß", "..", "/..", "./"])
DEST = st.one_of(
    st.lists(PIECES, max_size=25).map("".join),
    st.lists(st.sampled_from(["a", "..", ".", "", "b.png", ".x", "C:", "x.asset.json", "é"]), max_size=6).map("/".join),
    st.text(max_size=30),
)


@given(DEST)
def test_a_dest_path_is_refused_clearly_or_stays_inside_the_root(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        try:
            normalized = check_dest_path(text)
        except Invalid as exc:
            assert exc.field == "dest_path" and exc.code == "invalid_dest_path" and exc.message
            return
        assert check_dest_path(normalized) == normalized == text  # accepted paths are already normal
        target = dest_file(root, normalized)
        assert root in target.parents
        assert not any(part.startswith(".") for part in target.relative_to(root).parts)


@settings(max_examples=25)
@given(DEST)
def test_registering_at_any_dest_path_lands_inside_the_root_or_is_refused(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder).resolve()
        registry = AssetRegistry(AssetSettings(root=base / "assets", cache=base / "cache"))
        try:
            asset = registry.register_bytes(png(4, 4), asset_type="image", dest_path=text)
        except ComfyVNError as exc:
            assert exc.field == "dest_path"
            assert not any(p.is_file() for p in base.rglob("*") if ".blobs" not in p.parts and p.suffix == ".png")
            return
        finally:
            registry.close()
        visible = registry.file_path(asset.uid)
        assert registry.root in visible.parents and visible.read_bytes() == png(4, 4)
        assert {p for p in base.rglob("*") if p.is_file()} <= {
            *registry.root.rglob("*"),
            *(base / "cache").rglob("*"),
        }


WORDS = st.sampled_from(["Hero", "hero", "villain", "Summer", "ÉTÉ", "straße", "mod", "x"])
TYPES = st.sampled_from(["portrait", "character.sprite", "background", "BG", "image"])
ASSETS = st.lists(
    st.fixed_dictionaries(
        {
            "type": TYPES,
            "tags": st.lists(WORDS, max_size=3),
            "license": st.one_of(st.none(), WORDS),
            "metadata": st.dictionaries(st.sampled_from(["k", "artist"]), WORDS, max_size=2),
        }
    ),
    min_size=1,
    max_size=5,
)
QUERIES = st.fixed_dictionaries(
    {
        "type": st.one_of(st.none(), TYPES),
        "tags": st.lists(WORDS, max_size=2),
        "q": st.one_of(st.none(), WORDS, st.sampled_from(["png", "/", "STRASSE", "er"])),
        "hash": st.one_of(st.none(), st.integers(0, 4)),
    }
)
CANONICAL = {"portrait": "character.portrait", "bg": "background"}


def _model_match(asset: Any, query: dict[str, Any], hash_prefix: str | None) -> bool:
    if query["type"] is not None and asset.type != CANONICAL.get(query["type"].lower(), query["type"].lower()):
        return False
    own = {t.casefold() for t in asset.tags}
    if not all(t.casefold() in own for t in query["tags"]):
        return False
    if hash_prefix is not None and not asset.sha256.startswith(hash_prefix):
        return False
    if query["q"] is not None:
        fields = [asset.path, asset.type, *asset.tags, asset.license or "", asset.source or ""]
        fields.append(json.dumps(asset.metadata, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
        return any(query["q"].casefold() in f.casefold() for f in fields)
    return True


@settings(max_examples=30)
@given(ASSETS, QUERIES)
def test_find_agrees_with_a_plain_filter(specs: list[dict[str, Any]], query: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        registry = AssetRegistry(AssetSettings(root=base / "assets", cache=base / "cache"))
        try:
            made = [
                registry.register_bytes(
                    png(4, 4, (i, 0, 0, 255)),
                    asset_type=spec["type"],
                    dest_path=f"set/{i}.png",
                    tags=spec["tags"],
                    license=spec["license"],
                    metadata=spec["metadata"],
                )
                for i, spec in enumerate(specs)
            ]
            prefix = None if query["hash"] is None else made[query["hash"] % len(made)].sha256[:6]
            found = registry.find(type=query["type"], tags=query["tags"], q=query["q"], hash=prefix)
        finally:
            registry.close()
        expected = sorted((a for a in made if _model_match(a, query, prefix)), key=lambda a: a.path)
        assert [a.uid for a in found] == [a.uid for a in expected]

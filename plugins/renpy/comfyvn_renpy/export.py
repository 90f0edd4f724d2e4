"""Project → Ren'Py project files in memory (`build_bundle`), then written, previewed or zipped.

A `Bundle` is the whole export as ``relative path → bytes``; nothing here depends on the clock, the
output folder or the machine, so the same project and options give byte-identical files (and zip).
``generated_at`` is only set when the caller passes one (the CLI uses ``SOURCE_DATE_EPOCH``).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from comfyvn.errors import ComfyVNError
from comfyvn_scenario import Project, ValidationReport, validate_project
from comfyvn_scenario.runner import _deep_merge_defaults
from comfyvn_scenario.validation import raise_for_invalid

from .art import backdrop_png
from .conditions import RUNTIME_RPY
from .fonts import collect_characters, plan_fonts
from .gui import DEFAULT_RESOLUTION, GuiSpec, gui_spec, parse_resolution
from .layout import ImageDef, Layout, build_layout, project_source_name
from .parallax import PARALLAX_FILE, PARALLAX_RPY, plane_zoom
from .script import BACKDROP_FILE, HEADER, Extras, ScriptWriter
from .shell import about_text, gui_file, screens_file, shell_images
from .testcases import Testcase, derive_testcases, render_testcases
from .text import Paginator

__all__ = ["POV_MODES", "Bundle", "ExportOptions", "build_bundle", "digest", "manifest_bytes"]

POV_MODES = ("auto", "master", "forks", "both", "disabled")
# Strings of script.py the player reads besides the project's own (the shell's interface is ASCII).
SHELL_TEXT = ("Whose story do you want to follow?", "Switch POV: whose eyes from now on?", "Keep the current POV")


@attrs.frozen
class ExportOptions:
    """What to build. ``pov_mode``: auto (master + forks when the project has 2+ POVs), master, forks, both,
    disabled; ``pov_switch`` False drops the in-game Switch POV menu; ``resolution`` the game's window
    (``"1920x1080"`` or a pair; 1280x720 at least; 400 ``invalid_resolution`` otherwise)."""

    pov_mode: str = "auto"
    pov_switch: bool = True
    per_scene: bool = True
    testcases: bool = False
    bake_weather: bool = False
    resolution: tuple[int, int] = attrs.field(default=DEFAULT_RESOLUTION, converter=parse_resolution)
    font: str | None = None  # a font for characters Ren'Py's default font lacks (fonts.py)

    def __attrs_post_init__(self) -> None:
        if self.pov_mode not in POV_MODES:
            raise ComfyVNError(
                f"unknown POV mode {self.pov_mode!r}; use one of {', '.join(POV_MODES)}",
                field="pov_mode",
                code="invalid_pov_mode",
            )

    def to_wire(self) -> dict[str, Any]:
        wire = attrs.asdict(self)
        wire["resolution"] = f"{self.resolution[0]}x{self.resolution[1]}"
        if self.font is not None:
            wire["font"] = Path(self.font).name  # never a path of the machine in an answer
        return wire


@attrs.frozen
class Bundle:
    """One export in memory: game files, manifests, warnings and what was missing."""

    files: dict[str, bytes]
    manifests: dict[str, bytes]
    export_manifest: dict[str, Any]
    label_manifest: dict[str, Any]
    warnings: tuple[str, ...]
    testcases: tuple[Testcase, ...] = ()

    def all_files(self) -> dict[str, bytes]:
        return {**self.files, **self.manifests}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(value: Any) -> bytes:
    """Manifests: sorted keys, 2-space indent, UTF-8, final newline (stable bytes)."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def start_variables(project: Project) -> dict[str, Any]:
    """The variables a run of ``project`` starts with (the project's defaults, then each scene's, the
    first declaration winning): `compile_scenario(project).variables`, by the runner's own merge, without
    compiling every node of the project for it."""
    variables = copy.deepcopy(project.variables)
    for scene in project.scenes.values():
        _deep_merge_defaults(variables, scene.get("variables") or {})
    return variables


def _pov_plan(project: Project, options: ExportOptions) -> tuple[str, bool, list[str]]:
    """``(effective mode, menu in the master build, POVs that get a fork)``."""
    povs = [p["id"] for p in project.povs if isinstance(p.get("id"), str)]
    mode = options.pov_mode
    if mode == "auto":
        mode = "both" if len(povs) >= 2 else "disabled"
    menu = mode in ("master", "both") and options.pov_switch and len(povs) >= 2
    forks = povs if mode in ("forks", "both") else []
    return mode, menu, forks


def _game_files(
    writer: ScriptWriter,
    layout: Layout,
    defaults: Mapping[str, Any],
    per_scene: bool,
    version: str,
    spec: GuiSpec,
    fork: str | None = None,
) -> dict[str, str]:
    scene_texts = {sid: writer.scene_file(sid) for sid in layout.project.scenes}
    files = {
        "game/options.rpy": writer.options_file(version, about=about_text(layout.project), fork=fork),
        "game/gui.rpy": gui_file(spec, writer.header),
        "game/screens.rpy": screens_file(writer.header),
        "game/characters.rpy": writer.characters_file(),
        "game/images.rpy": writer.images_file(spec),
        "game/comfyvn_runtime.rpy": writer.header + RUNTIME_RPY,
    }
    if any(image.layers is not None for image in layout.images):
        files[PARALLAX_FILE] = writer.header + PARALLAX_RPY
    if per_scene:
        files["game/script.rpy"] = writer.script_file(defaults)
        for scene_id, text in scene_texts.items():
            files[f"game/scenes/{layout.scene_labels[scene_id]}.rpy"] = writer.header + text
    else:
        files["game/script.rpy"] = writer.script_file(defaults, list(scene_texts.values()))
    return files


def _check_extra_path(path: str) -> str:
    clean = path.replace("\\", "/")
    parts = clean.split("/")
    if (
        clean.startswith("/")
        or not clean.startswith("game/")
        or any(p in ("", ".", "..") for p in parts)
        or "\x00" in clean
    ):
        raise ComfyVNError(
            f"contributed file {path!r} must be a relative path below game/",
            field="contributions.files",
            code="invalid_contribution",
        )
    return clean


def build_bundle(
    project: Project,
    options: ExportOptions,
    *,
    extras: Extras | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    generated_at: str | None = None,
    gate: Mapping[str, Any] | None = None,
    weather_bake: Mapping[str, Any] | None = None,
    report: ValidationReport | None = None,
    resolve_asset: Callable[[str], Mapping[str, Any] | None] | None = None,
) -> Bundle:
    """Validate ``project`` (422 when invalid) and build the master build, its POV forks and manifests.
    ``report`` is the project's validation report when it is already known (the project store's
    validation stamp matched the very bytes loaded); the project is not validated again.
    ``resolve_asset`` answers for asset-registry references (``asset:<uid>``) the project names."""
    if report is None:
        report = validate_project(project)
    raise_for_invalid(report)
    layout = build_layout(project, resolve_asset)
    defaults = start_variables(project)
    mode, menu, forks = _pov_plan(project, options)
    # The fonts are chosen before any text is written: pages are measured in the fonts the game uses.
    spec = gui_spec(*options.resolution)
    seen, code = collect_characters(project, extra=SHELL_TEXT)
    fonts = plan_fonts(
        seen,
        size=spec.text_size,
        header=HEADER.format(id=" ".join(str(project.id).split())),
        user_font=options.font,
        code_chars=code,
    )
    pager = Paginator(spec, fonts.metrics, code_font=fonts.code_font)
    meta_version = project.meta.get("version")
    version = meta_version if isinstance(meta_version, str) and meta_version else "1.0"
    texts: dict[str, str] = {}
    master = ScriptWriter(layout, pov=project.default_pov, pov_menu=menu, extras=extras, pager=pager)
    texts.update(_game_files(master, layout, defaults, options.per_scene, version, spec))
    cases: list[Testcase] = []
    if options.testcases:
        cases = derive_testcases(project, layout, pov_menu=menu, pov=project.default_pov, pager=pager)
        texts["game/tests.rpy"] = render_testcases(cases, master.header)
    for pov in forks:
        writer = ScriptWriter(layout, pov=pov, pov_menu=False, extras=extras, pager=pager)
        for path, text in _game_files(writer, layout, defaults, options.per_scene, version, spec, pov).items():
            texts[f"forks/{layout.pov_slugs[pov]}/{path}"] = text
    files: dict[str, bytes] = {path: text.encode("utf-8") for path, text in texts.items()}
    roots = [""] + [f"forks/{layout.pov_slugs[pov]}/" for pov in forks]
    read: dict[Path, bytes] = {}  # one file may be copied to several places (expressions, side image)
    for dest, source in layout.files.items():
        if source not in read:
            read[source] = source.read_bytes()
        data = read[source]
        for root in roots:
            files[f"{root}{dest}"] = data
    for path, data in fonts.files.items():
        for root in roots:
            files[f"{root}{path}"] = data
    # The interface pictures and the backdrop are drawn here: an export needs no Ren'Py SDK step.
    drawn = {**shell_images(spec), f"game/{BACKDROP_FILE}": backdrop_png(layout.backdrop_source, spec)}
    for path, data in drawn.items():
        for root in roots:
            files[f"{root}{path}"] = data
    for path, data in (extra_files or {}).items():
        clean = _check_extra_path(path)
        for root in roots:
            files[f"{root}{clean}"] = data
    files = dict(sorted(files.items()))
    warnings = (
        tuple(layout.warnings)
        + tuple(f"{i.document or ''} {i.path}: {i.message}".strip() for i in report.warnings)
        + fonts.warnings
    )
    export_manifest = _export_manifest(project, layout, files, mode, menu, forks, generated_at, gate)
    export_manifest["fonts"] = dict(fonts.report)
    label_manifest = _label_manifest(project, layout, mode, menu, forks, generated_at, weather_bake)
    manifests = {
        "export_manifest.json": manifest_bytes(export_manifest),
        "label_manifest.json": manifest_bytes(label_manifest),
    }
    return Bundle(files, manifests, export_manifest, label_manifest, warnings, tuple(cases))


def _pov_routes(project: Project, layout: Layout, menu: bool) -> list[dict[str, Any]]:
    routes = []
    for pov in project.povs:
        if not isinstance(pov.get("id"), str):
            continue
        pov_id = pov["id"]
        mentioned = [
            layout.scene_labels[sid]
            for sid, scene in project.scenes.items()
            if any(
                n.get("pov") == pov_id or any(pov_id in (c.get("visible_to") or ()) for c in n.get("choices") or ())
                for n in scene.get("nodes") or ()
            )
        ]
        routes.append(
            {
                "id": pov_id,
                "name": pov.get("name") or pov_id,
                "slug": layout.pov_slugs[pov_id],
                "entry_label": layout.pov_labels[pov_id] if menu else "start",
                "scene_labels": mentioned or list(layout.scene_labels.values()),
            }
        )
    return routes


def _layers_manifest(image: ImageDef, files: Mapping[str, bytes]) -> dict[str, Any] | None:
    """A layered background's record: its planes far to near (where they went, parallax, zoom, depth
    range) and what made them (model, provider) as its layers.json says; None for a flat background."""
    if image.layers is None:
        return None
    return {
        "folder": image.layers.folder,
        "layers_json_sha256": image.layers.layers_sha256,
        "planes": [
            {
                "file": plane.name,
                "path": f"game/{plane.dest}",
                "sha256": digest(files[f"game/{plane.dest}"]),
                "parallax": plane.parallax,
                "zoom": plane_zoom(plane.parallax),
                "depth": list(plane.depth),
            }
            for plane in image.layers.planes
        ],
        **image.layers.provenance,
    }


def _export_manifest(
    project: Project,
    layout: Layout,
    files: Mapping[str, bytes],
    mode: str,
    menu: bool,
    forks: list[str],
    generated_at: str | None,
    gate: Mapping[str, Any] | None,
) -> dict[str, Any]:
    def assets(kind: str) -> list[dict[str, Any]]:
        return [
            {
                "name": i.name,
                "source": i.source,
                "path": f"game/{i.file}" if i.file else None,
                "placeholder": i.file is None,
                "sha256": digest(files[f"game/{i.file}"]) if i.file else None,
                **({"asset": layout.asset_info[i.source]} if i.source in layout.asset_info else {}),
                **({"layers": _layers_manifest(i, files)} if kind == "background" else {}),
            }
            for i in layout.images
            if i.kind == kind
        ]

    rating = project.meta.get("metadata", {}).get("rating") if isinstance(project.meta.get("metadata"), dict) else None
    if gate is not None and gate.get("rating") is not None:
        rating = gate["rating"]  # the rating a gate resolved (the rating plugin's) wins over the declared one
    return {
        "format": "comfyvn-renpy-export",
        "version": 1,
        "project": {"id": project.id, "title": project.title, "source": project_source_name(project)},
        "timeline": None,
        "generated_at": generated_at,
        "output_dir": ".",
        "script": {
            "path": "game/script.rpy",
            "labels": [
                {
                    "scene_id": sid,
                    "label": layout.scene_labels[sid],
                    "title": scene.get("title") or sid,
                    "povs": sorted({str(n["pov"]) for n in scene.get("nodes") or () if n.get("pov")}),
                }
                for sid, scene in project.scenes.items()
            ],
        },
        "pov": {
            "mode": mode,
            "menu_enabled": menu,
            "default": project.default_pov,
            "routes": _pov_routes(project, layout, menu),
            "forks": [
                {"id": pov, "slug": layout.pov_slugs[pov], "path": f"forks/{layout.pov_slugs[pov]}"} for pov in forks
            ],
        },
        "variables": dict(layout.variables),
        "characters": [
            {"id": cid, "define": layout.char_vars[cid], "image_tag": layout.char_tags[cid]}
            for cid in project.characters
        ],
        "assets": {
            "backgrounds": assets("background"),
            "portraits": assets("portrait"),
            "audio": [
                {"source": src, "path": f"game/{dest}", "sha256": digest(files[f"game/{dest}"])}
                for src, dest in layout.audio.items()
                if dest
            ],
        },
        "missing_assets": {k: list(v) for k, v in layout.missing.items()},
        "rating": rating,
        "rating_gate": dict(gate) if gate is not None else None,
        "files": {path: digest(data) for path, data in files.items()},
    }


def _label_manifest(
    project: Project,
    layout: Layout,
    mode: str,
    menu: bool,
    forks: list[str],
    generated_at: str | None,
    weather_bake: Mapping[str, Any] | None,
) -> dict[str, Any]:
    pov_labels, battle_labels = [], []
    for (scene_id, node_id), label in layout.node_labels.items():
        node = layout.scene_nodes(scene_id)[node_id]
        povs = {str(node["pov"])} if node.get("pov") else set()
        for choice in node.get("choices") or ():
            visible = choice.get("visible_to")
            povs.update([visible] if isinstance(visible, str) else visible or ())
        if povs:
            pov_labels.append({"scene_id": scene_id, "node": node_id, "label": label, "pov_ids": sorted(povs)})
        battle = node.get("battle") or (node.get("data") or {}).get("battle")
        if battle is not None or node.get("type") == "battle":
            blob = json.dumps(battle, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
            battle_labels.append({"scene_id": scene_id, "node": node_id, "label": label, "hash": digest(blob)[:16]})
    return {
        "project": project.id,
        "generated_at": generated_at,
        "weather_bake": dict(weather_bake) if weather_bake is not None else {"requested": False, "contributors": []},
        "pov": {"mode": mode, "menu_enabled": menu, "default": project.default_pov, "forks": list(forks)},
        "scenes": [
            {
                "scene_id": sid,
                "label": layout.scene_labels[sid],
                "nodes": {n["id"]: layout.node_labels[(sid, n["id"])] for n in scene.get("nodes") or ()},
            }
            for sid, scene in project.scenes.items()
        ],
        "pov_labels": pov_labels,
        "battle_labels": battle_labels,
    }


# A previous export's manifest is small; anything larger was not written by an export.
MAX_MANIFEST_BYTES = 64 * 2**20


def output_targets(out: Path) -> dict[str, Path]:
    """The files a previous export wrote to ``out`` (from its export manifest): bundle path -> file.

    The manifest is only a hint: an entry that is not a relative path to a regular file inside ``out``
    once symlinks are resolved (absolute, with ``..``, or through a link leading out) is ignored, so a
    tampered manifest can never make an export read or delete anything outside its folder."""
    manifest_path = out / "export_manifest.json"
    try:
        if manifest_path.is_symlink() or not manifest_path.is_file():
            return {}
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            return {}
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    files = previous.get("files") if isinstance(previous, dict) else None
    root = out.resolve()
    found: dict[str, Path] = {}
    for path in files if isinstance(files, dict) else {}:
        if not isinstance(path, str) or not path or "\x00" in path or path.startswith(("/", "\\")):
            continue
        if ".." in path.split("/"):
            continue
        target = (root / path).resolve()
        if root in target.parents and target.is_file():
            found[path] = target
    return found


def output_files(out: Path) -> dict[str, bytes]:
    """`output_targets` with their current bytes."""
    return {path: target.read_bytes() for path, target in output_targets(out).items()}

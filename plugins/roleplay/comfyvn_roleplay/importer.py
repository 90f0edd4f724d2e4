"""Import orchestration: store the raw upload, detect its format, parse, convert, write the project.

Pure of HTTP and click: :func:`import_chat` takes paths and options and returns an
:class:`ImportResult`. The raw upload is copied (and hashed) before any parsing, so a failed or
partial import never loses what the user gave us.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import attrs
import orjson
from comfyvn.errors import ComfyVNError, TooLarge, Unprocessable
from comfyvn.paths import atomic_write_bytes, atomic_write_text, safe_join
from comfyvn_scenario.project import PROJECT_FILE, SCENES_DIR, Project, dump_json

from ._scene_writer import HEADER
from .backgrounds import chat_background
from .cards import PNG_SIGNATURE, png_text_chunks
from .cast import AssetFile, Cast, scan_sprite_folder
from .convert import Classifier, ImportOptions, SceneBuilder, background_path
from .formats import FORMAT_LABELS, iter_agnai, iter_tavernai, sniff_binary, sniff_json_shape
from .json_messages import iter_json_messages
from .lane import FastLane
from .lorebook import expand_macros, lorebook_to_dict, unique_books
from .models import Card, ChatHeader, Kind, Lorebook, Message, ParseIssue, SceneBreak
from .st_chat import iter_st_chat
from .text_logs import accept_speakers, iter_generic_log, iter_st_text, scan_speakers

__all__ = [
    "FORMATS",
    "ImportResult",
    "RawUpload",
    "SceneFiles",
    "detect_format",
    "import_chat",
    "project_slug",
    "refuse_binary",
    "store_raw",
    "write_assets",
]

FORMATS = ("st_jsonl", "st_txt", "json", "text", "tavernai_json", "agnai_json")
REPORT_FILE = "roleplay_import.json"
_PEEK_RECORDS = 200
_MAX_ISSUES_LISTED = 1000
Progress = Callable[[int], None]


@attrs.frozen
class RawUpload:
    """A stored upload: content-addressed copy under ``<data>/raw`` plus its sidecar."""

    path: Path
    sha256: str
    size: int
    filename: str


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name or "upload").name)[:80] or "upload"


def store_raw(raw_dir: Path, stream: IO[bytes] | bytes, filename: str, *, source: str = "upload") -> RawUpload:
    """Copy an upload into ``raw_dir`` while hashing it; the stored name starts with the hash."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = raw_dir / f".incoming-{_safe_name(filename)}-{id(stream)}"
    size = 0
    with tmp.open("wb") as out:
        if isinstance(stream, bytes):
            digest.update(stream)
            out.write(stream)
            size = len(stream)
        else:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    sha = digest.hexdigest()
    final = raw_dir / f"{sha[:16]}-{_safe_name(filename)}"
    tmp.replace(final)
    sidecar = {
        "filename": filename,
        "sha256": sha,
        "size": size,
        "source": source,
        "stored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(final.with_name(final.name + ".meta.json"), json.dumps(sidecar, indent=2) + "\n")
    return RawUpload(path=final, sha256=sha, size=size, filename=filename)


_MAX_CARD_BYTES = 64 << 20  # read a PNG whole only to say whether it is a card
_SHAPE_HEAD = 1 << 20  # enough of a pretty-printed export to see its top-level keys


def refuse_binary(path: Path, filename: str) -> None:
    """Raise Unprocessable (422, exit 2) naming what ``path`` is when it is not a text chat."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    what = sniff_binary(head)
    if what is None:
        return
    if head.startswith(PNG_SIGNATURE) and path.stat().st_size <= _MAX_CARD_BYTES:
        chunks = png_text_chunks(path.read_bytes())
        if "chara" in chunks or "ccv3" in chunks:
            what = "a PNG character card — pass it with --card, or make a project of it with `comfyvn import card`"
    name = Path(filename).name[:80] or "the upload"
    raise Unprocessable(f"{name} is not a chat: this is {what}", field="chat", code="not_a_chat")


def detect_format(path: Path, hint: str = "") -> str:
    """Guess the chat format from the first bytes (``hint`` "sillytavern" prefers ST's .txt export)."""
    with path.open("rb") as fh:
        head = fh.read(_SHAPE_HEAD)
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    shape = sniff_json_shape(text) if text[:1] in ("[", "{") else None
    if shape is not None:
        return shape
    # A message array opens with "[{" (or "[]"); "[21:04] Kai: …" is a timestamped log line.
    if re.match(r"\[\s*[{\]]", text):
        return "json"
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            if isinstance(json.loads(first), dict):
                return "st_jsonl"
        except ValueError:
            pass
        return "json"
    if hint == "sillytavern":
        return "st_txt"
    return "text"


@attrs.frozen
class ImportResult:
    """What an import produced: the project folder and an account of everything read."""

    import_id: str
    project_id: str
    title: str
    project_dir: Path
    raw: RawUpload
    source_format: str
    scene_ids: tuple[str, ...]
    stats: dict[str, int]
    issues: tuple[ParseIssue, ...]
    issues_total: int
    warnings: tuple[str, ...]
    #: An ``--out`` folder import that replaced the earlier import of the same chat in that folder.
    replaced: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON summary (the CLI's ``--json`` and the HTTP response body)."""
        project: dict[str, Any] = {"id": self.project_id, "title": self.title, "path": str(self.project_dir)}
        if self.replaced:
            project["replaced"] = True
        return {
            "import_id": self.import_id,
            "project": project,
            "raw": {
                "path": str(self.raw.path),
                "sha256": self.raw.sha256,
                "size": self.raw.size,
                "filename": self.raw.filename,
            },
            "source_format": self.source_format,
            "source_format_label": FORMAT_LABELS.get(self.source_format, self.source_format),
            "scenes": [{"id": s, "scene_uid": f"{self.import_id}:{s}"} for s in self.scene_ids],
            "stats": self.stats,
            "skipped": [attrs.asdict(i) for i in self.issues if i.severity == "skipped"],
            "warnings": [attrs.asdict(i) for i in self.issues if i.severity != "skipped"] + list(self.warnings),
            "issues_total": self.issues_total,
        }


def project_slug(text: str) -> str:
    """The readable part of an import id, from a title."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "chat"


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        yield from fh


def _records(
    fmt: str,
    path: Path,
    *,
    strict: bool,
    speakers: Sequence[str],
    user_names: Sequence[str],
    user_name: str,
    character_name: str,
    card_names: list[str],
    lane: FastLane,
) -> Iterator[ChatHeader | Message | SceneBreak | ParseIssue]:
    if fmt == "st_jsonl":

        def st_records() -> Iterator[ChatHeader | Message | ParseIssue]:
            # The file itself is iterated (no generator of lines between): the fast lane takes most
            # lines, so this loop's every step counts.
            with path.open("rb") as fh:
                yield from iter_st_chat(fh, strict=strict, take=lane.take)

        return st_records()
    if fmt == "tavernai_json":
        return iter_tavernai(path, user_name=user_names[0] if user_names else None, character_names=card_names)
    if fmt == "agnai_json":
        return iter_agnai(path, user_name=user_names[0] if user_names else None, character_names=card_names)
    if fmt == "json":
        fh = path.open("rb")

        def gen() -> Iterator[ChatHeader | Message | ParseIssue]:
            with fh:
                yield from iter_json_messages(fh, user_name=user_name, character_name=character_name)

        return gen()
    if fmt == "st_txt":
        counts = scan_speakers(_lines(path), block_starts_only=True)
        accepted = set(speakers) if len(speakers) >= 2 else accept_speakers(counts, speakers)
        return iter_st_text(_lines(path), accepted, user_names=user_names)
    counts = scan_speakers(_lines(path), block_starts_only=False)
    return iter_generic_log(_lines(path), accept_speakers(counts, speakers), user_names=user_names)


def _peek_user(fmt: str, path: Path) -> str | None:
    # Newer headers say "unused"; the persona's name is then only on the user's messages.
    if fmt != "st_jsonl":
        return None
    for n, record in enumerate(iter_st_chat(_lines(path))):
        if isinstance(record, Message) and record.kind is Kind.USER and record.name:
            return record.name
        if n > _PEEK_RECORDS:
            break
    return None


def import_chat(
    raw: RawUpload,
    out_dir: Path | None,
    *,
    processed_root: Path | None = None,
    options: ImportOptions,
    fmt: str = "",
    hint: str = "",
    cards: Sequence[Card] = (),
    world: Lorebook | None = None,
    sprites_dir: Path | None = None,
    classify: Classifier | None = None,
    progress: Progress | None = None,
    max_nodes: int | None = None,
    backgrounds_dir: Path | None = None,
) -> ImportResult:
    """Parse ``raw`` and write a project folder at ``out_dir``; scenes are written as they close.

    With ``out_dir`` None the project goes to ``processed_root/<import_id>`` (replacing an earlier
    import of the same upload and title).

    Raises ComfyVNError (422) when ``strict`` and a line is malformed, or when nothing usable was found;
    `TooLarge` (413 ``too_many_nodes``) as soon as the scenes closed so far hold more than ``max_nodes``
    nodes (None: no limit). The chat's background is copied from ``backgrounds_dir`` (SillyTavern's
    backgrounds folder) when it is there; a warning says when the project lacks it.
    """
    refuse_binary(raw.path, raw.filename)
    fmt = fmt or detect_format(raw.path, hint)
    if fmt not in FORMATS:
        raise ComfyVNError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}", field="format")
    card_names = [c.name for c in cards]
    user_name = options.user_name or _peek_user(fmt, raw.path)
    speakers = [n for n in [*card_names, user_name] if n]
    lane = FastLane()
    records = _records(
        fmt,
        raw.path,
        strict=options.strict,
        speakers=speakers,
        user_names=[user_name] if user_name else [],
        user_name=user_name or "User",
        character_name=card_names[0] if card_names else "Assistant",
        card_names=card_names,
        lane=lane,
    )

    first = next(records, None)
    header = first if isinstance(first, ChatHeader) else None
    user_name = user_name or (header.user_name if header else None) or "User"
    main = (header.character_name if header else None) or (card_names[0] if card_names else "")
    dated = f"{main} — {header.create_date:%Y-%m-%d %H:%M}" if main and header and header.create_date else ""
    title = options.title or dated or main or Path(raw.filename).stem or "Imported chat"
    options = attrs.evolve(options, title=title)
    meta = header.metadata if header else {}
    sprites = scan_sprite_folder(sprites_dir, card_names or [main]) if sprites_dir else {}
    if sprites_dir and not sprites:
        raise Unprocessable(f"no sprite images found in {sprites_dir}", field="sprites")
    cast = Cast(user_name=user_name, cards=cards, sprite_files=sprites)
    background = background_path(meta.get("custom_background"))
    chat_bg, bg_warnings = chat_background(background, backgrounds_dir)
    bg_assets = [*cast.background_assets(), *chat_bg]
    if background is None and bg_assets:
        background = bg_assets[0].path
    narrator = meta.get("narrator_name") if isinstance(meta.get("narrator_name"), str) else None
    builder = SceneBuilder(
        options, cast, main_character=main, background=background, classify=classify, narrator_name=narrator
    )

    import_id = f"{project_slug(title)}-{raw.sha256[:10]}"
    project_id = import_id
    if out_dir is None:
        if processed_root is None:
            raise ValueError("import_chat needs out_dir or processed_root")
        out_dir = processed_root / import_id
        if out_dir.exists():
            shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    issues: list[ParseIssue] = []
    issues_total = 0

    def stream() -> Iterator[ChatHeader | Message | SceneBreak | ParseIssue]:
        if first is not None and header is None:
            yield first
        yield from records

    # Checked only when a scene closes (not per message): it overshoots by at most one scene's nodes.
    limit = sys.maxsize if max_nodes is None else max_nodes
    counts = builder.stats

    with SceneFiles(out_dir) as files:

        def write(scene: dict[str, Any]) -> None:
            if counts["nodes"] > limit:
                raise _too_many_nodes(limit)
            files.write(scene)

        lane.bind(builder, write, progress)
        for record in stream():
            if isinstance(record, ParseIssue):
                issues_total += 1
                if len(issues) < _MAX_ISSUES_LISTED:
                    issues.append(record)
                continue
            if isinstance(record, ChatHeader):
                continue
            for scene in builder.add(record):
                write(scene)
            if progress is not None and isinstance(record, Message):
                progress(record.line)
        for scene in builder.finish():
            write(scene)
    issues_total += len(builder.issues)
    issues.extend(builder.issues[: max(0, _MAX_ISSUES_LISTED - len(issues))])
    if not builder.scene_ids:
        raise Unprocessable(
            "no messages found: nothing to import" + _skipped_note(issues),
            field="chat",
            code="empty_chat",
            details={"skipped": [attrs.asdict(i) for i in issues[:20]]},
        )

    write_assets(out_dir, [*cast.assets, *bg_assets])

    roleplay_meta: dict[str, Any] = {
        "import_id": import_id,
        "source_format": fmt,
        "raw_sha256": raw.sha256,
        "raw_filename": raw.filename,
        "detail_level": options.detail_level,
        "participants": [
            *participants(cast),
            {"id": None, "name": meta.get("narrator_name") or "System", "role": "narrator"},
        ],
        "chat_metadata": meta,
    }
    if header is not None and header.create_date is not None:
        roleplay_meta["created"] = header.create_date.isoformat()
    if builder.ooc:
        # Out-of-character asides are not story; they are kept here, like the chat's own metadata.
        roleplay_meta["ooc"] = builder.ooc
    books, notes = unique_books([b for b in [world, *(c.character_book for c in cards)] if b is not None])
    if books:
        roleplay_meta["world"] = [lorebook_to_dict(expand_macros(b, user_name, main)) for b in books]
    document = {
        "id": project_id,
        "title": title,
        "start": builder.scene_ids[0],
        "characters": cast.characters,
        "metadata": {"roleplay": roleplay_meta},
    }
    write_project(out_dir, document, builder.scene_ids)
    result = ImportResult(
        import_id=import_id,
        project_id=project_id,
        title=title,
        project_dir=out_dir,
        raw=raw,
        source_format=fmt,
        scene_ids=tuple(builder.scene_ids),
        stats={**builder.stats, "issues": issues_total},
        issues=tuple(issues),
        issues_total=issues_total,
        warnings=(*cast.warnings, *notes, *bg_warnings),
    )
    write_report(out_dir, result)
    return result


def _skipped_note(issues: Sequence[ParseIssue]) -> str:
    """Why a chat with no messages had none: the lines skipped as invalid (the first few named)."""
    skipped = [i for i in issues if i.severity == "skipped"]
    if not skipped:
        return ""
    named = "; ".join(f"line {i.line}: {i.message}" for i in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    count = "1 invalid line" if len(skipped) == 1 else f"{len(skipped)} invalid lines"
    return f" (skipped {count} — {named}{more})"


def _too_many_nodes(limit: int) -> TooLarge:
    return TooLarge(
        f"the chat makes more than {limit:,} story nodes, the most one project may hold; "
        "split the chat into smaller files and import each",
        field="chat",
        code="too_many_nodes",
    )


def write_project(out_dir: Path, document: dict[str, Any], scene_ids: Sequence[str]) -> None:
    """Write ``project.json`` for scenes already written. Call it last (as save_project does) so a
    reader never sees a scene it lists missing."""
    project = Project(meta=document, scenes={sid: {} for sid in scene_ids})
    atomic_write_bytes(out_dir / PROJECT_FILE, dump_json(project.document()).encode("utf-8", "replace"))


def write_report(folder: Path, result: ImportResult, *, files: dict[str, Any] | None = None) -> None:
    """Write the import report (``roleplay_import.json``) into ``folder``; ``files`` (the folder's
    manifest, `folders.file_manifest`) is recorded with it."""
    body = result.to_dict()
    if files is not None:
        body["files"] = files
    atomic_write_text(folder / REPORT_FILE, json.dumps(body, indent=2) + "\n")


def participants(cast: Cast) -> list[dict[str, Any]]:
    """The cast as the project metadata lists it: id, name and role of each character."""
    return [
        {"id": cid, "name": c["name"], "role": c.get("metadata", {}).get("role", "character")}
        for cid, c in cast.characters.items()
    ]


def scene_bytes(scene: dict[str, Any]) -> bytes:
    """A scene file's bytes, identical to ``comfyvn_scenario``'s ``dump_json`` (2-space indent,
    UTF-8, key order kept, final newline) but encoded by orjson: the stdlib's indenting encoder is
    pure Python and was half of a large import's time."""
    try:
        return orjson.dumps(scene, option=orjson.OPT_INDENT_2) + b"\n"
    except orjson.JSONEncodeError:
        # Only for values orjson refuses (lone surrogates, huge ints): the stdlib writes them all.
        return dump_json(scene).encode("utf-8", "replace")


def write_assets(out_dir: Path, assets: Sequence[AssetFile]) -> None:
    """Copy the project's asset files (card images, sprites, backgrounds) below ``out_dir``."""
    for asset in assets:
        target = safe_join(out_dir, asset.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if asset.data is not None:
            target.write_bytes(asset.data)
        elif asset.source is not None:
            shutil.copyfile(asset.source, target)


class SceneFiles:
    """Writes an import's scene files as they close: the first `HELPER_AFTER` in this process, the
    rest of a long import from a helper process (`_scene_writer`) while this one converts on.

    Creating a file is kernel work that can cost far more than writing it: 0.05 ms on this project's
    2-core test machine, 0.5 to 1.5 ms for minutes after many deletions (ext4 without a journal
    scans the recently deleted inodes each time), and a 100,000-message chat makes 1,334 files. A
    writer thread, measured first, made the import slower than writing in place: the importing
    thread lost more time to it than the files took. Leaving the ``with`` block waits for the
    helper and raises its first error as an `OSError` naming the file; an error inside the block
    stops the helper. Where no helper can be started, every file is written in this process.

    Plain writes, not atomic ones: the folder is new, and ``project.json`` (written last, atomically)
    is what makes the import visible; a crash leaves an unlisted folder, not a torn project.
    """

    HELPER_AFTER = 8

    def __init__(self, out_dir: Path, *, helper_after: int | None = None) -> None:
        self.folder = out_dir / SCENES_DIR
        self.helper_after = self.HELPER_AFTER if helper_after is None else helper_after
        self.written = 0
        self.helped = 0  # how many files the helper was given
        self._helper: subprocess.Popen[bytes] | None = None
        self._no_helper = False

    def __enter__(self) -> SceneFiles:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, scene: dict[str, Any]) -> None:
        name = f"{scene['id']}.json"
        data = scene_bytes(scene)
        if not self.written:
            self.folder.mkdir(exist_ok=True)
        self.written += 1
        if self.written > self.helper_after and self._helper is None and not self._no_helper:
            self._helper = self._start()
        helper = self._helper
        if helper is None or helper.stdin is None:
            (self.folder / name).write_bytes(data)
            return
        encoded = name.encode("ascii")
        try:
            helper.stdin.write(HEADER.pack(len(encoded), len(data)) + encoded)
            helper.stdin.write(data)
        except BrokenPipeError:
            self.close()  # raises the helper's error
            raise OSError(errno.EPIPE, "the scene file writer stopped", name) from None
        self.helped += 1

    def close(self) -> None:
        """Wait for the helper to write what it was given; raise its error."""
        helper, self._helper = self._helper, None
        if helper is None:
            return
        assert helper.stdin is not None and helper.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            helper.stdin.close()
        report = helper.stdout.read(200).decode("ascii", "replace")
        helper.stdout.close()
        if helper.wait() != 0:
            number, _, name = report.strip().partition("\t")
            code = int(number) if number.isdigit() else 0
            message = os.strerror(code) if code else f"the scene file writer failed: {name or 'no report'}"
            raise OSError(code or errno.EIO, message, name if code else None)

    def abort(self) -> None:
        """Stop the helper (the import failed: what it has not written does not matter)."""
        helper, self._helper = self._helper, None
        if helper is None:
            return
        helper.kill()
        helper.wait()
        for pipe in (helper.stdin, helper.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _start(self) -> subprocess.Popen[bytes] | None:
        script = Path(__file__).with_name("_scene_writer.py")
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-S", str(script), str(self.folder)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except (OSError, ValueError):  # no interpreter to start (an embedded Python): write them here
            self._no_helper = True
            return None

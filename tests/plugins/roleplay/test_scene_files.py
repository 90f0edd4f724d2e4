"""Scene files of a long import come from a helper process (importer.SceneFiles, _scene_writer)."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest
from comfyvn_roleplay._scene_writer import HEADER, run
from comfyvn_roleplay.convert import ImportOptions
from comfyvn_roleplay.importer import RawUpload, SceneFiles, import_chat, scene_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _chat(tmp_path: Path, messages: int) -> RawUpload:
    lines = [json.dumps({"user_name": "Jonah", "character_name": "Mira", "create_date": "2024-09-28@14h05m07s"})]
    for i in range(messages):
        user = i % 2 == 1
        text = f"*Step {i} on the pier.* Line {i} of the night.\n\nAnd {i} more words."
        lines.append(
            json.dumps(
                {
                    "name": "Jonah" if user else "Mira",
                    "is_user": user,
                    "is_system": False,
                    "send_date": f"2024-9-28@{(i // 3600) % 24:02d}h{(i // 60) % 60:02d}m{i % 60:02d}s",
                    "mes": text,
                }
            )
        )
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    return RawUpload(path=path, sha256="1" * 64, size=path.stat().st_size, filename="chat.jsonl")


def _scene(number: int) -> dict[str, object]:
    return {"id": f"scene_{number:04d}", "title": f"Scene {number}", "nodes": [{"id": "n0001", "text": "é" * number}]}


def test_a_long_import_writes_the_same_files_through_the_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _chat(tmp_path, 1200)  # 2 nodes a message, 150 a scene: 16 scenes
    helped: list[int] = []
    original_close = SceneFiles.close

    def close(self: SceneFiles) -> None:
        helped.append(self.helped)
        original_close(self)

    monkeypatch.setattr(SceneFiles, "close", close)
    import_chat(raw, tmp_path / "helped", options=ImportOptions())
    assert helped == [16 - SceneFiles.HELPER_AFTER]
    monkeypatch.setattr(SceneFiles, "HELPER_AFTER", 10**9)
    helped.clear()
    import_chat(raw, tmp_path / "alone", options=ImportOptions())
    assert helped == [0]
    written = sorted(p.name for p in (tmp_path / "helped" / "scenes").iterdir())
    assert written == [f"scene_{n:04d}.json" for n in range(1, 17)]
    for name in written:
        helped_bytes = (tmp_path / "helped" / "scenes" / name).read_bytes()
        assert helped_bytes == (tmp_path / "alone" / "scenes" / name).read_bytes()
        assert json.loads(helped_bytes)["id"] == name.removesuffix(".json")


def test_the_helpers_error_is_raised_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "scenes" / "scene_0004.json").mkdir(parents=True)  # a folder where a file must go
    files = SceneFiles(tmp_path, helper_after=1)
    with pytest.raises(OSError) as caught, files:
        for number in range(1, 60):
            files.write(_scene(number))
    assert caught.value.errno == errno.EISDIR
    assert caught.value.filename == "scene_0004.json"
    assert str(tmp_path) not in str(caught.value)
    # What came before the failing file was written, in order; nothing after it.
    assert (tmp_path / "scenes" / "scene_0003.json").read_bytes() == scene_bytes(_scene(3))
    assert not (tmp_path / "scenes" / "scene_0005.json").exists()


def test_an_error_in_the_import_stops_the_helper(tmp_path: Path) -> None:
    files = SceneFiles(tmp_path, helper_after=1)
    with pytest.raises(RuntimeError), files:
        files.write(_scene(1))
        files.write(_scene(2))
        helper = files._helper
        assert helper is not None and helper.poll() is None
        raise RuntimeError("the conversion failed")
    assert helper.returncode is not None


def test_a_short_import_starts_no_helper(tmp_path: Path) -> None:
    with SceneFiles(tmp_path) as files:
        for number in range(1, SceneFiles.HELPER_AFTER + 1):
            files.write(_scene(number))
        assert files._helper is None and files.helped == 0
    assert len(list((tmp_path / "scenes").iterdir())) == SceneFiles.HELPER_AFTER


def _frame(name: bytes, data: bytes) -> bytes:
    return HEADER.pack(len(name), len(data)) + name + data


def test_the_writer_refuses_names_that_are_not_scene_files(tmp_path: Path) -> None:
    report = io.BytesIO()
    stream = io.BytesIO(
        _frame(b"scene_0001.json", b"{}") + _frame(b"../escape.json", b"x") + _frame(b"scene_2.json", b"")
    )
    assert run(str(tmp_path), stream, report) == 1
    assert report.getvalue() == b"0\tnot a scene file name\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scene_0001.json"]
    assert not (tmp_path.parent / "escape.json").exists()


def test_the_writer_reports_a_frame_cut_short(tmp_path: Path) -> None:
    report = io.BytesIO()
    assert run(str(tmp_path), io.BytesIO(_frame(b"scene_0001.json", b"{}")[:-1]), report) == 1
    assert report.getvalue() == b"0\ta frame ended early\n"
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    frames=st.lists(
        st.tuples(
            st.one_of(st.builds(lambda n: b"scene_%04d.json" % n, st.integers(0, 99)), st.binary(max_size=20)),
            st.binary(max_size=64),
        ),
        max_size=6,
    ),
    tail=st.binary(max_size=12),
)
def test_any_input_writes_only_scene_files_and_ends_with_a_status(
    tmp_path_factory: pytest.TempPathFactory, frames: list[tuple[bytes, bytes]], tail: bytes
) -> None:
    folder = tmp_path_factory.mktemp("writer")
    report = io.BytesIO()
    status = run(str(folder), io.BytesIO(b"".join(_frame(n, d) for n, d in frames) + tail), report)
    assert status in (0, 1)
    assert (status == 0) == (report.getvalue() == b"")
    written = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(written) <= {n.decode("latin-1") for n, _ in frames}  # only names it was given
    assert all(name.startswith("scene_") and name.endswith(".json") for name in written)
    if status == 0:  # every frame was whole and named a scene file: each is written, the last copy wins
        assert written == {n.decode(): d for n, d in frames}

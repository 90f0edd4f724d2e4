"""``comfyvn import sillytavern`` as a ``roleplay.import`` job: on a fresh runtime root with no configuration
the import runs on the embedded Dask cluster, reports the share of lines read, and its record holds the
report; bad input keeps its exit code; ``--no-job`` imports in this process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import comfyvn_jobs.kinds
import pytest
from click.testing import CliRunner
from comfyvn import Kernel, create_kernel
from comfyvn.cli import make_cli
from comfyvn.errors import ComfyVNError
from comfyvn_jobs.records import JobRecords
from comfyvn_jobs.service import close_jobs
from comfyvn_roleplay.jobs import PROGRESS_EVERY, READ_SHARE, check_import_params
from comfyvn_scenario import ProjectStore
from rp_fixtures import EXAMPLES

CHAT = EXAMPLES / "Mira Vale - 2024-09-28@14h05m07s.jsonl"


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Callable[..., Kernel]]:
    """A kernel as ``comfyvn`` builds it on a fresh install: the installed entry points (scenario, roleplay,
    jobs) and nothing but ``COMFYVN_RUNTIME_ROOT`` (an empty tmp folder)."""
    made: list[Kernel] = []

    def factory(env: dict[str, str] | None = None) -> Kernel:
        base = {"COMFYVN_RUNTIME_ROOT": str(tmp_path / "runtime"), "COMFYVN_PLUGINS": "scenario,roleplay,jobs"}
        made.append(create_kernel(load_entrypoints=True, env={**base, **(env or {})}, strict=True))
        return made[-1]

    yield factory
    for kernel in made:
        close_jobs(kernel)


def _import(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), ["import", "sillytavern", *args], catch_exceptions=False)


def _records(kernel: Kernel) -> list[dict[str, Any]]:
    records = JobRecords(kernel.paths.plugin_dir("jobs") / "jobs.sqlite3")
    try:
        return records.list()
    finally:
        records.close()


def _big_chat(path: Path, copies: int) -> int:
    """The example chat with its messages repeated ``copies`` times; returns its number of lines."""
    header, *messages = CHAT.read_text(encoding="utf-8").splitlines()
    lines = [header, *(messages * copies)]
    path.write_text("\n".join(lines), encoding="utf-8")
    return len(lines)


def test_a_big_chat_imports_as_a_job_reporting_the_lines_read(
    fresh: Callable[..., Kernel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The jobs plugin drops a report that comes within PROGRESS_INTERVAL of the last with the same
    # message; the compiled import reads these 4,000 lines in less than that, so without this the
    # test would count the throttle's drops (the embedded cluster's worker runs in this process).
    monkeypatch.setattr(comfyvn_jobs.kinds, "PROGRESS_INTERVAL", 0.0)
    kernel = fresh()
    chat = tmp_path / "long.jsonl"
    lines = _big_chat(chat, copies=(2 * PROGRESS_EVERY) // 11 + 20)
    progress: list[tuple[float, str]] = []
    kernel.events.subscribe(
        lambda env: progress.append((env.payload["progress"], env.payload["message"])), events=["on_job_progress"]
    )
    result = _import(kernel, str(chat), "--card", str(EXAMPLES / "Mira Vale.png"), "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["stats"]["messages"] == lines - 1 and printed["project"]["store"] is True
    stored = ProjectStore.for_kernel(kernel).load(printed["project"]["id"])
    assert stored.version == 1 and len(stored.project.scenes) == printed["stats"]["scenes"]
    (record,) = _records(kernel)
    assert record["id"] == printed["job"]["id"] and record["kind"] == "roleplay.import"
    assert (record["status"], record["progress"]) == ("done", 1.0)
    assert record["params"]["chat"] == str(chat) and record["params"]["hint"] == "sillytavern"
    assert record["result"] == {k: v for k, v in printed.items() if k != "job"}
    # Reading from 0, a report every PROGRESS_EVERY lines at its share of the lines, then done.
    assert progress[0] == (0.0, "reading") and progress[-1] == (1.0, "done")
    shares = [fraction for fraction, message in progress if message == "reading"][1:]
    expected = [n * PROGRESS_EVERY / lines * READ_SHARE for n in range(1, len(shares) + 1)]
    assert len(shares) >= 2 and shares == pytest.approx(expected, abs=1e-3)


def test_human_output_names_the_job_and_no_job_imports_here(fresh: Callable[..., Kernel], tmp_path: Path) -> None:
    kernel = fresh()
    result = _import(kernel, str(CHAT), "--out", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    (record,) = _records(kernel)
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("imported 11 messages into ") and lines[0].endswith(f"-> {tmp_path / 'p'}")
    assert lines[-1].startswith(f"job {record['id']} done (") and (tmp_path / "p" / "project.json").is_file()
    here = _import(kernel, str(CHAT), "--out", str(tmp_path / "q"), "--no-job", "--json")
    assert here.exit_code == 0 and "job" not in json.loads(here.stdout), here.output
    assert len(_records(kernel)) == 1


def test_bad_input_in_the_job_exits_2_in_one_line(fresh: Callable[..., Kernel], tmp_path: Path) -> None:
    kernel = fresh()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "A", "mes": "x"}\nnot json')
    strict = _import(kernel, str(bad), "--out", str(tmp_path / "r"), "--strict", "--no-progress")
    assert strict.exit_code == 2 and "line 2" in strict.stderr, strict.output
    assert [line for line in strict.stderr.splitlines() if line.startswith("error: job ")] == [strict.stderr.strip()]
    (record,) = _records(kernel)
    assert record["status"] == "failed" and record["error"]["type"] in ("Invalid", "Unprocessable")
    assert not (tmp_path / "r").exists()


def test_params_are_checked(tmp_path: Path) -> None:
    chat = str(tmp_path / "c.jsonl")
    assert check_import_params({"chat": chat})["options"] == {}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"chat": "c.jsonl"}, "chat"),
        ({"chat": chat, "cards": ["card.png"]}, "cards[0]"),
        ({"chat": chat, "out": "proj"}, "out"),
        ({"chat": chat, "hint": "discord"}, "hint"),
        ({"chat": chat, "options": {"colour": "red"}}, "options.colour"),
        ({"chat": chat, "options": {"ooc": "shout"}}, "ooc"),
        ({"chat": chat, "extra": 1}, "extra"),
    ]
    for params, field in cases:
        with pytest.raises(ComfyVNError) as caught:
            check_import_params(params)
        assert caught.value.field == field, (params, caught.value.field)

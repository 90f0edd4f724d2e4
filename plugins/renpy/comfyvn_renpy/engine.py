"""The real Ren'Py engine: find it, lint a project, run its testcases, call the SDK's distribute step.

Debian's ``renpy`` 8.0.3 runs under ``/usr/bin/python3`` with our ``renpy_site/sitecustomize.py`` on
PYTHONPATH (it fixes the Python 3.11 AST crash; see that file). An SDK folder runs its own ``renpy.sh``.
Every run happens on a copy, because Ren'Py writes caches, logs and saves into the project.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["DEBIAN_LAUNCHER", "SITE_DIR", "Engine", "LintResult", "RunResult", "find_engine"]

DEBIAN_LAUNCHER = Path("/usr/games/renpy")
SITE_DIR = Path(__file__).resolve().parent / "renpy_site"
_PROBLEM = re.compile(r"^game/.+?\.rpy:\d+ ")


@attrs.frozen
class RunResult:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    def to_wire(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class LintResult:
    """``ok`` only when lint exited 0 with ``--error-code`` and reported no problem line."""

    ok: bool
    problems: tuple[str, ...]
    run: RunResult

    def to_wire(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "returncode": self.run.returncode,
            "seconds": round(self.run.seconds, 3),
            "output": self.run.stdout[-4000:] + self.run.stderr[-4000:],
        }


@attrs.frozen
class Engine:
    """How to start one Ren'Py installation: ``argv`` prefix plus extra environment."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    source: str
    launcher_dir: Path | None = None

    def command(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def environment(self, video: str = "dummy", home: Path | None = None) -> dict[str, str]:
        """The engine's environment: ours plus its own, no real display or audio, and with ``home`` as HOME
        (and the XDG folders below it), since Ren'Py keeps saves and persistent data in ``$HOME/.renpy``."""
        env = {**os.environ, **self.env, "SDL_VIDEODRIVER": video, "SDL_AUDIODRIVER": "dummy"}
        if "PYTHONPATH" in self.env and os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = f"{self.env['PYTHONPATH']}{os.pathsep}{os.environ['PYTHONPATH']}"
        if home is not None:
            env["HOME"] = str(home)
            for name, sub in (
                ("XDG_CONFIG_HOME", ".config"),
                ("XDG_DATA_HOME", ".local/share"),
                ("XDG_CACHE_HOME", ".cache"),
            ):
                env[name] = str(home / sub)
        return env

    def run(self, args: Sequence[str], *, timeout: float, video: str = "dummy", cwd: Path | None = None) -> RunResult:
        """Run the engine with ``args``; ``timeout`` kills it (and reports ``timed_out``) instead of hanging.

        Each run gets a throwaway HOME, removed afterwards: what the engine keeps there (saves, persistent
        data, about 200 files a run) belongs to a check, not to the user's own Ren'Py folder."""
        command = self.command(*args)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="comfyvn-renpy-home-") as home:
            try:
                done = subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    errors="replace",
                    timeout=timeout,
                    env=self.environment(video, Path(home)),
                    cwd=cwd,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
                err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
                return RunResult(tuple(command), 124, out, err, time.perf_counter() - started, True)
        return RunResult(tuple(command), done.returncode, done.stdout, done.stderr, time.perf_counter() - started)

    def lint(self, project: Path, *, timeout: float = 300) -> LintResult:
        """``renpy <copy> lint --error-code``; problem lines and parse errors (``errors.txt``) fail it."""
        with tempfile.TemporaryDirectory(prefix="comfyvn-renpy-lint-") as tmp:
            copy = Path(tmp) / "project"
            shutil.copytree(project / "game", copy / "game")
            result = self.run([str(copy), "lint", "--error-code"], timeout=timeout)
            problems = [line.strip() for line in result.stdout.lstrip("\ufeff").splitlines() if _PROBLEM.match(line)]
            errors = copy / "errors.txt"
            if errors.is_file():
                problems.append(errors.read_text(encoding="utf-8", errors="replace").strip())
        ok = result.returncode == 0 and not problems and not result.timed_out
        return LintResult(ok, tuple(problems), result)

    def test(self, project: Path, testcase: str, *, timeout: float = 120) -> RunResult:
        """Run one ``testcase`` headless (offscreen OpenGL, no audio) on a copy of ``project``."""
        with tempfile.TemporaryDirectory(prefix="comfyvn-renpy-test-") as tmp:
            copy = Path(tmp) / "project"
            shutil.copytree(project / "game", copy / "game")
            return self.run([str(copy), "test", testcase], timeout=timeout, video="offscreen")

    def distribute(self, project: Path, destination: Path, *, timeout: float = 600) -> RunResult:
        """The launcher's ``distribute`` step (build packages) for ``project`` into ``destination``."""
        if self.launcher_dir is None:
            return RunResult(tuple(self.argv), 127, "", "this Ren'Py installation has no launcher folder", 0.0)
        destination.mkdir(parents=True, exist_ok=True)
        return self.run(
            [str(self.launcher_dir), "distribute", str(project), "--destination", str(destination)], timeout=timeout
        )


def _from_path(path: Path, source: str) -> Engine | None:
    if path.is_dir():
        for name in ("renpy.sh", "renpy.py"):
            if (path / name).is_file():
                return _from_path(path / name, source)
        return None
    if not path.is_file():
        return None
    launcher = path.parent / "launcher"
    launcher_dir = launcher if launcher.is_dir() else None
    if path.suffix == ".py" or path.resolve().suffix == ".py":
        # Debian's packaged engine: its own /usr/bin/python3 plus the 3.11 AST fix.
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
        real = path.resolve()
        launcher = real.parent / "launcher"
        return Engine(
            (python, str(path)), {"PYTHONPATH": str(SITE_DIR)}, source, launcher if launcher.is_dir() else None
        )
    return Engine((str(path),), {}, source, launcher_dir)


def find_engine(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Engine | None:
    """The engine to use: ``explicit`` (a launcher or SDK folder), else ``COMFYVN_RENPY_SDK``, else Debian's
    ``/usr/games/renpy``. None when none is installed."""
    env = os.environ if env is None else env
    if explicit:
        return _from_path(Path(explicit), "option")
    if sdk := env.get("COMFYVN_RENPY_SDK"):
        found = _from_path(Path(sdk), "COMFYVN_RENPY_SDK")
        if found is not None:
            return found
    if DEBIAN_LAUNCHER.exists():
        return _from_path(DEBIAN_LAUNCHER, "debian")
    return None

"""Developer sessions: ``nox -s tests`` (what CI runs), ``lint``, ``types``, ``renpy``, ``bench``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"


NOTO_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


COLLAB_JS = Path("tests/plugins/collab/js")


def _ensure_system(session: nox.Session) -> None:
    """The exporter's tests run the real Ren'Py 8 engine (Debian's ``renpy`` package) and ship CJK text in
    a subset of Debian's ``fonts-noto-cjk``; the web player's tests drive Debian's ``chromium`` through its
    ``chromium-driver``; the collaboration tests run the real JavaScript Yjs client on Debian's ``nodejs``
    (its npm packages come from ``npm``, see _ensure_collab_js); ``gcc`` compiles the roleplay import's
    hot modules and the scenario runner. All are installed through apt when missing."""
    missing = []
    if not (shutil.which("renpy") or os.path.exists("/usr/games/renpy")):
        missing.append("renpy")
    if not os.path.exists(NOTO_CJK):
        missing.append("fonts-noto-cjk")
    if not os.path.exists("/usr/bin/chromium"):
        missing.append("chromium")
    if not os.path.exists("/usr/bin/chromedriver"):
        missing.append("chromium-driver")
    if not os.path.exists("/usr/bin/node"):
        missing.append("nodejs")
    if not os.path.exists("/usr/bin/npm"):
        missing.append("npm")
    if not shutil.which("cc"):
        # The roleplay plugin's import lane and the scenario plugin's runner are compiled by Cython when
        # there is a C compiler (their setup.py); without one they install as Python, correct but slower.
        missing.append("gcc")
    if not missing:
        return
    if os.geteuid() != 0:
        session.error(f"missing Debian packages: run `sudo apt-get install -y {' '.join(missing)}` first")
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True)


def _ensure_collab_js(session: nox.Session) -> None:
    """The collaboration interop tests drive the real ``yjs`` + ``y-websocket`` npm packages, pinned by the
    committed package-lock.json: ``npm ci`` installs exactly those when node_modules is missing or older
    than the lock (npm ci starts from an empty node_modules, so it is skipped when nothing changed). npm
    writes node_modules/.package-lock.json last, so its age is the install's."""
    installed = COLLAB_JS / "node_modules" / ".package-lock.json"
    lock = COLLAB_JS / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    with session.chdir(COLLAB_JS):
        session.run("npm", "ci", "--no-audit", "--no-fund", external=True)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite against the real engines and clients (installs Ren'Py, Chromium and Node through
    apt, and the collaboration tests' npm packages, when missing)."""
    _ensure_system(session)
    _ensure_collab_js(session)
    session.install("-r", "requirements-test.txt")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff over everything, then the import contracts."""
    session.install("ruff", "-r", "requirements-test.txt")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("python", "-m", "pytest", "-q", "tests/test_import_contracts.py")


def _typed_packages() -> list[str]:
    """The kernel and every plugin's import package (plugins/*/comfyvn_*, plugins-contrib/*/comfyvn_*)."""
    found = sorted(
        str(p) for pattern in ("plugins/*/comfyvn_*", "plugins-contrib/*/comfyvn_*") for p in Path().glob(pattern)
    )
    return ["kernel/comfyvn", *found]


@nox.session(python="3.11")
def types(session: nox.Session) -> None:
    """mypy --strict (configured in pyproject.toml) on the kernel and every plugin."""
    session.install("mypy", "-r", "requirements-test.txt")
    session.run("mypy", *_typed_packages(), *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmarks (pytest-benchmark): each checks its target (mostly ratios against baselines measured
    in the same run, see tests/bench/bench_targets.py) and fails when it is missed."""
    _ensure_system(session)
    session.install("-r", "requirements-test.txt")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/bench",
        "--benchmark-enable",
        "--benchmark-only",
        "--benchmark-columns=min,median,mean,ops,rounds",
        # -rP prints what each passing benchmark printed (its figures and targets) without -s; a missed
        # target is a failed assert, so the session exits non-zero.
        "-rP",
        *session.posargs,
    )

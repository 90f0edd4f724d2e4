"""Structured logging: readable console on stderr, JSON lines in ``<logs>/comfyvn.log`` (mode 0600); configured
by the host, never at import time. Values under credential-like keys are redacted before any renderer, and
tracebacks never carry local variables (they held bearer tokens and webhook secrets)."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import structlog

__all__ = ["configure_logging", "redact"]

_SENSITIVE = re.compile(r"(secret|token|password|passphrase|api[_-]?key|authorization|cookie|credential)", re.I)
REDACTED = "***"


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask values whose key names a credential (``token``, ``api_key``…)."""
    return {
        k: REDACTED if _SENSITIVE.search(k) and v is not None and k != "event" else v for k, v in event_dict.items()
    }


class _PrivateFileHandler(logging.handlers.RotatingFileHandler):
    def _open(self) -> Any:  # every file it creates, rotated ones included, is the owner's alone
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(self.baseFilename, 0o600)  # a file made earlier with the umask's mode
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def configure_logging(logs_dir: Path | None, *, level: str | None = None, env: Mapping[str, str] | None = None) -> None:
    """Route structlog and stdlib logging to the console (readable) and a JSON-lines file."""
    env = os.environ if env is None else env
    numeric = logging.getLevelName((level or env.get("COMFYVN_LOG_LEVEL") or "WARNING").upper())
    numeric = numeric if isinstance(numeric, int) else logging.WARNING
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_comfyvn", False)]:
        root.removeHandler(handler)
        handler.close()
    meta = structlog.stdlib.ProcessorFormatter.remove_processors_meta
    console = structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    no_locals = structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))
    handlers: list[tuple[logging.Handler, int, list[Any]]] = [(logging.StreamHandler(), numeric, [meta, console])]
    if logs_dir is not None:
        try:
            logs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            file = _PrivateFileHandler(logs_dir / "comfyvn.log", maxBytes=10 * 2**20, backupCount=5, encoding="utf-8")
            handlers.append((file, min(numeric, logging.INFO), [meta, no_locals, structlog.processors.JSONRenderer()]))
        except OSError:
            pass  # an unwritable log folder must not stop the tool
    for handler, handler_level, renderers in handlers:
        handler.setLevel(handler_level)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(processors=renderers, foreign_pre_chain=shared))
        handler._comfyvn = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(min(level for _, level, _ in handlers))

"""Errors that cross the kernel/plugin boundary, named by meaning; the edges choose what each becomes (the server's
status table, the CLI's exit codes). A bare `ComfyVNError` is the caller's mistake, like `Invalid`."""

from __future__ import annotations

from typing import Any

__all__ = [
    "Blocked",
    "ComfyVNError",
    "Conflict",
    "FeatureDisabled",
    "Invalid",
    "NotFound",
    "OperationFailed",
    "PreconditionFailed",
    "TooLarge",
    "Unprocessable",
    "UpstreamError",
    "clip",
]


class ComfyVNError(Exception):
    """A client-side error with a stable machine ``code`` and, where known, the offending ``field``."""

    code: str = "invalid_request"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        # Bounded, because messages and fields may quote the input (a 50 MB flag name must not come back).
        message, field = clip(message, 400), None if field is None else clip(field, 200)
        super().__init__(message)
        self.message, self.field, self.details = message, field, details or {}
        self.code = code or self.code

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"code", "message", "field", **details}}``."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field, **self.details}}


def clip(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters (an ellipsis marks the cut), lone surrogates escaped: safe to quote."""
    safe = text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
    return safe if len(text) <= limit and len(safe) <= limit else safe[: limit - 1] + "…"


class Invalid(ComfyVNError):
    """The request or the arguments are malformed (a field of the wrong type, an unknown option)."""


class Unprocessable(ComfyVNError):
    """Well-formed input whose content cannot be used (not a chat, an invalid scene, a corrupt save)."""

    code = "unprocessable"


class TooLarge(ComfyVNError):
    """Input or work past a size, depth or count limit."""

    code = "too_large"


class Blocked(ComfyVNError):
    """An operation a gate refused (for instance an export blocked by a rating gate)."""

    code = "blocked"


class OperationFailed(ComfyVNError):
    """The input was fine but the operation failed (an engine missing or failing, a write refused)."""

    code = "operation_failed"


class UpstreamError(ComfyVNError):
    """A service we called (an LLM, ComfyUI) answered with something unusable."""

    code = "upstream_error"


class NotFound(ComfyVNError):
    """The named thing does not exist (a project, a save slot, a flag)."""

    code = "not_found"


class Conflict(ComfyVNError):
    """The request clashes with the current state (a duplicate, a stale choice)."""

    code = "conflict"


class PreconditionFailed(Conflict):
    """A conditional write named a version that is no longer the current one (HTTP ``If-Match``)."""

    code = "version_mismatch"


class FeatureDisabled(ComfyVNError):
    """A route or command needs a feature flag that is off."""

    code = "feature_disabled"

    def __init__(self, flag: str) -> None:
        super().__init__(
            f"feature {flag!r} is disabled; enable it with `comfyvn flags set {flag} on`",
            field=flag,
            details={"flag": flag},
        )
        self.flag = flag

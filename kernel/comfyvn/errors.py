"""Errors that cross the kernel/plugin boundary: a `ComfyVNError` is the caller's mistake. The server renders
it as ``{"error": {"code", "message", "field"}}`` with ``status``; the CLI prints one line, exits ``exit_code``."""

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
    "TooLarge",
    "Unprocessable",
    "UpstreamError",
]


class ComfyVNError(Exception):
    """A client-side error with a stable machine ``code`` and, where known, the offending ``field``."""

    status: int = 400
    code: str = "invalid_request"
    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        status: int | None = None,
        exit_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.field, self.details = message, field, details or {}
        self.code = code or self.code
        self.status = status or self.status
        self.exit_code = exit_code or self.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": {"code", "message", "field", **details}}``."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field, **self.details}}


class Invalid(ComfyVNError):
    """The request or the arguments are malformed (a field of the wrong type, an unknown option)."""


class Unprocessable(ComfyVNError):
    """Well-formed input whose content cannot be used (not a chat, an invalid scene, a corrupt save)."""

    status, code = 422, "unprocessable"


class TooLarge(ComfyVNError):
    """Input or work past a size, depth or count limit."""

    status, code = 413, "too_large"


class Blocked(ComfyVNError):
    """An operation a gate refused (for instance an export blocked by a rating gate)."""

    status, code, exit_code = 423, "blocked", 3


class OperationFailed(ComfyVNError):
    """The input was fine but the operation failed (an engine missing or failing, a write refused)."""

    status, code, exit_code = 500, "operation_failed", 1


class UpstreamError(ComfyVNError):
    """A service we called (an LLM, ComfyUI) answered with something unusable."""

    status, code, exit_code = 502, "upstream_error", 1


class NotFound(ComfyVNError):
    status, code = 404, "not_found"


class Conflict(ComfyVNError):
    status, code = 409, "conflict"


class FeatureDisabled(ComfyVNError):
    """A route or command needs a feature flag that is off (HTTP 403 ``feature_disabled``)."""

    status, code = 403, "feature_disabled"

    def __init__(self, flag: str) -> None:
        super().__init__(
            f"feature {flag!r} is disabled; enable it with `comfyvn flags set {flag} on`",
            field=flag,
            details={"flag": flag},
        )
        self.flag = flag

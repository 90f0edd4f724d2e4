"""Errors that cross the kernel/plugin boundary: a `ComfyVNError` is the caller's mistake. The server renders
it as ``{"error": {"code", "message", "field"}}`` with ``status``; the CLI prints one line, exits ``exit_code``."""

from __future__ import annotations

from typing import Any

__all__ = ["ComfyVNError", "Conflict", "FeatureDisabled", "NotFound"]


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

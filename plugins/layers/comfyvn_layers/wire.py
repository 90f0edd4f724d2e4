"""Request shapes of the layers routes, structured by the shared strict converter (`comfyvn.wire.parse_request`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from comfyvn.errors import Invalid

__all__ = ["FORM_FIELDS", "SplitRequest", "form_options"]

FORM_FIELDS = frozenset({"file", "planes", "method", "device", "feather"})


@attrs.frozen
class SplitRequest:
    """``POST /api/layers/split`` as JSON: ``asset`` (an asset uid) or ``project`` + ``background`` (a path
    inside the store project), and the split's options (the job kind checks their values)."""

    asset: str | None = None
    project: str | None = None
    background: str | None = None
    planes: int | None = None
    method: str | None = None
    device: str | None = None
    feather: int | None = None

    def params(self) -> dict[str, Any]:
        """The ``layers.split`` job params this request asks for."""
        if self.asset is not None and self.project is None and self.background is None:
            source: dict[str, Any] = {"asset": self.asset}
        elif self.asset is None and self.project is not None and self.background is not None:
            source = {"project": self.project, "background": self.background}
        else:
            raise Invalid(
                "name the picture with asset (an asset uid) or with project and background, or upload it",
                field="asset" if self.asset is None else "project",
                code="invalid_request",
            )
        options = {"planes": self.planes, "method": self.method, "device": self.device, "feather": self.feather}
        return {"source": source, **{k: v for k, v in options.items() if v is not None}}


def _whole(value: str, field: str) -> int:
    if not value.strip().isdigit() or len(value.strip()) > 4:
        raise Invalid(f"{field} must be a whole number", field=field, code="invalid_request")
    return int(value)


def form_options(form: Mapping[str, Any]) -> dict[str, Any]:
    """The split options of a multipart upload (text fields) as job params, without the source."""
    options: dict[str, Any] = {}
    for name in ("planes", "method", "device", "feather"):
        value = form.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise Invalid(f"{name} must be a text field", field=name, code="invalid_request")
        options[name] = _whole(value, name) if name in ("planes", "feather") else value
    return options

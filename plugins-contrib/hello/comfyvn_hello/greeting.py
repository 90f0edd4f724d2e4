"""The domain: build a greeting. Pure — no HTTP, no click — so it is easy to test."""

from __future__ import annotations

from comfyvn.errors import ComfyVNError

MAX_NAME = 80


def greet(name: str, *, shout: bool = False) -> str:
    """Return a greeting for ``name``; ``shout`` upper-cases it."""
    name = name.strip()
    if not name:
        raise ComfyVNError("name must not be empty", field="name", code="invalid_name")
    if len(name) > MAX_NAME:
        raise ComfyVNError(f"name is longer than {MAX_NAME} characters", field="name", code="invalid_name")
    text = f"Hello, {name}!"
    return text.upper() if shout else text

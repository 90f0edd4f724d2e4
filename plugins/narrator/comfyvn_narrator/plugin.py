"""Hook implementations of the narrator plugin (wiring only)."""

from __future__ import annotations

"""The viewer plugin's wiring: both flags declared on by default, the thumbnail event with a payload schema."""

from __future__ import annotations

from collections.abc import Callable

import comfyvn_viewer.plugin as viewer_plugin
import pytest
from comfyvn import Kernel

KernelFactory = Callable[..., Kernel]


@pytest.mark.parametrize("flag", ["enable_viewer_webmode", "enable_mini_vn"])
def test_the_flags_are_declared_on_by_default(make_kernel: KernelFactory, flag: str) -> None:
    state = make_kernel(viewer_plugin).flags.get(flag)
    assert (state.value, state.source, state.spec.default) == (True, "default", True)


def test_the_thumbnail_event_is_declared_with_a_schema(make_kernel: KernelFactory) -> None:
    spec = make_kernel(viewer_plugin).events.spec("on_thumbnail_captured")
    assert spec is not None and spec.schema is not None and spec.description
    assert "mini_digest" in spec.schema["required"]

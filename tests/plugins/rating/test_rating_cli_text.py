"""``comfyvn rating classify`` rates its argument as text unless it names an existing project, and refuses an
empty one; acknowledging a token twice says who acknowledged it first instead of silently dropping notes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from comfyvn import Kernel
from comfyvn.cli import make_cli


def _cli(kernel: Kernel, *args: str) -> Any:
    return CliRunner().invoke(make_cli(kernel), list(args), obj=kernel)


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_is_refused_not_taken_for_a_folder(rating_kernel: Callable[..., Kernel], text: str) -> None:
    result = _cli(rating_kernel(), "rating", "classify", text)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: nothing to rate") and "project.json" not in result.stderr


def test_text_that_is_no_path_is_rated_as_text(rating_kernel: Callable[..., Kernel]) -> None:
    result = _cli(rating_kernel(), "rating", "classify", "he draws a weapon", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rating"]["rating"] == "M"


def test_a_second_ack_says_it_was_already_acknowledged(rating_kernel: Callable[..., Kernel]) -> None:
    kernel = rating_kernel()
    token = json.loads(_cli(kernel, "rating", "classify", "he draws a weapon", "--json").stdout)["ack_token"]
    first = _cli(kernel, "rating", "ack", token, "--user", "ana", "--notes", "fine")
    assert first.exit_code == 0 and first.stdout.startswith("acknowledged ")
    again = _cli(kernel, "rating", "ack", token, "--user", "bo", "--notes", "again")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith(f"{token} was already acknowledged by ana at ")
    assert "--user and --notes were not recorded" in again.stdout
    entry = json.loads(_cli(kernel, "rating", "ack", token, "--json").stdout)
    assert entry["already_acknowledged"] is True and (entry["user"], entry["notes"]) == ("ana", "fine")

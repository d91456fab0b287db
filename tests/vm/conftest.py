"""Shared fixtures for the bench.vm tests: profile files written to a temp dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

BASE_PROFILE = """\
name = "{name}"
description = "test profile"
firmware = "seabios"
machine = "pc"
vcpus = 2
memory_mib = 1024
vcpu_pins = ["0", "1"]
emulator_pin = "0-1"
cpu_mode = "maximum"
accel = "tcg"
guest_target_cpu = 1
guest_generator_cpu = 0
"""


@pytest.fixture
def write_profile(tmp_path: Path) -> Callable[..., Path]:
    """Write a profile TOML (BASE_PROFILE with `replace` applied and `extra` appended); returns its path."""

    def write(
        name: str = "t", *, extra: str = "", replace: dict[str, str] | None = None, body: str | None = None
    ) -> Path:
        text = BASE_PROFILE.format(name=name) if body is None else body
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / "profiles" / f"{name}.toml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text + extra)
        return path

    return write

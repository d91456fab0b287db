"""The report in a real browser: headless Chromium without network renders every figure (plotly.js inline)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from bench.report.build import build_report
from tests.report.synth import add_vm_profile, copy_run
from tests.report.test_report import figure_ids

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package `chromium`, listed in deps/apt-packages.txt)",
)


def render(report: Path, profile_dir: Path) -> str:
    """The DOM after the page's scripts ran, loaded with every network request failing."""
    assert CHROMIUM is not None
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile_dir}",
        # Nothing may load from the network: a dead proxy and a resolver that finds no host.
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=10000",
        "--dump-dom",
        report.as_uri(),
    ]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        out, _ = process.communicate(timeout=120)
    finally:
        # Chromium's helper processes share its session: end them all, by its process group only.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 0 or out, "chromium produced no DOM"
    return out.decode("utf-8", "replace")


def rendered_figures(dom: str) -> dict[str, bool]:
    """Plot div id -> whether plotly drew an SVG inside it (each plot sits in its own <figure>)."""
    found = {}
    for match in re.finditer(r'<div id="(fig-[a-z0-9-]+)" class="[^"]*plotly-graph-div', dom):
        end = dom.find("</figure>", match.end())
        found[match.group(1)] = 'class="main-svg"' in dom[match.end() : end]
    return found


def check(report: Path, profile_dir: Path) -> list[str]:
    expected = figure_ids(report.read_text())
    figures = rendered_figures(render(report, profile_dir))
    assert sorted(figures) == sorted(expected)
    assert all(figures.values()), [k for k, v in figures.items() if not v]
    return expected


def test_every_figure_renders_offline(real_run: Path, tmp_path: Path) -> None:
    report = build_report(copy_run(real_run, tmp_path / real_run.name))
    rendered = check(report, tmp_path / "chromium")
    # the native engine's capacity, latency under load and spectra; the python engine's figures; the floor
    native = {"fig-capacity-getbook", "fig-load-latency-getbook", "fig-spectrum-native-getbook"}
    assert native <= set(rendered)
    assert len(rendered) == 8


def test_vm_figures_render_offline(real_run: Path, tmp_path: Path) -> None:
    run = copy_run(real_run, tmp_path / real_run.name)
    add_vm_profile(run, "seabios-pinned", skipped="coreboot-pinned")
    expected = check(build_report(run), tmp_path / "chromium")
    assert "fig-boot-phases" in expected and "fig-vm-profiles-mixed" in expected

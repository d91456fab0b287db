"""bench report on a real run: outputs, byte-identical rebuilds (API and CLI), offline HTML, escaping."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report.build import build_report
from tests.report.synth import copy_run

REPO = Path(__file__).resolve().parents[2]
FIGURES = {
    "fig-capacity-getbook",
    "fig-load-latency-getbook",
    "fig-spectrum-native-getbook",
    "fig-throughput-latency-mixed",
    "fig-wire-bytes-mixed",
    "fig-cpu-mixed",
    "fig-streaming-mixed",
    "fig-floor-mixed",
}
PLOTLY_BANNER = re.compile(r"\* plotly\.js v\d")


def figure_ids(document: str) -> list[str]:
    match = re.search(r'<meta name="report-figures" content="([^"]*)">', document)
    assert match is not None
    return match.group(1).split()


def without_plotly_js(document: str) -> str:
    """The document minus the inlined plotly.js bundle (it holds URL strings in code never run here)."""
    start = document.index('<script type="text/javascript">/**')
    end = document.index("</script>", start)
    return document[:start] + document[end:]


@pytest.fixture(scope="module")
def report(real_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = copy_run(real_run, tmp_path_factory.mktemp("built") / real_run.name)
    return build_report(run)


def test_writes_report_and_tidy_tables(report: Path) -> None:
    assert report.name == "report.html"
    assert (report.parent / "tidy.csv").stat().st_size > 0
    assert (report.parent / "tidy.parquet").stat().st_size > 0
    document = report.read_text()
    assert "could not be built" not in document
    for section in (
        "verdicts",
        "claims",
        "noise",
        "capacity",
        "load-latency",
        "counters",
        "spectra",
        "throughput",
        "wire",
        "cpu",
        "streaming",
        "floor",
        "failures",
        "manifest",
    ):
        assert f'<section id="{section}">' in document
    assert '<section id="virtualization">' not in document  # a host-only run has no VM section


def test_figures_have_fixed_ids(report: Path) -> None:
    document = report.read_text()
    assert set(figure_ids(document)) == FIGURES
    assert sorted(re.findall(r'id="(fig-[a-z0-9-]+)" class="plotly-graph-div"', document)) == sorted(FIGURES)


def test_rebuild_is_byte_identical(report: Path) -> None:
    first = report.read_bytes()
    assert build_report(report.parent).read_bytes() == first


def test_cli_rebuild_is_byte_identical(report: Path) -> None:
    """`bench report <run_id> --results-dir` in a new interpreter (another hash seed): the same bytes."""
    first = report.read_bytes()
    argv = [
        sys.executable,
        "-m",
        "bench.cli",
        "report",
        report.parent.name,
        "--results-dir",
        str(report.parent.parent),
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == report
    assert report.read_bytes() == first


def test_plotly_js_is_inlined_exactly_once(report: Path) -> None:
    document = report.read_text()
    assert len(PLOTLY_BANNER.findall(document)) == 1
    assert document.count("<script") == 1 + len(FIGURES)  # the bundle, then one newPlot per figure
    assert "<script src" not in document


def test_nothing_would_be_fetched(report: Path) -> None:
    document = report.read_text()
    for pattern in (
        r"<script[^>]+src=",
        r"<link\b",
        r"<img\b",
        r"<iframe\b",
        r"@import",
        r"url\(\s*['\"]?https?:",
        r"src\s*=\s*['\"]?(https?:)?//",
    ):
        assert not re.search(pattern, document, re.IGNORECASE), pattern
    # Outside the plotly.js bundle there is no URL at all. Inside it, URLs only appear in code this report
    # never runs: map tiles and styles, and the plotly.com logo link of the modebar (displaylogo=False).
    assert not re.search(r"https?://|src\s*=|href\s*=\s*\"(?!#)", without_plotly_js(document), re.IGNORECASE)


def test_data_strings_are_escaped(real_run: Path, tmp_path: Path) -> None:
    run = copy_run(real_run, tmp_path / real_run.name)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["host"]["cpu_model"] = '<b onclick="x()">Evil & Co</b>'
    (run / "manifest.json").write_text(json.dumps(manifest))
    document = build_report(run).read_text()
    assert "<b onclick" not in document
    assert "&lt;b onclick=&quot;x()&quot;&gt;Evil &amp; Co&lt;/b&gt;" in document


def test_header_states_run_facts(report: Path) -> None:
    document = report.read_text()
    header = document[document.index('<header id="overview">') : document.index("</header>")]
    for text in (
        "Run",
        "Status",
        "Started",
        "Git commit",
        "Host CPU",
        "Kernel",
        "Native engine",
        "arms grpc, grpc-aa, rest",
        "Python engine",
        "arms grpc, rest-lean",
        "Repetitions",
        "Placement",
        "target CPU",
    ):
        assert text in header, text


def test_verdicts_explain_how_to_read_them(report: Path) -> None:
    document = report.read_text()
    assert "How to read the verdicts" in document
    assert "p &lt; 0.05" in document and "excludes 0" in document
    # Two repetitions per arm: the smallest p is 0.333, so no comparison can have a verdict - and each says
    # why (on a quiet host: "2 vs 2 repetitions cannot reach p < 0.05"; on a busy one, excluded windows).
    verdicts = document[document.index('<section id="verdicts">') :]
    verdicts = verdicts[: verdicts.index("</section>")]
    assert 'class="verdict-na"' in verdicts
    assert 'class="verdict-better"' not in verdicts and 'class="verdict-worse"' not in verdicts
    assert "cannot reach p &lt; 0.05" in verdicts or "assessable repetitions" in verdicts
    assert "grpc vs rest-lean" in document and "grpc vs rest" in document
    assert "server counters" in document.lower()


def test_streams_are_labelled_batch_equivalents(report: Path) -> None:
    document = report.read_text()
    assert "rest-lean (batch equivalent)" in document
    assert "grpc (stream)" in document

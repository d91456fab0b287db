"""`build_report(run_dir)`: the tidy table and one self-contained, deterministic report.html of a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bench.report.data import RunData, load_run
from bench.report.html import Section, no_data, page
from bench.report.sections.capacity import capacity_section, counters_section, load_latency_section
from bench.report.sections.claims import claims_section
from bench.report.sections.cpu import cpu_section
from bench.report.sections.failures import failures_section
from bench.report.sections.floor import floor_section
from bench.report.sections.manifest import manifest_section
from bench.report.sections.noise import noise_section
from bench.report.sections.overview import footer, header
from bench.report.sections.spectra import spectra_section
from bench.report.sections.streaming import streaming_section
from bench.report.sections.throughput import throughput_section
from bench.report.sections.topology import has_split, topology_section
from bench.report.sections.verdicts import verdicts_section
from bench.report.sections.virtualization import has_vm, vm_section
from bench.report.sections.wire import wire_section

__all__ = ["build_report", "render_report"]

REPORT_NAME = "report.html"

SectionBuilder = Callable[[RunData], Section]
SECTIONS: tuple[tuple[str, str, SectionBuilder], ...] = (
    ("verdicts", "Verdicts", verdicts_section),
    ("claims", "Claims checked", claims_section),
    ("noise", "A/A arm", noise_section),
    ("capacity", "Capacity", capacity_section),
    ("load-latency", "Latency under load", load_latency_section),
    ("counters", "Server counters", counters_section),
    ("topology", "Split topology", topology_section),
    ("spectra", "Latency spectra", spectra_section),
    ("throughput", "Throughput vs latency", throughput_section),
    ("wire", "Bytes on the wire", wire_section),
    ("cpu", "Server CPU per request", cpu_section),
    ("streaming", "Streaming", streaming_section),
    ("floor", "Loopback floor", floor_section),
    ("virtualization", "Virtualization", vm_section),
    ("failures", "Failures and cells", failures_section),
    ("manifest", "Manifest", manifest_section),
)


def _safe(anchor: str, title: str, builder: SectionBuilder, data: RunData) -> Section:
    """One section; raw files this code did not expect must cost that section, not the whole report."""
    try:
        return builder(data)
    except Exception as exc:
        return Section(
            anchor, title, no_data(f"This section could not be built: {type(exc).__name__}: {exc}")
        )


def render_report(data: RunData) -> str:
    """The report document of a loaded run."""
    from plotly.offline import get_plotlyjs

    sections = [
        _safe(anchor, title, builder, data)
        for anchor, title, builder in SECTIONS
        if (anchor != "virtualization" or has_vm(data)) and (anchor != "topology" or has_split(data))
    ]
    return page(
        title=f"Benchmark report {data.run_id}",
        brand="gRPC · REST · SOAP",
        subtitle=data.run_id,
        plotly_js=get_plotlyjs(),
        header=header(data),
        sections=sections,
        footer=footer(data),
    )


def build_report(run_dir: Path) -> Path:
    """Write run_dir/tidy.csv, tidy.parquet and report.html from the run's raw files; return report.html.

    Only raw files are read (manifest.json, plan.json, cells.jsonl, cells/*/attempt-*/{cell.json, ops.json},
    guests/*.json). The page works offline (plotly.js inlined once, nothing fetched), and rebuilding from the
    same raw files gives the same bytes: fixed plot div ids, sorted iteration, fixed bootstrap seeds, no
    timestamps of its own. docs/report.md describes each section.
    """
    from bench.analysis.tidy import write_tidy
    from bench.rawfiles import write_atomic

    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").exists():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no manifest.json)")
    tidy = write_tidy(run_dir)
    document = render_report(load_run(run_dir, tidy))
    path = run_dir / REPORT_NAME
    write_atomic(path, document.encode("utf-8"))
    return path

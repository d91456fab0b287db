"""The report's virtualization section: boot phases per firmware/profile, protocol figures per profile."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.analysis.verdicts import BY_KEY, headline_values
from bench.report.data import GuestInfo, RunData, Summary, summarize
from bench.report.figures import Bar, BootBar, bars_figure, boot_figure, figure_html
from bench.report.html import (
    Html,
    Row,
    Section,
    badge,
    fmt,
    fmt_ci,
    fmt_p,
    fmt_pct,
    join,
    marks,
    no_data,
    paragraph,
    table,
    tag,
)
from bench.report.sections.common import headline_format, headline_unit, slug
from bench.report.sections.floor import floor_summary

__all__ = ["has_vm", "vm_section"]

# (milestone key in the guest record, name of the phase that ends there), in boot order.
MILESTONES = (
    ("create_s", "QEMU start (libvirt)"),
    ("kernel_s", "firmware (to first kernel output)"),
    ("kernel_main_s", "kernel decompression"),
    ("init_s", "kernel boot (to init)"),
    ("ready_s", "initramfs to ready"),
)
PHASES = tuple(name for _, name in MILESTONES)


# Guests run the Python engine's cells only (a native generator on the host would measure the virtual
# network as much as the guest), so the per-profile figures are the Python engine's 1-user headlines.
_VM_HEADLINES = ("p50_1user", "ttfi", "cpu_1user")


def has_vm(data: RunData) -> bool:
    return bool(data.guests) or any(p != "local" for p in data.profiles)


def _firmware(data: RunData, profile: str) -> str:
    """The profile's firmware as the run recorded it in its guest records (the report reads raw files)."""
    for guest in data.guests:
        if guest.profile == profile and guest.record.get("firmware"):
            return str(guest.record["firmware"])
    return "not recorded"


def _median_milestones(records: list[dict[str, Any]]) -> dict[str, float]:
    """Median time of each boot milestone over the boots that saw it."""
    medians = {}
    for key, _ in MILESTONES:
        values = [float(r[key]) for r in records if isinstance(r.get(key), int | float)]
        if values:
            medians[key] = float(np.median(values))
    return medians


def _segments(milestones: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """Phase durations between consecutive milestones; a milestone no boot saw (e.g. qboot prints nothing
    before the kernel) folds its phase into the next one, named "a + b"."""
    segments = []
    previous = 0.0
    pending: list[str] = []
    for key, name in MILESTONES:
        if key not in milestones:
            pending.append(name)
            continue
        segments.append((" + ".join([*pending, name]), max(0.0, milestones[key] - previous)))
        previous = max(previous, milestones[key])
        pending = []
    return tuple(segments)


def _iqr(values: list[float]) -> str:
    if len(values) < 2:
        return "–"
    q1, q3 = np.percentile(values, [25, 75])
    return f"{q3 - q1:.3f} s"


def _booted(data: RunData) -> list[GuestInfo]:
    return [g for g in data.guests if not g.error and isinstance(g.record.get("ready_s"), int | float)]


def _boot_block(data: RunData) -> tuple[Html, list[str]]:
    booted = _booted(data)
    if not booted:
        return no_data("No guest reached the ready marker, so there are no boot phases to show."), []
    rows, bars = [], []
    for profile in sorted({g.profile for g in booted}):
        records = [g.record for g in booted if g.profile == profile]
        emulated = data.emulated_profile(profile)
        cells: list[object] = [
            join([profile, " ", badge("tcg") if emulated else ""]),
            _firmware(data, profile),
            len(records),
        ]
        for key in ("create_s", "firmware_s", "kernel_s", "kernel_main_s", "init_s", "ready_s", "stopped_s"):
            values = [float(r[key]) for r in records if isinstance(r.get(key), int | float)]
            cells.append(f"{np.median(values):.3f} s" if values else "–")
            if key in ("kernel_s", "ready_s"):
                cells.append(_iqr(values))
        rows.append(Row(cells, "marked" if emulated else ""))
        bars.append(BootBar(profile, _segments(_median_milestones(records)), emulated, len(records)))
    head = [
        "profile",
        "firmware",
        "boots",
        "QEMU running",
        "firmware output",
        "kernel output",
        "IQR",
        "Linux version",
        "init",
        "ready",
        "IQR",
        "stopped",
    ]
    caption = (
        "Host-clock milestones, seconds since the start request, median over boots (IQR when several). "
        "“firmware output” is the first byte the firmware printed (none for qboot). Source: guests/*.json."
    )
    # Stack in boot order; a merged phase "a + b" sits where its last phase ends.
    order = sorted(
        {n for b in bars for n, _ in b.segments}, key=lambda n: (PHASES.index(n.split(" + ")[-1]), n)
    )
    div = "fig-boot-phases"
    fig_caption = (
        "Boot phases per profile, between the median milestones of its boots (the bar ends at the ready "
        "marker). "
        "Emulated (TCG) boots are several times slower than KVM would be."
    )
    parts = [
        table(head, rows, numeric=range(2, len(head)), caption=caption),
        figure_html(boot_figure(bars, order), div, fig_caption),
    ]
    return join(parts), [div]


def _guests_table(data: RunData) -> Html:
    rows = []
    for g in data.guests:
        r = g.record
        status = g.error or r.get("reason") or "ok"
        rows.append(
            Row(
                [
                    g.name,
                    g.profile,
                    r.get("accel", "–"),
                    status,
                    len(r.get("cells", []) or []),
                    fmt(r.get("ready_s"), "s"),
                    fmt(r.get("guest_uptime_ready_s"), "s"),
                    fmt(r.get("host_steal_pct"), "%"),
                    fmt(r.get("wall_s"), "s"),
                    r.get("kernel_version", "–"),
                ],
                "failed" if g.error or r.get("reason") else "",
            )
        )
    head = [
        "guest",
        "profile",
        "accel",
        "outcome",
        "cells",
        "ready",
        "guest uptime at ready",
        "host steal",
        "wall",
        "guest kernel",
    ]
    return table(
        head, rows, numeric=(4, 5, 6, 7, 8), wrap=(3,), caption="One guest per block of cells of a profile."
    )


def _value_cell(s: Summary | None, key: str, emulated: bool) -> Html:
    if s is None:
        return Html("–")
    divisor, unit = headline_unit(key)  # the CI in the same unit as the median beside it
    ci = (
        "" if s.n < 2 or math.isnan(s.ci_low) else f" {fmt_ci(s.ci_low / divisor, s.ci_high / divisor, unit)}"
    )
    return join([headline_format(key, s.median), ci, f" (n={s.n})", " ", badge("tcg") if emulated else ""])


def _per_profile(data: RunData, scenario: str) -> tuple[Html, list[Bar]]:
    profiles = [p for p in data.profiles if any(c.profile == p and c.ok for c in data.cells.values())]
    rows: list[Row] = []
    bars: list[Bar] = []
    for key in _VM_HEADLINES:
        headline = BY_KEY[key]
        values = headline_values(data.tidy, headline)
        if values.empty:
            continue
        values = values[values["scenario"] == scenario]
        if headline.per_operation:
            values = values[values["operation"] == "GetBook"]
        label = headline.label + (" — GetBook" if headline.per_operation else "")
        for arm in sorted(values["arm"].unique()):
            cells: list[object] = [label, arm]
            for profile in profiles:
                sel = values[(values["arm"] == arm) & (values["profile"] == profile)]
                s = summarize(sel["value"].tolist())
                cells.append(_value_cell(s, key, data.emulated_profile(profile)))
                if s is not None and key in ("p50_1user", "cpu_1user"):
                    scale = 1 / 1000 if key == "p50_1user" else 1.0
                    bars.append(
                        Bar(
                            1 if key == "p50_1user" else 2,
                            arm,
                            profile,
                            s.median * scale,
                            (s.median - s.low) * scale,
                            (s.high - s.median) * scale,
                            marked=data.emulated_profile(profile),
                            hover=f"n={s.n}",
                        )
                    )
            rows.append(Row(cells))
    floors: list[object] = ["loopback floor p50", "tcp"]
    for profile in profiles:
        p50, _ = floor_summary(data, profile)
        tcg = badge("tcg") if data.emulated_profile(profile) else ""
        floors.append("–" if p50 is None else join([fmt(p50.median, "µs"), f" (n={p50.n}) ", tcg]))
    rows.append(Row(floors))
    head = ["metric", "arm", *profiles]
    caption = (
        "Median over repetitions, 95 % bootstrap CI of the median in brackets (none with one repetition). "
        "Same statistics as the host column; guests run fewer, shorter cells (see Manifest → options)."
    )
    return table(head, rows, numeric=range(2, len(head)), caption=caption), bars


def _profile_comparisons(data: RunData) -> Html:
    rows = []
    for r in data.comparisons:
        if r.profile_a == r.profile_b:
            continue
        cells = [
            r.label,
            r.scenario,
            r.profile_a,
            r.profile_b,
            r.operation,
            headline_format(r.headline, r.median_a),
            headline_format(r.headline, r.median_b),
            fmt_pct(r.rel_diff_pct),
            fmt_p(r.p_value),
            f"{r.n_a} / {r.n_b}",
            r.verdict,
            marks(gl=r.generator_limited, steal=r.flagged, tcg=r.emulated),
        ]
        rows.append(Row(cells, "marked" if r.emulated or r.generator_limited else ""))
    if not rows:
        return no_data("No profile-vs-host comparisons (needs the same client measured on both).")
    head = [
        "metric",
        "scenario",
        "profile",
        "vs",
        "operation",
        "median (profile)",
        "median (host)",
        "difference",
        "p",
        "n",
        "verdict",
        "marks",
    ]
    caption = (
        "Each client on a VM profile against the same client on the host (same verdict rules as the summary)."
    )
    return table(head, rows, numeric=(5, 6, 7, 8, 9), caption=caption)


def vm_section(data: RunData) -> Section:
    parts: list[Html] = [
        paragraph(
            "Guests boot the Debian kernel directly (libvirt <kernel>/<initrd>, no bootloader and no disk), "
            "but ",
            tag("b", "direct kernel boot still runs the chosen firmware"),
            ": SeaBIOS, OVMF or qboot initialises the "
            "machine and then loads the kernel QEMU hands it (fw_cfg), so the firmware phase differs between "
            "profiles "
            "even though no firmware reads a disk.",
        )
    ]
    emulated = [p for p in data.profiles if data.emulated_profile(p)]
    if emulated:
        parts.append(
            tag(
                "div",
                join(
                    [
                        tag("strong", "Emulated"),
                        "Profiles ",
                        ", ".join(emulated),
                        " ran under TCG "
                        "(software emulation: KVM guests do not start on this host). Every figure from them "
                        "is "
                        "labelled ",
                        badge("tcg"),
                        " and measures an emulated CPU, not a virtualized one.",
                    ]
                ),
                class_="banner",
            )
        )
    figures: list[str] = []
    parts.append(tag("h3", "Guests"))
    parts.append(_guests_table(data) if data.guests else no_data("No guest records (guests/*.json)."))
    parts.append(tag("h3", "Boot phases"))
    block, ids = _boot_block(data)
    parts.append(block)
    figures += ids
    parts.append(tag("h3", "Protocols per profile"))
    for scenario in data.scenarios:
        if len(data.scenarios) > 1:
            parts.append(tag("h4", f"Scenario {scenario}"))
        profile_table, bars = _per_profile(data, scenario)
        parts.append(profile_table)
        if bars:
            div = f"fig-vm-profiles-{slug(scenario)}"
            profiles = [p for p in data.profiles if any(b.series == p for b in bars)]
            palette = ("#2f5fa7", "#c0502e", "#2e9457", "#7b4fa8", "#8c6d1f", "#1f8c8c")
            fig = bars_figure(
                bars,
                series=profiles,
                series_names={p: p for p in profiles},
                colors={p: palette[i % len(palette)] for i, p in enumerate(profiles)},
                panel_titles=("GetBook p50, 1 user", "server CPU per request, 1 user"),
                y_titles=("ms", "µs"),
                marked_label="emulated (TCG)",
            )
            caption = (
                "Per arm, each profile next to the host; hatched bars are emulated. Error bars: range "
                "over repetitions."
            )
            parts.append(figure_html(fig, div, caption))
            figures.append(div)
    if not data.scenarios:
        parts.append(no_data("No load cells."))
    parts.append(tag("h3", "Profiles against the host"))
    parts.append(_profile_comparisons(data))
    return Section("virtualization", "Virtualization", join(parts), figures)

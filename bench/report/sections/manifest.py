"""Report section: the run's manifest (server models, limits, accelerators, versions, options)."""

from __future__ import annotations

from bench.report.data import RunData
from bench.report.html import (
    Html,
    Row,
    Section,
    as_json,
    details,
    join,
    no_data,
    paragraph,
    table,
    tag,
)


def manifest_section(data: RunData) -> Section:
    m = data.manifest
    parts: list[Html] = []
    models = m.get("server_models", {})
    if isinstance(models, dict) and models:
        parts.append(tag("h3", "Server models"))
        parts.append(
            table(["protocol", "server"], [Row([k, v]) for k, v in sorted(models.items())], wrap=(1,))
        )
    limits = m.get("limits", {})
    if isinstance(limits, dict) and limits:
        parts.append(tag("h3", "Limits (same for every target)"))
        parts.append(
            table(["limit", "value"], [Row([k, v]) for k, v in sorted(limits.items())], numeric=(1,))
        )
    accel = m.get("accel", {})
    if isinstance(accel, dict) and accel:
        parts.append(tag("h3", "Acceleration per VM profile"))
        rows = [
            Row(
                [
                    p,
                    a.get("accel", "?"),
                    "yes" if a.get("emulated") else "no",
                    a.get("reason", ""),
                    a.get("kernel_version", ""),
                ]
            )
            for p, a in sorted(accel.items())
            if isinstance(a, dict)
        ]
        parts.append(table(["profile", "accel", "emulated", "why", "guest kernel"], rows, wrap=(3,)))
    command = m.get("command_line")
    if isinstance(command, list):
        parts.append(paragraph("Command line: ", tag("code", " ".join(str(a) for a in command))))
    versions = m.get("library_versions", {})
    if isinstance(versions, dict) and versions:
        rows = [Row([k, v]) for k, v in sorted(versions.items())]
        parts.append(details(f"Library versions ({len(rows)} packages)", table(["package", "version"], rows)))
    parts.append(details("Options", tag("pre", as_json(m.get("options", {})), class_="json")))
    parts.append(details("The whole manifest.json", tag("pre", as_json(m), class_="json")))
    if not m:
        parts.insert(0, no_data("manifest.json is missing or unreadable."))
    return Section("manifest", "Manifest", join(parts))

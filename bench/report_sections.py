"""Report sections about the run and its verdicts: header, verdicts, claims, A/A noise, failures, manifest."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from bench.report_data import AARow, RunData
from bench.report_html import (
    Html,
    Row,
    Section,
    as_json,
    badge,
    cards,
    details,
    esc,
    facts,
    fmt,
    fmt_ci,
    fmt_p,
    fmt_pct,
    join,
    marks,
    no_data,
    note,
    paragraph,
    table,
    tag,
)
from bench.stats import ALPHA, HEADLINES, Comparison, Headline

__all__ = [
    "claims_section",
    "failures_section",
    "footer",
    "header",
    "headline_format",
    "manifest_section",
    "noise_section",
    "skipped_profiles",
    "verdicts_section",
]

_BY_KEY = {h.key: h for h in HEADLINES}


def headline_unit(key: str) -> tuple[float, str]:
    """(divisor, unit) to show a headline metric: latencies (µs in the tidy table) shown in ms."""
    if key == "throughput":
        return 1.0, "req/s"
    if key == "cpu":
        return 1.0, "µs/req"
    return 1000.0, "ms"


def headline_format(key: str, value: float | None) -> str:
    """A headline value with its unit."""
    divisor, unit = headline_unit(key)
    return fmt(None if value is None else value / divisor, unit)


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "unknown"
    return datetime.fromtimestamp(float(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _min_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided Mann-Whitney p two arms of these sizes can reach (complete separation)."""
    return min(1.0, 2 / math.comb(n_a + n_b, n_a)) if n_a and n_b else 1.0


# ---- header --------------------------------------------------------------------------------------------
def _placement(data: RunData) -> str:
    placement = data.options.get("placement", {})
    parts = []
    for profile in data.profiles:
        p = placement.get(profile, {}) if isinstance(placement, dict) else {}
        target, generator = p.get("target_cpu"), p.get("generator_cpu")
        parts.append(
            f"{profile}: target CPU {'-' if target is None else target} / "
            f"generator CPU {'-' if generator is None else generator}"
        )
    return "; ".join(parts) or "not recorded"


def _repetitions(data: RunData) -> str:
    by_profile = data.options.get("repeats_by_profile")
    if isinstance(by_profile, dict) and len(by_profile) > 1:
        return ", ".join(f"{p}: {n}" for p, n in by_profile.items())
    return str(data.options.get("repeats", "?"))


def _duration(manifest: dict[str, Any]) -> str:
    start, end = manifest.get("started_at"), manifest.get("ended_at")
    if isinstance(start, int | float) and isinstance(end, int | float):
        return fmt((end - start) / 60, "min")
    return "–"


def skipped_profiles(data: RunData) -> list[tuple[str, str]]:
    """(profile, reason) for guest blocks that never started (skipped profile, no libvirt, ...)."""
    return [(g.profile, g.error) for g in data.guests if g.error]


def _banner(data: RunData) -> Html:
    cells = list(data.cells.values())
    total = len(data.plan) or len(cells)
    failed = [c for c in cells if not c.ok]
    unfinished = sorted({str(s.get("cell_id")) for s in data.plan} - set(data.cells))
    items: list[Html] = []

    def item(kind: str, count: int, text: str) -> None:
        if count:
            items.append(tag("li", join([badge(kind, f"{count}") if kind else tag("b", count), " ", text])))

    item("failed", len(failed), f"of {total} cells failed (see Failures)")
    item("", len(unfinished), f"of {total} planned cells never finished (interrupted run?)")
    item(
        "tcg",
        sum(c.emulated for c in cells),
        "cells ran in software-emulated (TCG) guests: their figures are emulated, not virtualized",
    )
    item(
        "gl",
        sum(c.generator_limited and c.ok for c in cells),
        "cells were generator-limited in at least one "
        "window (load generator ≥ 90 % of its CPU): there the client, not the server, set the pace",
    )
    item(
        "steal",
        sum(c.flagged for c in cells),
        "cells stayed above the CPU-steal threshold after re-runs (flagged)",
    )
    item("", len(skipped_profiles(data)), "guest blocks did not start (skipped or failed profiles)")
    if not items:
        return tag(
            "div",
            join(
                [
                    tag("strong", "Clean run"),
                    f"All {total} cells measured; none failed, emulated, "
                    "generator-limited or flagged for steal.",
                ]
            ),
            class_="banner ok",
        )
    severe = bool(failed or unfinished)
    return tag(
        "div",
        join([tag("strong", "Read with care"), tag("ul", join(items))]),
        class_="banner bad" if severe else "banner",
    )


def header(data: RunData) -> Html:
    m = data.manifest
    host = m.get("host", {}) if isinstance(m.get("host"), dict) else {}
    commit = m.get("git_commit") or "unknown (no git checkout)"
    if m.get("git_dirty"):
        commit = f"{commit} (working tree had uncommitted changes)"
    items: list[tuple[str, object]] = [
        ("Run", Html(tag("code", data.run_id))),
        ("Status", m.get("status", "unknown")),
        ("Started", _when(m.get("started_at"))),
        ("Duration", _duration(m)),
        ("Git commit", commit),
        ("Host CPU", f"{host.get('cpu_model', '?')} · {host.get('cores', '?')} cores"),
        ("Kernel", host.get("kernel", "?")),
        ("Memory", fmt(host.get("memory_mib"), "MiB")),
        (
            "Python",
            f"{m.get('python', '?')} ({m.get('python_implementation', '?')}), "
            f"protobuf {m.get('protobuf_backend', '?')}",
        ),
        ("Clients", ", ".join(data.clients) or "none"),
        ("Scenarios", ", ".join(data.scenarios) or "none"),
        ("Profiles", ", ".join(data.profiles) or "none"),
        ("Repetitions", _repetitions(data)),
        ("Placement", _placement(data)),
        ("Seed", data.options.get("seed", "?")),
        ("Steal threshold", fmt(data.options.get("steal_threshold_pct"), "%", digits=2)),
    ]
    title = tag("h1", "gRPC vs REST vs SOAP — benchmark report")
    subtitle = tag("p", f"Run {data.run_id} · {_when(m.get('started_at'))}", class_="subtitle")
    return tag("header", join([title, subtitle, facts(items), _banner(data)]), id="overview")


# ---- verdicts ------------------------------------------------------------------------------------------
def _side(row: Comparison, client: str, headline: Headline) -> str:
    """better | worse | ns from `client`'s point of view (the row compares a with b)."""
    if row.verdict == "no significant difference":
        return "ns"
    a_better = row.verdict.endswith(headline.words[0])
    return "better" if a_better == (row.a == client) else "worse"


def _verdict_cell(row: Comparison) -> Html:
    headline = _BY_KEY.get(row.headline)
    side = "ns" if headline is None else _side(row, row.a, headline)
    return tag("span", row.verdict, class_=f"verdict-{side}")


def _how_to_read(data: RunData) -> Html:
    sizes = sorted({(r.n_a, r.n_b) for r in data.comparisons})
    if sizes:
        n_a, n_b = min(sizes)
        floor = _min_p(n_a, n_b)
        run_note = (
            f"In this run the smallest arms have n = {n_a} and {n_b} repetitions, so the smallest "
            f"possible p is {fmt_p(floor)}"
            + (
                " — below 0.05, so verdicts are possible."
                if floor < ALPHA
                else " — not below 0.05: no comparison in this run can reach a verdict."
            )
        )
    else:
        run_note = "This run has no pair of arms to compare."
    return tag(
        "div",
        join(
            [
                paragraph(
                    tag("b", "How to read the verdicts. "),
                    "Each row compares arm A with arm B over the "
                    "repetitions of the run (one value per repetition). A verdict other than “no significant "
                    "difference” needs both: a two-sided Mann-Whitney U test with p < 0.05 and a 95 % "
                    "percentile-bootstrap CI of the median difference (A − B, 2,000 resamples, fixed seed) "
                    "that excludes 0. The difference is shown relative to B’s median.",
                ),
                paragraph(
                    "With 5 repetitions per arm the smallest possible p is 0.008; with 4 it is 0.029; with 3 "
                    "or fewer it is at least 0.1, so fewer than 4 repetitions per arm can never give a "
                    "verdict. ",
                    run_note,
                ),
                paragraph(
                    "Marks: ",
                    badge("gl"),
                    " a window in one of the arms was generator-limited; ",
                    badge("steal"),
                    " a cell stayed above the CPU-steal threshold; ",
                    badge("tcg"),
                    " a guest ran under software emulation. A marked row may measure the client or the "
                    "hypervisor rather than the protocol.",
                ),
            ]
        ),
        class_="howto",
    )


def _scoreboard(cmp: list[Comparison]) -> Html:
    groups: dict[tuple[str, str, str, str, str], list[Comparison]] = {}
    for r in cmp:
        if r.profile_a == r.profile_b:
            groups.setdefault((r.headline, r.scenario, r.profile_a, r.a, r.b), []).append(r)
    rows = []
    for (key, scenario, profile, a, b), group in groups.items():
        headline = _BY_KEY[key]
        sides = Counter(_side(r, a, headline) for r in group)
        cells = [headline.label, f"{scenario} · {profile}", f"{a} vs {b}", sides["better"], sides["worse"]]
        rows.append(Row([*cells, sides["ns"], len(group)]))
    if not rows:
        return Html("")
    head = [
        "metric",
        "scenario · profile",
        "A vs B",
        "A better",
        "A worse",
        "no sig. difference",
        "comparisons",
    ]
    return table(
        head,
        rows,
        numeric=(3, 4, 5, 6),
        caption="Scoreboard: per metric and pair, how many operation "
        "comparisons went which way (“better” = faster, higher throughput or cheaper).",
    )


def _comparison_rows(cmp: list[Comparison], *, context: bool) -> list[Row]:
    rows: list[Row] = []
    for key in [h.key for h in HEADLINES]:
        group = [r for r in cmp if r.headline == key]
        if not group:
            continue
        rows.append(Row([_BY_KEY[key].label], "group"))
        for r in group:
            base = r.median_b
            low = 100 * r.ci_low / base if base else math.nan
            high = 100 * r.ci_high / base if base else math.nan
            where = f"{r.scenario} · {r.profile_a}" + (
                "" if r.profile_a == r.profile_b else f" vs {r.profile_b}"
            )
            flags = marks(gl=bool(r.generator_limited), steal=bool(r.flagged), tcg=bool(r.emulated))
            cells = [
                r.operation,
                f"{r.a} vs {r.b}",
                headline_format(key, r.median_a),
                headline_format(key, r.median_b),
                fmt_pct(r.rel_diff_pct),
                fmt_ci(low, high, pct=True),
                fmt_p(r.p_value),
                f"{r.n_a} / {r.n_b}",
                _verdict_cell(r),
                flags,
            ]
            marked = bool(r.generator_limited or r.flagged or r.emulated)
            rows.append(Row([where, *cells] if context else cells, "marked" if marked else ""))
    return rows


def verdicts_section(data: RunData) -> Section:
    cmp = data.comparisons
    parts: list[Html] = [_how_to_read(data)]
    if not cmp:
        parts.append(
            no_data(
                "No comparisons: a comparison needs two clients (or a VM profile and the host) with "
                "measured cells of the same scenario."
            )
        )
        return Section("verdicts", "Verdicts", join(parts))
    parts.append(_scoreboard(cmp))
    context = len({(r.scenario, r.profile_a, r.profile_b) for r in cmp}) > 1
    head = [
        "operation",
        "A vs B",
        "median A",
        "median B",
        "A vs B",
        "95 % CI",
        "p",
        "n (A / B)",
        "verdict",
        "marks",
    ]
    numeric: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    if context:
        head, numeric = ["scenario · profile", *head], tuple(i + 1 for i in numeric)
    parts.append(tag("h3", "All comparisons"))
    parts.append(
        table(
            head,
            _comparison_rows(cmp, context=context),
            numeric=numeric,
            caption="Medians over repetitions; A vs B = (median A − median B) / median B; the CI is the "
            "bootstrap CI of the median difference, relative to median B. Source: tidy table (cells/*/"
            "attempt-*/cell.json windows and ops.json summaries).",
        )
    )
    return Section("verdicts", "Verdicts", join(parts))


# ---- claims --------------------------------------------------------------------------------------------
def _pairs(data: RunData, left: str, right: str) -> list[tuple[str, str]]:
    """(client of protocol `left`, client of protocol `right`) pairs measured in this run."""
    protocol = {c.client: c.protocol for c in data.cells.values() if c.kind == "load"}
    lefts = [c for c in data.clients if protocol.get(c) == left]
    rights = [c for c in data.clients if protocol.get(c) == right]
    return [(a, b) for a in lefts for b in rights]


def _claim_verdict(better: int, worse: int, total: int) -> str:
    if total == 0:
        return "not measured"
    if better and worse:
        return "mixed"
    if better * 2 > total:
        return "supported"
    if worse * 2 > total:
        return "contradicted"
    return "not significant"


def _stat_claim(data: RunData, key: str, client: str, other: str) -> tuple[str, str]:
    """(verdict, evidence) for "`client` is better than `other` on headline `key`" over its comparisons."""
    headline = _BY_KEY[key]
    profile = data.main_profile
    rows = [
        r
        for r in data.comparisons
        if r.headline == key and r.profile_a == profile == r.profile_b and {r.a, r.b} == {client, other}
    ]
    if not rows:
        return "not measured", "no comparison rows"
    sides: dict[str, list[str]] = {"better": [], "worse": [], "ns": []}
    ratios = []
    for r in rows:
        sides[_side(r, client, headline)].append(r.operation)
        mine, theirs = (r.median_a, r.median_b) if r.a == client else (r.median_b, r.median_a)
        if theirs:
            ratios.append(100 * (mine - theirs) / theirs)
    total = len(rows)
    better_word, worse_word = headline.words
    parts = [
        f"{client} vs {other}: {better_word} in {len(sides['better'])} of {total}, {worse_word} in "
        f"{len(sides['worse'])}, no significant difference in {len(sides['ns'])}"
    ]
    if ratios:
        parts.append(f"median difference {fmt_pct(statistics.median(ratios))}")
    minority = "worse" if len(sides["better"]) >= len(sides["worse"]) else "better"
    if sides[minority] and total > 1:
        word = worse_word if minority == "worse" else better_word
        parts.append(f"{word}: {', '.join(sides[minority])}")
    if any(r.generator_limited or r.flagged or r.emulated for r in rows):
        parts.append("some rows marked (generator-limited / steal / emulated)")
    return _claim_verdict(len(sides["better"]), len(sides["worse"]), total), "; ".join(parts)


def _bytes_per_call(data: RunData) -> dict[tuple[str, str], float]:
    """(client, operation) -> median request + response bytes per call over repetitions (main profile)."""
    t = data.tidy
    if t.empty:
        return {}
    sel = t[(t["phase"] == "wire") & (t["profile"] == data.main_profile) & (t["status"] == "ok")]
    per_rep: dict[tuple[str, str], dict[int, float]] = {}
    for client, op, rep, value in zip(
        sel["client"], sel["operation"], sel["repetition"], sel["value"], strict=True
    ):
        reps = per_rep.setdefault((str(client), str(op)), {})
        reps[int(rep)] = reps.get(int(rep), 0.0) + float(value)  # request + response bytes of that repetition
    return {key: statistics.median(reps.values()) for key, reps in sorted(per_rep.items())}


def _bytes_claim(data: RunData, smaller: str, larger: str) -> tuple[str, str]:
    sizes = _bytes_per_call(data)
    ops = sorted({o for c, o in sizes if c == smaller} & {o for c, o in sizes if c == larger})
    if not ops:
        return "not measured", "no wire-bytes data for both clients"
    ratios = [sizes[(smaller, o)] / sizes[(larger, o)] for o in ops if sizes[(larger, o)]]
    fewer = [o for o in ops if sizes[(smaller, o)] < sizes[(larger, o)]]
    more = [o for o in ops if sizes[(smaller, o)] > sizes[(larger, o)]]
    evidence = (
        f"{smaller} / {larger} bytes per call (request + response): median ratio "
        f"{fmt(statistics.median(ratios) if ratios else None)}; smaller in {len(fewer)} of "
        f"{len(ops)} "
        f"operations"
    )
    if more:
        evidence += f"; larger in: {', '.join(more)}"
    return _claim_verdict(
        len(fewer), len(more), len(ops)
    ), evidence + " (byte counts are exact; no test needed)"


def _claim_rows(data: RunData) -> list[Row]:
    rows: list[Row] = []

    def add(claim: str, verdict: str, evidence: str, source: str) -> None:
        cls = "claim-" + {"not significant": "ns", "not measured": "not-measured"}.get(verdict, verdict)
        rows.append(Row([claim, Html(tag("span", verdict, class_=cls)), evidence, source]))

    stat_claims = [
        ("p50_1user", "gRPC has lower latency than {other}", "p50 latency, 1 user, per operation"),
        (
            "p99_open50",
            "gRPC has lower tail latency under load than {other}",
            "p99, open model, corrected, at 50 % of each client's own closed-model maximum (so at different "
            "absolute rates)",
        ),
        ("throughput", "gRPC has higher throughput than {other}", "max closed-model throughput"),
        (
            "ttfi",
            "gRPC streams deliver the first item sooner than {other}'s batch equivalents",
            "time to first item",
        ),
    ]
    for key, text, source in stat_claims:
        for other_protocol in ("rest", "soap"):
            pairs = _pairs(data, "grpc", other_protocol)
            if not pairs:
                add(
                    text.format(other=other_protocol.upper()),
                    "not measured",
                    "no such pair of clients in this run",
                    source,
                )
            for a, b in pairs:
                verdict, evidence = _stat_claim(data, key, a, b)
                add(text.format(other=f"{other_protocol.upper()} ({b})"), verdict, evidence, source)
    for a, b in _pairs(data, "grpc", "rest") or [("grpc", "rest")]:
        add("Protobuf messages are smaller than JSON", *_bytes_claim(data, a, b), "wire bytes per call")
    soap_pairs = _pairs(data, "soap", "grpc") + _pairs(data, "soap", "rest")
    for a, b in soap_pairs or [("soap", "grpc")]:
        verdict, evidence = _bytes_claim(data, b, a)
        add(f"XML (SOAP) messages are the largest: larger than {b}", verdict, evidence, "wire bytes per call")
    for a, b in soap_pairs or [("soap", "other")]:
        verdict, evidence = _stat_claim(data, "cpu", b, a)
        add(
            f"SOAP costs the most server CPU per request: more than {b}",
            verdict,
            evidence,
            "server CPU per request, top closed level",
        )
    add(
        "REST/JSON is human-readable; gRPC needs tooling (e.g. server reflection + grpcurl) to inspect",
        "not measured",
        "qualitative: true of the formats (JSON and XML are text, protobuf is binary), but this "
        "harness does not measure developer experience",
        "–",
    )
    return rows


def claims_section(data: RunData) -> Section:
    intro = paragraph(
        "The usual claims of gRPC/REST/SOAP comparisons, each with what this run measured. A claim is ",
        tag("i", "supported"),
        " when more than half of its comparisons are significant in the claimed direction "
        "and none in the other, ",
        tag("i", "contradicted"),
        " in the mirror case, ",
        tag("i", "mixed"),
        " when significant differences go both ways (e.g. faster on unary calls, slower on streams), and ",
        tag("i", "not significant"),
        " otherwise. Figures are from the main profile (",
        data.main_profile,
        ").",
    )
    body = table(["claim", "this run", "evidence", "measured as"], _claim_rows(data), wrap=(0, 2, 3))
    caveat = note(
        "These are Python implementations on a small noisy VM: a claim contradicted here says that this "
        "stack, on this machine, does not show it — not that the protocol cannot."
    )
    return Section("claims", "Claims checked", join([intro, body, caveat]))


# ---- A/A noise floor -----------------------------------------------------------------------------------
def _abs_median(rows: list[AARow]) -> float:
    return statistics.median(abs(r.rel_diff_pct) for r in rows)


def noise_section(data: RunData) -> Section:
    aa = data.aa
    intro = paragraph(
        "A/A check: each client's repetitions are split into odd and even ones (interleaved in run order, so "
        "exchangeable) and compared like two different arms. Any difference is noise. The median "
        "|difference| "
        "is this run's noise floor: a protocol difference smaller than it deserves little trust, even when "
        "significant."
    )
    if not aa:
        text = "No A/A check: it needs at least 4 repetitions (2 odd and 2 even) of a configuration."
        return Section("noise", "A/A noise floor", join([intro, no_data(text)]))
    items: list[tuple[object, object]] = [
        (fmt_pct(_abs_median(aa), signed=False), "run noise floor: median |A/A difference|, all rows")
    ]
    for key in ("throughput", "p50_1user"):
        sel = [r for r in aa if r.headline == key]
        if sel:
            label = f"{_BY_KEY[key].label}: median |A/A difference|"
            items.append((fmt_pct(_abs_median(sel), signed=False), label))
    groups: dict[tuple[str, str, str, str], list[AARow]] = {}
    for r in aa:
        groups.setdefault((r.client, r.scenario, r.profile, r.headline), []).append(r)
    rows = []
    for (client, scenario, profile, key), group in sorted(groups.items()):
        significant = sum(r.significant for r in group)
        sizes = f"{group[0].n_odd} / {group[0].n_even}"
        spread = [
            fmt_pct(_abs_median(group), signed=False),
            fmt_pct(max(abs(r.rel_diff_pct) for r in group), signed=False),
        ]
        cells = [
            client,
            f"{scenario} · {profile}",
            _BY_KEY[key].label,
            len(group),
            sizes,
            *spread,
            significant,
        ]
        rows.append(Row(cells, "marked" if significant else ""))
    n_odd, n_even = min((r.n_odd, r.n_even) for r in aa)
    head = [
        "client",
        "scenario · profile",
        "metric",
        "rows",
        "n (odd / even)",
        "median |Δ|",
        "max |Δ|",
        "significant",
    ]
    caption = (
        "Per client: A/A differences over operations (p50) or for the whole cell (throughput). “significant” "
        f"counts A/A rows with a verdict; with {n_odd} vs {n_even} repetitions the smallest possible p is "
        f"{fmt_p(_min_p(n_odd, n_even))}."
    )
    per_client = table(head, rows, numeric=(3, 4, 5, 6, 7), caption=caption)
    detail_rows = [
        Row(
            [
                r.client,
                r.label,
                r.operation,
                fmt_pct(r.rel_diff_pct),
                fmt_ci(r.ci_low_pct, r.ci_high_pct, pct=True),
                fmt_p(r.p_value),
            ]
        )
        for r in aa
    ]
    head = ["client", "metric", "operation", "odd vs even", "95 % CI", "p"]
    detail = details("Every A/A row", table(head, detail_rows, numeric=(3, 4, 5)))
    return Section("noise", "A/A noise floor", join([intro, cards(items), per_client, detail]))


# ---- failures ------------------------------------------------------------------------------------------
def failures_section(data: RunData) -> Section:
    parts: list[Html] = []
    failed = [c for c in data.cells.values() if not c.ok]
    if failed:
        rows = [
            Row(
                [
                    c.cell_id,
                    c.profile,
                    c.client or c.kind,
                    c.repetition,
                    c.attempt,
                    c.reason or "no reason recorded",
                    f"cells/{c.cell_id}/attempt-{c.attempt}/",
                ],
                "failed",
            )
            for c in failed
        ]
        parts.append(
            table(
                ["cell", "profile", "client", "rep.", "attempt", "reason", "raw files"],
                rows,
                numeric=(3, 4),
                wrap=(5,),
                caption=f"{len(failed)} failed cells",
            )
        )
    else:
        parts.append(no_data("No failed cells."))
    unfinished = sorted({str(s.get("cell_id")) for s in data.plan} - set(data.cells))
    if unfinished:
        parts.append(
            paragraph(
                tag("b", f"{len(unfinished)} planned cells never finished"),
                " (the run was interrupted; `bench run --resume ",
                data.run_id,
                "` completes it): ",
                ", ".join(unfinished),
            )
        )
    skipped = skipped_profiles(data)
    if skipped:
        parts.append(tag("h3", "Skipped or failed profiles"))
        parts.append(table(["profile", "reason"], [Row([p, r]) for p, r in skipped], wrap=(1,)))
    reruns = [a for a in data.attempts if not a.get("final")]
    if reruns:
        rows = [
            Row([a["cell_id"], a.get("attempt"), fmt(a.get("max_steal_pct"), "%"), a.get("status", "?")])
            for a in sorted(reruns, key=lambda a: (a["cell_id"], a.get("attempt", 0)))
        ]
        parts.append(tag("h3", "Attempts re-run because of CPU steal"))
        parts.append(table(["cell", "attempt", "max steal", "status"], rows, numeric=(1, 2)))
    parts.append(details(f"All {len(data.cells)} cells (final attempts)", _all_cells(data)))
    return Section("failures", "Failures and cells", join(parts))


def _all_cells(data: RunData) -> Html:
    rows = []
    for c in data.cells.values():
        flags = join(
            [
                badge("failed") if not c.ok else "",
                " ",
                marks(gl=c.generator_limited, steal=c.flagged, tcg=c.emulated),
            ]
        )
        rows.append(
            Row(
                [
                    c.cell_id,
                    c.kind,
                    c.client or "–",
                    c.scenario,
                    c.profile,
                    c.repetition,
                    c.attempt,
                    fmt(c.max_steal_pct, "%"),
                    fmt(c.wall_s, "s"),
                    flags,
                ]
            )
        )
    head = ["cell", "kind", "client", "scenario", "profile", "rep.", "attempt", "max steal", "wall", "marks"]
    return table(head, rows, numeric=(5, 6, 7, 8), caption="Raw files of each: cells/<cell>/attempt-<n>/")


# ---- manifest ------------------------------------------------------------------------------------------
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


def footer(data: RunData) -> Html:
    return tag(
        "footer",
        join(
            [
                "Built by ",
                tag("code", "bench report " + data.run_id),
                " from the raw files of ",
                tag("code", f"results/{data.run_id}/"),
                " only: manifest.json, plan.json, cells.jsonl, "
                "cells/*/attempt-*/{cell.json, ops.json}, guests/*.json. The tidy table behind every number "
                "is next to "
                "this file (tidy.csv, tidy.parquet). Rebuilding gives the same bytes.",
                " ",
                esc(""),
            ]
        ),
    )

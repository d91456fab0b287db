"""Report section: the usual gRPC/REST/SOAP claims, each with what the run measured."""

from __future__ import annotations

import statistics

from bench.report.data import RunData
from bench.report.html import (
    Html,
    Row,
    Section,
    fmt,
    fmt_pct,
    join,
    note,
    paragraph,
    table,
    tag,
)
from bench.report.sections.common import BY_KEY, comparison_side


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
    headline = BY_KEY[key]
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
        sides[comparison_side(r, client, headline)].append(r.operation)
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

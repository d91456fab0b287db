"""Report section: the usual gRPC/REST/SOAP claims, each with what the run measured."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.analysis.verdicts import BY_KEY
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
from bench.report.sections.common import comparison_side


def _pairs(data: RunData, left: str, right: str, engine: str) -> list[tuple[str, str]]:
    """(arm of protocol `left`, arm of protocol `right`) pairs of one engine measured in this run."""
    arms = {
        c.arm: c.protocol
        for c in data.cells.values()
        if c.kind == "load" and c.engine == engine and not c.twin_of
    }
    lefts = sorted(a for a, p in arms.items() if p == left)
    rights = sorted(a for a, p in arms.items() if p == right)
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


def _stat_claim(data: RunData, key: str, arm: str, other: str) -> tuple[str, str]:
    """(verdict, evidence) for "`arm` is better than `other` on headline `key`" over its comparisons: only
    assessable comparisons count; with none, the claim is not assessable and says why."""
    headline = BY_KEY[key]
    profile = data.main_profile
    rows = [
        r
        for r in data.comparisons
        if r.headline == key
        and r.kind == "protocol"
        and r.profile_a == profile == r.profile_b
        and {r.a, r.b} == {arm, other}
    ]
    if not rows:
        return "not measured", "no comparison rows"
    usable = [r for r in rows if r.assessable]
    if not usable:
        causes = sorted({cause for r in rows for cause in r.causes})
        return (
            "not assessable",
            f"{arm} vs {other}: none of {len(rows)} comparisons assessable ({', '.join(causes)})",
        )
    sides: dict[str, list[str]] = {"better": [], "worse": [], "ns": []}
    ratios = []
    for r in usable:
        sides[comparison_side(r, arm, headline)].append(f"{r.operation} {r.level}".strip())
        mine, theirs = (r.median_a, r.median_b) if r.a == arm else (r.median_b, r.median_a)
        if theirs:
            ratios.append(100 * (mine - theirs) / theirs)
    total = len(usable)
    better_word, worse_word = headline.words
    parts = [
        f"{arm} vs {other}: {better_word} in {len(sides['better'])} of {total}, {worse_word} in "
        f"{len(sides['worse'])}, no (meaningful) difference in {len(sides['ns'])}"
    ]
    if ratios:
        parts.append(f"median difference {fmt_pct(statistics.median(ratios))}")
    minority = "worse" if len(sides["better"]) >= len(sides["worse"]) else "better"
    if sides[minority] and total > 1:
        word = worse_word if minority == "worse" else better_word
        parts.append(f"{word}: {', '.join(sides[minority])}")
    if len(usable) < len(rows):
        parts.append(f"{len(rows) - len(usable)} more not assessable")
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


@dataclass(frozen=True)
class Claim:
    claim: str
    verdict: str  # supported | contradicted | mixed | not significant | not assessable | not measured
    evidence: str
    source: str


def claims(data: RunData) -> list[Claim]:
    """Every claim with this run's verdict (the HTML section and `bench report --markdown` show these)."""
    rows: list[Claim] = []

    def add(claim: str, verdict: str, evidence: str, source: str) -> None:
        rows.append(Claim(claim, verdict, evidence, source))

    stat_claims = [
        ("capacity", "native", "gRPC serves more requests per second than {other}",
         "capacity: the highest throughput of a server-bound closed-model window (native engine)"),
        ("p50_eq", "native", "gRPC answers faster than {other} at the same offered load",
         "p50, open model, corrected, at equal absolute offered rates (native engine)"),
        ("p99_eq", "native", "gRPC has lower tail latency under load than {other}",
         "p99, open model, corrected, at equal absolute offered rates (native engine)"),
        ("p50_1user", "python", "A Python caller gets answers sooner over gRPC than over {other}",
         "p50 latency at 1 user, per operation (Python clients)"),
        ("ttfi", "python", "gRPC streams deliver the first item sooner than {other}'s batch equivalents",
         "time to first item at 1 user (Python clients)"),
    ]  # fmt: skip
    for key, engine, text, source in stat_claims:
        for other_protocol in ("rest", "soap"):
            pairs = _pairs(data, "grpc", other_protocol, engine)
            if not pairs:
                add(
                    text.format(other=other_protocol.upper()),
                    "not measured",
                    f"no gRPC and {other_protocol.upper()} arms of the {engine} engine in this run",
                    source,
                )
            for a, b in pairs:
                verdict, evidence = _stat_claim(data, key, a, b)
                add(text.format(other=f"{other_protocol.upper()} ({b})"), verdict, evidence, source)
    for a, b in _pairs(data, "grpc", "rest", "python") or [("grpc", "rest")]:
        add("Protobuf messages are smaller than JSON", *_bytes_claim(data, a, b), "wire bytes per call")
    soap_pairs = _pairs(data, "soap", "grpc", "python") + _pairs(data, "soap", "rest", "python")
    for a, b in soap_pairs or [("soap", "grpc")]:
        verdict, evidence = _bytes_claim(data, b, a)
        add(f"XML (SOAP) messages are the largest: larger than {b}", verdict, evidence, "wire bytes per call")
    native_soap = _pairs(data, "soap", "grpc", "native") + _pairs(data, "soap", "rest", "native")
    for a, b in native_soap or [("soap", "other")]:
        verdict, evidence = _stat_claim(data, "cpu", b, a)
        add(
            f"SOAP costs the most server CPU per request: more than {b}",
            verdict,
            evidence,
            "server CPU per request in the capacity window (native engine)",
        )
    add(
        "REST/JSON is human-readable; gRPC needs tooling (e.g. server reflection + grpcurl) to inspect",
        "not measured",
        "qualitative: true of the formats (JSON and XML are text, protobuf is binary), but this "
        "harness does not measure developer experience",
        "–",
    )
    return rows


_CLASSES = {"not significant": "claim-ns", "not measured": "claim-not-measured",
            "not assessable": "claim-not-assessable", "supported": "claim-supported",
            "contradicted": "claim-contradicted", "mixed": "claim-mixed"}  # fmt: skip


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
    rows = [
        Row([c.claim, Html(tag("span", c.verdict, class_=_CLASSES.get(c.verdict, c.verdict))), c.evidence,
             c.source])
        for c in claims(data)
    ]  # fmt: skip
    body = table(["claim", "this run", "evidence", "measured as"], rows, wrap=(0, 2, 3))
    caveat = note(
        "These are Python implementations on a small noisy VM: a claim contradicted here says that this "
        "stack, on this machine, does not show it — not that the protocol cannot."
    )
    return Section("claims", "Claims checked", join([intro, body, caveat]))

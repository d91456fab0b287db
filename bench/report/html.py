"""HTML building blocks of the report: escaping, number formats, tables, badges, the page and its CSS."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "Html",
    "Row",
    "Section",
    "as_json",
    "badge",
    "cards",
    "details",
    "esc",
    "facts",
    "fmt",
    "fmt_ci",
    "fmt_p",
    "fmt_pct",
    "join",
    "marks",
    "no_data",
    "note",
    "page",
    "paragraph",
    "render",
    "table",
    "tag",
]


class Html(str):
    """Markup that is already safe (built by these helpers); anything else is escaped when rendered."""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def render(value: object) -> str:
    return str(value) if isinstance(value, Html) else esc(value)


def tag(name: str, content: object = "", /, **attrs: object) -> Html:
    """<name attrs>content</name>; attribute names use _ for - and a trailing _ for reserved words."""
    parts = [name]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(attr if value is True else f'{attr}="{esc(value)}"')
    return Html(f"<{' '.join(parts)}>{render(content)}</{name}>")


def join(items: Iterable[object], sep: str = "") -> Html:
    return Html(sep.join(render(item) for item in items))


# ---- numbers ---------------------------------------------------------------------------------------------
def _significant(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def fmt(value: float | None, unit: str = "", *, digits: int = 3) -> str:
    """3 significant digits (all integer digits kept), thousands separated, with its unit; "–" if none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = _significant(float(value), digits)
    return f"{text}\u00a0{unit}" if unit else text  # no-break space: a number never wraps away from its unit


def fmt_pct(value: float | None, *, signed: bool = True) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:+.1f}\u00a0%" if signed else f"{value:.1f}\u00a0%"


def fmt_ci(low: float | None, high: float | None, unit: str = "", *, pct: bool = False) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "–"
    if pct:
        return f"[{low:+.1f}, {high:+.1f}]\u00a0%"
    text = f"[{_significant(low, 3)}, {_significant(high, 3)}]"
    return f"{text}\u00a0{unit}" if unit else text


def fmt_p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


# ---- blocks ----------------------------------------------------------------------------------------------
class Row(NamedTuple):
    cells: Sequence[object]
    cls: str = ""


def table(
    headers: Sequence[str],
    rows: Iterable[Row | Sequence[object]],
    *,
    numeric: Iterable[int] = (),
    wrap: Iterable[int] = (),
    caption: object = None,
    cls: str = "data",
) -> Html:
    """A table; columns in `numeric` are right-aligned with tabular figures, only columns in `wrap` wrap their
    text (long reasons, evidence); cells are escaped unless Html."""
    classes = dict.fromkeys(numeric, "num") | dict.fromkeys(wrap, "wrap")
    head = join(tag("th", h, class_=classes.get(i)) for i, h in enumerate(headers))
    body = []
    for row in rows:
        row = row if isinstance(row, Row) else Row(row)
        if row.cls == "group":  # a heading row across the whole table
            body.append(tag("tr", tag("td", row.cells[0], colspan=len(headers)), class_="group"))
            continue
        cells = join(tag("td", c, class_=classes.get(i)) for i, c in enumerate(row.cells))
        body.append(tag("tr", cells, class_=row.cls or None))
    parts = [tag("caption", caption)] if caption is not None else []
    parts += [tag("thead", tag("tr", head)), tag("tbody", join(body))]
    return tag("div", tag("table", join(parts), class_=cls), class_="table-wrap")


BADGES = {
    "gl": (
        "generator-limited",
        "the load generator fell behind its schedule or used most of its CPU: the client, not the server, "
        "set the pace",
    ),
    "steal": (
        "noisy",
        "CPU steal or other processes on the pinned CPUs stayed above the threshold after the allowed "
        "re-runs",
    ),
    "tcg": ("emulated", "measured in a software-emulated (TCG) guest"),
    "failed": ("failed", "the cell failed"),
}


def badge(kind: str, text: str | None = None) -> Html:
    label, title = BADGES.get(kind, (kind, kind))
    return tag("span", text or label, class_=f"badge badge-{kind}", title=title)


def marks(*, gl: bool = False, steal: bool = False, tcg: bool = False) -> Html:
    return join(
        [badge("gl") if gl else "", badge("steal") if steal else "", badge("tcg") if tcg else ""], " "
    )


def note(text: object, cls: str = "note") -> Html:
    return tag("p", text, class_=cls)


def details(summary: object, content: object, *, open_: bool = False) -> Html:
    return tag("details", join([tag("summary", summary), content]), open_=open_)


def paragraph(*parts: object) -> Html:
    return tag("p", join(parts))


@dataclass
class Section:
    """One report section: its anchor, heading and body; `figures` lists the plot div ids it contains."""

    anchor: str
    title: str
    body: Html
    figures: list[str] = field(default_factory=list)


# ---- page ------------------------------------------------------------------------------------------------
CSS = """
:root { --ink:#1d2330; --muted:#5d6677; --line:#d9dde5; --soft:#f4f6f9; --accent:#2f5fa7;
  --good:#1e7a46; --bad:#b3401f; --warn-bg:#fff5df; --warn-line:#e2b04a; --bad-bg:#fdecea; }
* { box-sizing: border-box; }
html { scroll-behavior: smooth; }
body { margin:0; color:var(--ink); background:#fff; font:15px/1.55 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif; }
nav.toc { position:fixed; top:0; left:0; bottom:0; width:230px; overflow-y:auto; padding:22px 18px;
  background:var(--soft); border-right:1px solid var(--line); font-size:13.5px; }
nav.toc .brand { font-weight:650; margin-bottom:12px; line-height:1.3; }
nav.toc .brand small { display:block; font-weight:400; color:var(--muted); font-family:ui-monospace,
  "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; font-size:12px; margin-top:4px; }
nav.toc ol { list-style:none; margin:0; padding:0; counter-reset:toc; }
nav.toc li { counter-increment:toc; margin:2px 0; }
nav.toc a { display:block; padding:4px 8px; border-radius:5px; color:var(--ink); text-decoration:none; }
nav.toc a::before { content:counter(toc) ". "; color:var(--muted); }
nav.toc a:hover { background:#e6eaf1; }
main { margin-left:230px; padding:28px 44px 60px; max-width:1340px; }
h1 { font-size:26px; margin:0 0 4px; letter-spacing:-0.01em; }
h1 + .subtitle { color:var(--muted); margin:0 0 18px; }
h2 { font-size:21px; margin:44px 0 10px; padding-top:14px; border-top:2px solid var(--ink); }
h3 { font-size:16.5px; margin:26px 0 8px; }
h4 { font-size:15px; margin:18px 0 6px; color:var(--muted); }
p, li { max-width:92ch; }
code, .mono { font-family:ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace;
  font-size:0.9em; }
.facts { display:grid; grid-template-columns:repeat(auto-fill, minmax(270px, 1fr)); gap:2px 28px;
  margin:14px 0; }
.facts div { display:flex; gap:10px; padding:5px 0; border-bottom:1px solid var(--line); }
.facts dt { color:var(--muted); min-width:118px; }
.facts dd { margin:0; font-weight:500; overflow-wrap:anywhere; }
.banner { border:1px solid var(--warn-line); background:var(--warn-bg); border-radius:8px; padding:12px 16px;
  margin:16px 0; }
.banner.bad { border-color:#d9776a; background:var(--bad-bg); }
.banner.ok { border-color:#9ccfb0; background:#eef8f1; }
.banner strong { display:block; margin-bottom:4px; }
.banner ul { margin:4px 0 0; padding-left:20px; }
.cards { display:flex; flex-wrap:wrap; gap:14px; margin:14px 0; }
.card { border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:200px;
  background:#fff; }
.card .big { font-size:28px; font-weight:650; font-variant-numeric:tabular-nums; letter-spacing:-0.01em; }
.card .label { color:var(--muted); font-size:13px; }
.table-wrap { overflow-x:auto; margin:10px 0 16px; }
table.data { border-collapse:collapse; font-size:13px; }
table.data caption { text-align:left; color:var(--muted); padding:4px 0 6px; caption-side:top; }
table.data th, table.data td { padding:5px 9px; border-bottom:1px solid var(--line); text-align:left;
  vertical-align:top; white-space:nowrap; }
table.data td.wrap { white-space:normal; min-width:18ch; max-width:70ch; }
table.data thead th { background:var(--soft); border-bottom:2px solid #b9c0cc; font-weight:600;
  white-space:nowrap; position:sticky; top:0; }
table.data td.num, table.data th.num { text-align:right; font-variant-numeric:tabular-nums;
  white-space:nowrap; }
table.data tbody tr:hover { background:#f7f9fc; }
table.data tr.group td { background:#eef1f6; font-weight:600; }
table.data tr.marked td:first-child { box-shadow:inset 3px 0 0 var(--warn-line); }
table.data tr.failed td { background:var(--bad-bg); }
.verdict-better { color:var(--good); font-weight:600; }
.verdict-worse { color:var(--bad); font-weight:600; }
.verdict-ns { color:var(--muted); }
.claim-supported { color:var(--good); font-weight:650; }
.claim-contradicted { color:var(--bad); font-weight:650; }
.claim-mixed { color:#8a5a00; font-weight:650; }
.claim-ns, .claim-not-measured, .claim-not-assessable { color:var(--muted); font-weight:600; }
.badge { display:inline-block; font-size:11px; line-height:1.5; padding:0 6px; border-radius:9px;
  font-weight:600; white-space:nowrap; vertical-align:1px; }
.badge-gl { background:#ffe9c2; color:#7a4b00; }
.badge-steal { background:#e5dcff; color:#4b2d9a; }
.badge-tcg { background:#d9ecff; color:#14497d; }
.badge-failed { background:#ffd9d3; color:#8d2411; }
.note { color:var(--muted); font-style:italic; }
.nodata { color:var(--muted); border:1px dashed var(--line); border-radius:6px; padding:10px 14px; }
figure { margin:14px 0 24px; border:1px solid var(--line); border-radius:8px; padding:8px 10px 10px; }
figure .plot { width:100%; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; max-width:none; }
details { margin:10px 0; }
details > summary { cursor:pointer; color:var(--accent); font-weight:550; }
pre.json { background:var(--soft); border:1px solid var(--line); border-radius:6px; padding:10px 12px;
  overflow:auto; max-height:520px; font-size:12px; }
.howto { background:var(--soft); border-left:3px solid var(--accent); padding:8px 14px; margin:12px 0; }
.howto p { margin:6px 0; }
footer { margin-top:50px; color:var(--muted); font-size:12.5px; border-top:1px solid var(--line);
  padding-top:10px; }
@media (max-width: 900px) { nav.toc { display:none; } main { margin-left:0; padding:18px; } }
@media print { nav.toc { display:none; } main { margin-left:0; } }
"""


def page(
    *,
    title: str,
    brand: str,
    subtitle: str,
    plotly_js: str,
    header: Html,
    sections: list[Section],
    footer: Html,
) -> str:
    """The whole document: navigation, header, sections; plotly.js inlined once (the file works offline)."""
    figures = [fig for section in sections for fig in section.figures]
    nav_items = join(tag("li", tag("a", s.title, href=f"#{s.anchor}")) for s in sections)
    nav = tag(
        "nav",
        join([tag("div", join([brand, tag("small", subtitle)]), class_="brand"), tag("ol", nav_items)]),
        class_="toc",
    )
    body_sections = join(tag("section", join([tag("h2", s.title), s.body]), id=s.anchor) for s in sections)
    # A script body ends at the first "</script"; plotly.js has none today, but never let it close early.
    script = plotly_js.replace("</script", "<\\/script")
    head = join(
        [
            Html('<meta charset="utf-8">'),
            Html('<meta name="viewport" content="width=device-width, initial-scale=1">'),
            tag("title", title),
            Html(f'<meta name="report-figures" content="{esc(" ".join(figures))}">'),
            Html(f"<style>{CSS}</style>"),
            Html(f'<script type="text/javascript">{script}</script>'),
        ],
        "\n",
    )
    main = tag("main", join([header, body_sections, footer], "\n"))
    body = f"<body>\n{nav}\n{main}\n</body>"
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{head}\n</head>\n{body}\n</html>\n'


def facts(items: Sequence[tuple[str, object]]) -> Html:
    return tag("dl", join(tag("div", join([tag("dt", k), tag("dd", v)])) for k, v in items), class_="facts")


def cards(items: Sequence[tuple[object, object]]) -> Html:
    """Prominent numbers: (big value, label) pairs."""
    return tag(
        "div",
        join(
            tag("div", join([tag("div", v, class_="big"), tag("div", k, class_="label")]), class_="card")
            for v, k in items
        ),
        class_="cards",
    )


def no_data(text: str) -> Html:
    return tag("p", text, class_="nodata")


def as_json(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, sort_keys=True, default=str)

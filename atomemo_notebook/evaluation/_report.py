"""A comparison as one small static HTML page, for a pull request or a wiki: the verdict, the
rows that regressed and improved, and a latency plot. No script, no remote load (a
Content-Security-Policy says so), every text escaped; the plot is inline SVG, drawn here
because a scatter of a few hundred points needs no plotting library (matplotlib is optional)."""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._comparison import Comparison

__all__ = ["MAX_REPORT_ROWS", "comparison_html"]

MAX_REPORT_ROWS = 200  # regressed and improved rows listed; the rest are counted
MAX_POINTS = 2000  # points in the latency plot
CELL = 160  # characters of a query or an answer in the table
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#111827;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
ul.verdict li{margin:4px 0;font-family:ui-monospace,monospace}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;
text-align:left;vertical-align:top}td.regressed{color:#b91c1c;font-weight:600}td.improved{color:#047857;font-weight:600}
.note{color:#6b7280}svg text{font:11px system-ui,sans-serif;fill:#374151}
"""


def _cut(value: Any, limit: int = CELL) -> str:
    text = "" if value is None else str(value)
    return html.escape(text if len(text) <= limit else text[:limit] + "…")


def _plot(points: list[tuple[float, float]]) -> str:
    """Per paired row: latency of A (x) against B (y), in ms; above the diagonal B was slower."""
    points = [(a, b) for a, b in points if math.isfinite(a) and math.isfinite(b)][:MAX_POINTS]
    if not points:
        return "<p class='note'>No row has a latency in both runs.</p>"
    size, pad = 360, 40
    top = max(max(a, b) for a, b in points) or 1.0

    def at(value: float) -> float:
        return pad + (size - 2 * pad) * value / top

    dots = "".join(f"<circle cx='{at(a):.1f}' cy='{size - at(b):.1f}' r='3' fill='#2563eb' fill-opacity='0.55'/>"
                   for a, b in points)
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' role='img' "
            f"aria-label='Latency per row, A against B'>"
            f"<line x1='{pad}' y1='{size - pad}' x2='{size - pad}' y2='{pad}' stroke='#9ca3af' stroke-dasharray='4'/>"
            f"<line x1='{pad}' y1='{size - pad}' x2='{size - pad}' y2='{size - pad}' stroke='#111827'/>"
            f"<line x1='{pad}' y1='{size - pad}' x2='{pad}' y2='{pad}' stroke='#111827'/>{dots}"
            f"<text x='{size / 2}' y='{size - 8}' text-anchor='middle'>A latency (ms, up to {top:.0f})</text>"
            f"<text x='12' y='{size / 2}' transform='rotate(-90 12 {size / 2})' text-anchor='middle'>"
            f"B latency (ms)</text></svg>")


def comparison_html(comparison: Comparison, title: str = "Evaluation comparison") -> str:
    rows = comparison._rows
    flipped = [r for r in rows if r["flip"]]
    shown = flipped[:MAX_REPORT_ROWS]
    body = "".join(
        f"<tr><td class='{html.escape(r['flip'])}'>{html.escape(r['flip'])}</td><td>{html.escape(str(r['row']))}</td>"
        f"<td>{_cut(r['query'])}</td><td>{_cut(r['status_a'])}</td><td>{_cut(r['status_b'])}</td>"
        f"<td>{_cut(r['answer_a'])}</td><td>{_cut(r['answer_b'])}</td></tr>" for r in shown)
    more = (f"<p class='note'>{len(flipped) - len(shown)} more flipped rows are not listed.</p>"
            if len(flipped) > len(shown) else "")
    table = (f"<table><tr><th>flip</th><th>row</th><th>query</th><th>status A</th><th>status B</th>"
             f"<th>answer A</th><th>answer B</th></tr>{body}</table>{more}" if shown
             else "<p class='note'>No row flipped between pass and fail.</p>")
    points = [(r["total_s_a"] * 1000, r["total_s_b"] * 1000) for r in rows
              if isinstance(r.get("total_s_a"), int | float) and isinstance(r.get("total_s_b"), int | float)]
    verdict = "".join(f"<li>{html.escape(line)}</li>" for line in comparison.verdict)
    systems = f"{comparison.a.system} (A) and {comparison.b.system} (B)"
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p class='note'>{html.escape(systems)}, "
            f"{comparison.paired_rows} rows in both; "
            f"differences are B - A with 95% intervals.</p><h2>Verdict</h2><ul class='verdict'>{verdict}</ul>"
            f"<h2>Rows that regressed, then rows that improved</h2>{table}"
            f"<h2>Latency per row</h2>{_plot(points)}</body></html>")

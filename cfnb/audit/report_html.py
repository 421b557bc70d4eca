"""HTML of an ``AuditReport``: the factor table, the gallery's pairs, and a stand-alone page with the charts.

Images are drawn by ``cfnb.viz.images.png_data_uri`` (two-channel images as RGB, see ``report.drawable``).
"""
from __future__ import annotations

import html
import json
import math

from ..viz.images import png_data_uri
from .report import FIGURES, AuditReport, drawable
from .report_charts import counterfactual_share_chart, group_accuracy_chart, reliance_chart
from .statistics import Estimate


def _cell(estimate: Estimate | None, percent: bool) -> str:
    """One table cell: the value with its interval below, or n/a."""
    if estimate is None or math.isnan(estimate.value):
        return "<td>n/a</td>"
    if percent:
        text = f"{estimate.value:.1%}"
        span = "" if math.isnan(estimate.low) else f"<br><small>[{estimate.low:.1%}, {estimate.high:.1%}]</small>"
    else:
        text = f"{estimate.value:.3f}"
        span = "" if math.isnan(estimate.low) else f"<br><small>[{estimate.low:.3f}, {estimate.high:.3f}]</small>"
    return f"<td>{text}{span}</td>"


def table_html(report: AuditReport) -> str:
    """The factor table as an HTML ``<table>`` (rows: factors; columns: figures with 95% intervals)."""
    percent = {"flip_rate", "counterfactual_share", "counterfactual_dominant", "counterfactual_sufficient",
               "worst_group_accuracy"}
    shown = [name for name in FIGURES if any(
        not math.isnan(report.figures.get(f, {}).get(name, Estimate.missing()).value) for f in report.factors)]
    head = "".join(f"<th title='{html.escape(FIGURES[n])}'>{html.escape(n.replace('_', ' '))}</th>" for n in shown)
    body = []
    for factor in report.ranking():
        flag = ("shortcut" if factor in report.shortcuts else "relied on (expected)" if factor in report.flagged
                else "")
        cells = "".join(_cell(report.figures.get(factor, {}).get(n), n in percent) for n in shown)
        style = " style='background:#fde0dc'" if factor in report.shortcuts else ""
        body.append(f"<tr{style}><th>{html.escape(factor)}</th>{cells}<td>{flag}</td></tr>")
    return ("<table class='cfnb-audit'><thead><tr><th>factor</th>" + head + "<th>flag</th></tr></thead><tbody>"
            + "".join(body) + "</tbody></table>")


def pairs_html(report: AuditReport) -> str:
    """The gallery's pairs as HTML figures (before, after, caption)."""
    if not report.gallery:
        return "<p>No pairs to show.</p>"
    items = []
    for pair in report.gallery:
        items.append(
            "<figure class='pair'>"
            f"<img src='{png_data_uri(drawable(pair.before))}' alt='before'>"
            f"<img src='{png_data_uri(drawable(pair.after))}' alt='after'>"
            f"<figcaption><b>{html.escape(pair.factor)}</b>: {html.escape(pair.caption())}</figcaption></figure>"
        )
    return "<div class='gallery'>" + "".join(items) + "</div>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table.cfnb-audit { border-collapse: collapse; font-size: 0.9em; }
table.cfnb-audit th, table.cfnb-audit td { border: 1px solid #ccc; padding: 4px 8px; text-align: center; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
figure.pair { margin: 0; width: 220px; } figure.pair img { width: 100px; image-rendering: pixelated; margin: 2px; }
figure.pair figcaption { font-size: 0.8em; } pre { white-space: pre-wrap; background: #f6f6f6; padding: 1em; }
"""


def report_html(report: AuditReport, include_plotlyjs: bool | str = True) -> str:
    """A complete HTML page for ``report``; with ``include_plotlyjs=True`` it works offline (plotly.js inlined)."""
    charts = [reliance_chart(report), group_accuracy_chart(report), counterfactual_share_chart(report)]
    parts = [chart.to_html(full_html=False, include_plotlyjs=include_plotlyjs if i == 0 else False)
             for i, chart in enumerate(charts)]
    settings = html.escape(json.dumps(report.settings, indent=1, default=str))
    title = f"cfnb audit: {html.escape(report.classifier)}"
    legend = "; ".join(html.escape(k.replace("_", " ") + ": " + v) for k, v in FIGURES.items())
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>{_STYLE}</style></head>"
        "<body>"
        f"<h1>{title}</h1><h2>Findings</h2><pre>{html.escape(report.summary())}</pre>"
        f"<h2>Figures per factor</h2>{table_html(report)}"
        f"<p><small>{legend}.</small></p>"
        f"<h2>Reliance</h2>{parts[0]}<h2>Groups</h2>{parts[1]}<h2>Counterfactual edits</h2>{parts[2]}"
        f"<h2>Most telling pairs</h2>{pairs_html(report)}"
        f"<h2>Settings</h2><pre>{settings}</pre><p><small>{report.n_images:,} images in {report.seconds:.1f} s "
        f"({report.images_per_second:.0f} images/s).</small></p></body></html>"
    )


def summary_html(report: AuditReport) -> str:
    """The factor table and the plain-language summary: what a notebook shows for a report."""
    return table_html(report) + "<pre>" + html.escape(report.summary()) + "</pre>"

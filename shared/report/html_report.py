"""The posture report as one self-contained HTML page, from ``templates/report.html.j2``.

Inline CSS (``templates/report.css``), charts drawn as inline SVG, no script and no external
reference, and every value escaped: resource ids and tag values, hence owner and team, are
untrusted input.
"""
from __future__ import annotations

import html

from .charts import line_chart, severity_chart, team_chart
from .model import Report
from .templating import environment
from .words import summary_text


def _escape(value: str) -> str:
    return html.escape(value, quote=True)


def render_html(report: Report) -> str:
    return environment().get_template("report.html.j2").render(
        report=report,
        summary=summary_text(report, _escape),
        severity_chart=severity_chart(report),
        team_chart=team_chart(report),
        history_chart=line_chart(report.history) if len(report.history) >= 2 else None,
    )

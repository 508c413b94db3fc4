"""Posture reports from the stored state: what is open, whose it is, what is overdue. Pure: no I/O.

``build_report`` turns resource states (and, when there are any, posture snapshots) into a
``Report`` (``model``); ``render_markdown`` (``markdown_report``) and ``render_html``
(``html_report``, from ``templates/``) turn a report into text. The HTML is one self-contained
file: inline CSS, charts drawn as inline SVG, no script and no external reference, and every value
escaped (resource ids and tag values, hence owner and team, are untrusted input).

Deleted resources are left out. A control that is no longer in the catalog (disabled, or its file
removed) is still reported, with severity ``Unknown``, as ``shared.domain.posture.summarize``
counts it. jinja2 is imported on the first ``render_html``, not with this package.
"""
from __future__ import annotations

from .charts import BAR_COLOUR, SEVERITY_COLOURS
from .html_report import render_html
from .markdown_report import render_markdown
from .model import (HISTORY_ROWS_SHOWN, NO_OWNER, NO_SUBSCRIPTION, NO_TEAM, OLDEST_LIMIT, ROWS_SHOWN, SEVERITIES,
                    UNKNOWN_SEVERITY, ControlPosture, HistoryPoint, OpenFinding, Posture, Report, Totals,
                    build_report)
from .words import GLOSSARY, summary_text

__all__ = [
    "BAR_COLOUR", "GLOSSARY", "HISTORY_ROWS_SHOWN", "NO_OWNER", "NO_SUBSCRIPTION", "NO_TEAM", "OLDEST_LIMIT",
    "ROWS_SHOWN", "SEVERITIES", "SEVERITY_COLOURS", "UNKNOWN_SEVERITY", "ControlPosture", "HistoryPoint",
    "OpenFinding", "Posture", "Report", "Totals", "build_report", "render_html", "render_markdown", "summary_text",
]

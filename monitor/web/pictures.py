"""The pictures the pages draw, as inline SVG (no script): the landscape's charts for the
current filters, and a study's statuses as one bar from registration to its planned
completion. The shapes are monitor.core.charts'; this picks what each page shows."""

from __future__ import annotations

from typing import Any

from monitor.core import charts
from monitor.core.describe import status_label


def study_timeline(page: Any, today: str) -> str:
    """The study's statuses as one bar from registration to its planned completion."""
    c = page.current
    periods = [(s["label"], s["began"], s["ended"]) for s in page.history["statuses"]]
    marks = []
    if c is not None:
        for label, d in (
            ("Primary completion", c.primary_completion_date),
            ("Completion", c.completion_date),
        ):
            if d is not None and d.date:
                marks.append((f"{label} {d.date}" + (" (planned)" if d.type == "ESTIMATED" else ""), d.date))
    return charts.timeline_bar(periods, today=today, marks=marks)


def landscape_charts(v: Any) -> dict[str, str]:
    """The landscape's pictures for the current filters, as inline SVG (no script)."""
    p = v.picture
    if p is None or not v.total:
        return {}
    status = [(status_label(code), n) for code, n in p.by_status]
    return {
        "status": charts.stacked(
            "Studies by status",
            status,
            colors=[charts.STATUS_COLORS.get(label, charts.OTHER_STATUS) for label, _ in status],
        ),
        "years": charts.columns("Registrations per year (first posted)", p.by_year),
        "countries": charts.hbar(
            f"Studies with sites, by country (top {min(12, len(p.by_country))} of {len(p.by_country)})",
            p.by_country[:12],
            color=charts.PALETTE[5],
        ),
    }

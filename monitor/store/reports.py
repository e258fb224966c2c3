"""Reports that were recorded: each remembers its filters and selection, so the next report
with the same filters can say which studies moved in and out.
Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitor.store.models import ReportRun


def previous_report(session: Session, filters: str, until: datetime) -> ReportRun | None:
    """The report a report of these filters (their description is the key) ending at
    `until` compares with: the latest recorded one whose period ended earlier. One rule
    for every format and for the web: two formats of the same period written one after
    the other compare with the same earlier report, never with each other."""
    return session.scalars(
        select(ReportRun)
        .where(ReportRun.filters == filters, ReportRun.until < until)
        .order_by(ReportRun.until.desc(), ReportRun.id.desc())
        .limit(1)
    ).first()


def record_report(
    session: Session,
    *,
    created_at: datetime,
    filters: str,
    since: datetime,
    until: datetime,
    study_ids: list[str],
    selection: dict[str, Any],
) -> None:
    session.add(
        ReportRun(
            created_at=created_at,
            filters=filters,
            since=since,
            until=until,
            study_ids=study_ids,
            selection=selection,
        )
    )

"""The changes a reader is told about, chosen once for every surface.

`ctmonitor events`, the web's /changes and /api/events, the feeds, reports (every format)
and each subscriber's digest read their changes here, so the same period and filters give
the same set of changes everywhere; each surface only groups, ranks and words them its
own way. What is chosen:

- published events (not held for review, not from a poll still running);
- not the registry's own history (backfill) unless asked for;
- not a baseline poll's arrivals (`monitor.core.news`) unless asked for;
- of the studies the filter follows (a study leaving scope still reaches those who
  followed it), of the kinds asked for, at or above the importance a reader sees;
- detected in the period, or with `by="registry"` dated by the registry in it. A period
  is half-open: `since` at the start of its day, `until` the start of the day after the
  last day asked for, so "until 2026-08-22" includes all of the 22nd on every surface.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from monitor.core.filters import StudyFilter
from monitor.core.news import NEW_STUDY, Arrival, arrival, reader_importance
from monitor.store.events import settled
from monitor.store.models import Event
from monitor.store.runs import baseline_runs
from monitor.store.studies import study_summaries

LEAVING = frozenset({"left_scope", "left_query"})


def day_start(d: date) -> datetime:
    return datetime.combine(d, time.min)


def period(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole days as a half-open interval: [since 00:00, the day after until 00:00)."""
    return (
        day_start(since) if since else None,
        day_start(until + timedelta(days=1)) if until else None,
    )


@dataclass(frozen=True)
class ChangeScope:
    """What a reader asked for. `since` is inclusive, `until` exclusive (see `period`)."""

    filter: StudyFilter = field(default_factory=StudyFilter)
    kinds: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    by: str = "detected"
    min_importance: int = 1
    nct_id: str | None = None
    baseline: bool = False  # a baseline poll's arrivals too
    backfill: bool = False  # the registry's own history too
    backfill_only: bool = False
    held: bool = False  # only the events held for review (the operator's view)
    # Whether the filter follows each study, worked out once per study for this scope (a
    # week's thousands of changes touch a few hundred studies).
    matched: dict[tuple[str, bool], bool] = field(default_factory=dict, compare=False, repr=False)

    @property
    def period_start(self) -> date | None:
        return self.since.date() if self.since else None


@dataclass(frozen=True, slots=True)
class ReaderChange:
    event: Event
    study: Any  # a study_summaries row (None for a study no longer stored)
    arrival: Arrival | None  # for a new-study event: registered, found or baseline
    importance: int  # as the reader sees it


def _statement(scope: ChangeScope, baseline_ids: frozenset[int]) -> Any:
    held = Event.held.is_(True) if scope.held else Event.held.is_(False)
    stmt = select(Event).where(held, settled())
    if scope.backfill_only:
        stmt = stmt.where(Event.origin == "backfill")
    elif not scope.backfill:
        stmt = stmt.where(Event.origin != "backfill")
    if scope.kinds:
        stmt = stmt.where(Event.kind.in_(list(scope.kinds)))
    if scope.nct_id:
        stmt = stmt.where(Event.nct_id == scope.nct_id)
    if scope.by == "registry":
        if scope.since is not None:
            stmt = stmt.where(Event.registry_date >= scope.since.date().isoformat())
        if scope.until is not None:
            stmt = stmt.where(Event.registry_date < scope.until.date().isoformat())
    else:
        if scope.since is not None:
            stmt = stmt.where(Event.detected_at >= scope.since)
        if scope.until is not None:
            stmt = stmt.where(Event.detected_at < scope.until)
    if not scope.baseline and baseline_ids:
        # written without NOT over a NULL run id, which would drop an event that has none
        stmt = stmt.where(
            or_(Event.kind != NEW_STUDY, Event.run_id.is_(None), Event.run_id.not_in(sorted(baseline_ids)))
        )
    return stmt


def reader_changes(
    session: Session,
    scope: ChangeScope,
    *,
    newest_first: bool = True,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int | None = None,
    studies: dict[str, Any] | None = None,
) -> Iterator[ReaderChange]:
    """The changes in scope, newest (or oldest) first; `before_id`/`after_id` continue a
    list from a cursor; `limit` stops after that many. `studies` (by NCT id) saves reading
    the study summaries again when the caller has them."""
    base = baseline_runs(session)
    stmt = _statement(scope, base)
    if before_id is not None:
        stmt = stmt.where(Event.id < before_id)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    stmt = stmt.order_by(Event.id.desc() if newest_first else Event.id)
    rows = studies if studies is not None else study_index(session)
    n = 0
    for e in session.scalars(stmt.execution_options(yield_per=2000)):
        change = judge(e, rows.get(e.nct_id), scope, base)
        if change is None:
            continue
        yield change
        n += 1
        if limit is not None and n >= limit:
            return


def judge(e: Any, study: Any, scope: ChangeScope, baseline_ids: frozenset[int]) -> ReaderChange | None:
    """One event against the scope's kinds, study filter and importance (the SQL did the
    rest: a caller with its own query, such as a subscriber's pending events, relies on
    this alone for those)."""
    if scope.kinds and e.kind not in scope.kinds:
        return None
    if study is None and not scope.nct_id:
        return None
    if study is not None:
        key = (e.nct_id, e.kind in LEAVING)
        follows = scope.matched.get(key)
        if follows is None:
            follows = scope.matched[key] = scope.filter.matches(study, leaving_scope=key[1])
        if not follows:
            return None
    how = None
    if e.kind == NEW_STUDY:
        first = getattr(study, "first_post_date", None) or (e.after or {}).get("first_posted")
        how = arrival(
            first, e.detected_at, baseline=e.run_id in baseline_ids, period_start=scope.period_start
        )
    importance = reader_importance(e.kind, e.importance, how)
    if importance < scope.min_importance:
        return None
    return ReaderChange(e, study, how, importance)


def study_index(session: Session) -> dict[str, Any]:
    """Every stored study's summary row by NCT id (gone and renumbered ones too: their last
    changes say so)."""
    return {
        r.nct_id: r
        for r in study_summaries(session, in_scope=None, with_classification=False, current_only=False)
    }

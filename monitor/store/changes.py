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

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from monitor.core import products
from monitor.core.filters import StudyFilter
from monitor.core.news import FOUND_IMPORTANCE, NEW_STUDY, Arrival, arrival, reader_importance
from monitor.store.events import settled
from monitor.store.index import version as index_version
from monitor.store.index_tables import StudyKey
from monitor.store.landscape import facet_in, facets_in, sponsor_in
from monitor.store.models import Event, PollRun
from monitor.store.runs import baseline_runs
from monitor.store.studies import study_summaries, study_summaries_of

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


def _statement(scope: ChangeScope, baseline_ids: frozenset[int], columns: Sequence[Any] = ()) -> Any:
    held = Event.held.is_(True) if scope.held else Event.held.is_(False)
    # light rows (the events' columns, read by name), not ORM objects: a year of changes is
    # read through here, and only a page of them is shown
    stmt = select(*(columns or Event.__table__.columns)).where(held, settled())
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


def follows(flt: StudyFilter) -> ColumnElement[bool]:
    """`StudyFilter.matches` in SQL over the studies' index (an event joined to its study's
    study_keys row): the same studies, a leaving event reaching those who followed it."""
    label: list[ColumnElement[bool]] = []
    if not flt.include_out_of_scope:
        label.append(or_(Event.kind.in_(sorted(LEAVING)), StudyKey.in_scope.is_(True)))
    label += facets_in(
        [
            ("modality", flt.modalities),
            ("target_part", flt.targets),
            ("indication", flt.indications),
            ("status", flt.statuses),
            ("phase", flt.phases),
            ("country", flt.countries),
        ]
    )
    if flt.products:
        label.append(facet_in("product", [products.compact(w) for w in flt.products]))
    if flt.registries:
        label.append(facet_in("registry", flt.registries))
    label += sponsor_in(flt.sponsors)
    labelled = and_(true(), *label)
    if not flt.nct_ids:
        return labelled
    chosen = StudyKey.nct_id.in_(sorted(flt.nct_ids))
    return or_(chosen, labelled) if flt.label_filters else chosen


def _of_followed(session: Session, stmt: Any, scope: ChangeScope) -> Any:
    """The statement narrowed to the changes of studies the scope's filter follows (a
    change of a study no longer stored only when one study is asked for)."""
    own = Event.nct_id.collate("C") if session.get_bind().dialect.name == "postgresql" else Event.nct_id
    if scope.nct_id:
        return stmt.outerjoin(StudyKey, StudyKey.nct_id == own).where(
            or_(StudyKey.nct_id.is_(None), follows(scope.filter))
        )
    return stmt.join(StudyKey, StudyKey.nct_id == own).where(follows(scope.filter))


def changes_version(session: Session) -> tuple[Any, ...]:
    """What the chosen changes depend on, read cheaply: the newest event, how many are held
    (a release lowers it; a new hold brings new events), the runs in progress and the
    newest run (a run finishing publishes its events and may end a baseline), and the
    studies' index version (their labels and scope). Equal versions give equal changes."""
    newest, held = session.execute(
        select(func.max(Event.id), select(func.count()).where(Event.held.is_(True)).scalar_subquery())
    ).one()
    in_progress = select(PollRun.id).where(PollRun.outcome == "running").order_by(PollRun.id)
    running = tuple(session.scalars(in_progress))
    last_run = session.scalar(select(func.max(PollRun.id)))
    return newest, held, running, last_run, index_version(session)


def count_changes(
    session: Session, scope: ChangeScope, *, after_id: int | None = None, from_id: int | None = None
) -> int:
    """How many changes `reader_changes` gives for the scope (past `after_id`; from
    `from_id` on), counted by the database. Only a new study's arrival, which lowers a
    found study's importance, is judged one by one, and only when the scope asks for more
    than that importance."""
    base = baseline_runs(session)
    stmt = _of_followed(session, _statement(scope, base, columns=[Event.id]), scope)
    stmt = stmt.where(Event.importance >= scope.min_importance)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    if from_id is not None:
        stmt = stmt.where(Event.id >= from_id)
    if scope.min_importance <= FOUND_IMPORTANCE:
        return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    plain = stmt.where(Event.kind != NEW_STUDY)
    n = session.scalar(select(func.count()).select_from(plain.subquery())) or 0
    if scope.kinds and NEW_STUDY not in scope.kinds:
        return n
    arrivals = dataclasses.replace(scope, kinds=(NEW_STUDY,))
    for c in reader_changes(session, arrivals, after_id=after_id):
        n += from_id is None or c.event.id >= from_id
    return n


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
    # the database keeps the followed studies' changes (`follows`); `judge` still decides
    stmt = _of_followed(session, _statement(scope, base), scope)
    if before_id is not None:
        stmt = stmt.where(Event.id < before_id)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    stmt = stmt.order_by(Event.id.desc() if newest_first else Event.id)
    rows = studies if studies is not None else StudyRows(session)
    n = 0
    # a page of changes reads a page's worth (the database has kept the followed ones)
    size = _BATCH if limit is None else min(_BATCH, max(100, 2 * limit))
    result = session.execute(stmt.execution_options(yield_per=size))
    for part in result.partitions(size):
        if isinstance(rows, StudyRows):
            rows.fetch({e.nct_id for e in part})
        for e in part:
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


_BATCH = 2000


class StudyRows(dict[str, Any]):
    """Studies' summary rows by id, read as the changes being judged name them (a batch of
    changes at a time), not every stored study first: a page of changes of a 100,000-study
    watch reads the few hundred it touches. Gone and renumbered studies too."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._session = session
        self._asked: set[str] = set()

    def fetch(self, nct_ids: Iterable[str]) -> None:
        wanted = sorted(set(nct_ids) - self._asked)
        if wanted:
            self._asked.update(wanted)
            self.update((r.nct_id, r) for r in study_summaries_of(self._session, wanted))

    def get(self, nct_id: str, default: Any = None) -> Any:  # type: ignore[override]
        self.fetch([nct_id])
        return super().get(nct_id, default)

    def __getitem__(self, nct_id: str) -> Any:
        self.fetch([nct_id])
        return super().__getitem__(nct_id)

    def __contains__(self, nct_id: object) -> bool:
        if isinstance(nct_id, str):
            self.fetch([nct_id])
        return super().__contains__(nct_id)


def study_index(session: Session) -> dict[str, Any]:
    """Every stored study's summary row by NCT id (gone and renumbered ones too: their last
    changes say so)."""
    return {
        r.nct_id: r
        for r in study_summaries(session, in_scope=None, with_classification=False, current_only=False)
    }

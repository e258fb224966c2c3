"""The reading use cases the web serves: the landscape, one study's page, the change
stream and the health check. The `Application` methods call these with a session; the
results are plain data the templates and the JSON API both render."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from monitor import store
from monitor.app.overview import event_dict, summary_dict
from monitor.core.describe import change_text
from monitor.core.domain import EventKind, UserError, check_kinds
from monitor.core.filters import StudyFilter
from monitor.core.landscape import LandscapeQuery, LandscapeView, counted, fold, make_cursor, sort_value
from monitor.core.news import arrival_label, arrival_note
from monitor.core.registrations import Registration, registrations
from monitor.core.results import parts as results_parts
from monitor.core.results import results_url
from monitor.core.scope import OTHER
from monitor.store import Session

KINDS = tuple(k.value for k in EventKind)
T = TypeVar("T")
PERIOD_BASES = ("detected", "registry")


# what a view counts, per database, index version and view: counting every match is the
# costly part of a landscape of 100,000 studies, and the index's version moves with every
# write of a study, so nothing cached is ever one write behind
_CACHE: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_HEAVY: OrderedDict[tuple[Any, ...], Any] = OrderedDict()  # whole pipelines: a few only
_KEEP = {id(_CACHE): 64, id(_HEAVY): 4}


def per_version(
    session: Session,
    key: tuple[Any, ...],
    make: Callable[[], T],
    *,
    heavy: bool = False,
    changes: bool = False,
) -> T:
    """`make()`, computed once per version of the studies' index (a write of any study makes
    a new version), or with `changes` once per version of the change log too
    (store.changes_version): for what is costly to count and depends on nothing else. The
    newest few are kept (`heavy`: what holds every row of a view, fewer still)."""
    cache = _HEAVY if heavy else _CACHE
    version = store.changes_version(session) if changes else store.index_version(session)
    full = (str(session.get_bind().url), version, *key)
    if full in cache:
        cache.move_to_end(full)
        return cache[full]  # type: ignore[no-any-return]
    value = make()
    cache[full] = value
    while len(cache) > _KEEP[id(cache)]:
        cache.popitem(last=False)
    return value


def view_key(q: LandscapeQuery) -> LandscapeQuery:
    """What a view's counts depend on: its filters and search, not its order or page."""
    return dataclasses.replace(q, sort="updated", descending=True, page=1, per_page=50, cursor="")


def _counted(
    session: Session, q: LandscapeQuery, charts: bool
) -> tuple[int, dict[tuple[str, str], int], tuple[str, ...]]:
    def make() -> tuple[int, dict[tuple[str, str], int], tuple[str, ...]]:
        if not charts:
            return store.landscape_count(session, q), {}, ()
        tally = store.landscape_tally(session, q)
        # "other" says what it holds: the conditions that put each study there
        rare = store.landscape_with_term(session, q, "indication", fold(OTHER))
        said = store.classifications(session, rare) if rare else {}
        holds = {
            e.get("text", "")
            for c in said.values()
            for e in c.get("evidence", [])
            if e.get("label") == "indications" and e.get("value") == OTHER
        }
        return tally.total, tally.counts, tuple(sorted(h for h in holds if h))

    return per_version(session, ("counts", view_key(q), charts), make)


def _summaries(session: Session, ids: list[str]) -> list[dict[str, Any]]:
    return _as_summaries(store.landscape_rows(session, ids))


def _as_summaries(rows: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    fields = None
    for r in rows:
        fields = fields or r._fields  # the same for every row of a result: read once
        d = summary_dict(r, fields=fields)
        d["search"] = r.search_text or ""
        out.append(d)
    return out


def _mark(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each row's review and curated marks, from its stored classification."""
    marks = store.review_marks(session, [r["nct_id"] for r in rows])
    for r in rows:
        r["review"], r["curated"] = marks.get(r["nct_id"], ([], []))


def landscape(
    session: Session, q: LandscapeQuery, *, complete: bool = False, counts: bool = True, marks: bool = True
) -> LandscapeView:
    """The landscape page, answered by the database (store.landscape): filtered, searched,
    sorted and paged there, one row per trial; only the page's rows are read. With
    `counts`, the view's counts and charts (counted there too, cached per index version);
    with `complete`, every matching row in order (`matching`: the pipeline, reports,
    `studies --json`); with `marks`, the rows' review and curated marks."""
    ids, more = store.landscape_page(session, q)
    rows = _summaries(session, ids)
    cursor = make_cursor(sort_value(rows[-1], q.sort), rows[-1]["nct_id"]) if more and rows else None
    total, tally, holds = _counted(session, q, counts)
    if counts:
        v = counted(q, rows, total, tally, next_cursor=cursor)
        v = dataclasses.replace(v, other_holds=holds)
    else:
        v = LandscapeView(q, rows, total, next_cursor=cursor)
    if complete:
        every = store.landscape_stream(session, q, store.SUMMARY_COLUMNS)
        v = dataclasses.replace(v, matching=[r for batch in every for r in _as_summaries(batch)])
    if marks:
        _mark(session, v.matching if complete else v.rows)
    return v


def landscape_stream(session: Session, q: LandscapeQuery, *, marks: bool) -> Iterator[list[dict[str, Any]]]:
    """Every row of a view in its order, a batch at a time (a download streams them, never
    holding the whole view)."""
    for batch in store.landscape_stream(session, q, store.SUMMARY_COLUMNS):
        rows = _as_summaries(batch)
        if marks:
            _mark(session, rows)
        yield rows


def trial_context(session: Session, row: Any) -> tuple[str | None, tuple[str, ...]]:
    """For a registration's page (core.trials): what its trial's registries disagree on, from
    the standing registration's latest such change while they do, said on the page of every
    registration of the trial; and the trial's other registrations followed here."""
    head = row if not row.trial_id or row.trial_id == row.nct_id else store.study_row(session, row.trial_id)
    across = None
    if head is not None and head.trial_status == "disagree":
        told = store.list_events(session, nct_id=head.nct_id, kinds=[EventKind.ACROSS_REGISTRIES.value])
        if told:
            across = change_text(told[-1].kind, told[-1].field, told[-1].before, told[-1].after)
    members = store.trial_member_ids(session, row.trial_id) if row.trial_id else []
    return across, tuple(m for m in members if m != row.nct_id)


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """A landscape row as the API and downloads give it (no internal search text)."""
    return {k: v for k, v in row.items() if k != "search"}


@dataclass(frozen=True)
class StudyPage:
    """Everything a study's page shows."""

    row: dict[str, Any]  # study_dict
    classification: dict[str, Any]  # with evidence, confidence, curated
    current: Any  # domain.Study of the latest version (sites, dates, enrollment)
    history: dict[str, Any]  # Application.history's data
    sites_by_country: list[tuple[str, list[Any]]] = field(default_factory=list)
    followed_by: int = 0  # how many subscribers follow it by NCT id (never who)
    in_query: bool = True  # reached by a watch query (else read by id only)
    # every publication: the literature's (PubMed, Europe PMC) and the record's own references
    publications: list[dict[str, Any]] = field(default_factory=list)
    # "statuses disagree — Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS",
    # while its trial's registrations disagree (core.trials)
    across: str | None = None
    tracked_here: tuple[str, ...] = ()  # its trial's other registrations this monitor follows
    ok: bool = True

    @property
    def results(self) -> dict[str, Any] | None:
        """What the posted results hold, in words, and where to read them; None without results."""
        c = self.current
        if c is None or not c.has_results:
            return None
        summary = c.results.to_json() if c.results is not None else None
        own = self.registrations[0]
        return {
            "first_posted": c.results_first_post_date,
            "parts": results_parts(summary),
            "summary": summary,
            "url": results_url(c.nct_id) if own.registry == "ctgov" else own.url,
            "registry_name": own.registry_name,
        }

    @property
    def registrations(self) -> list[Registration]:
        """Its own registration, the other registries' it names (secondary ids), and those of
        its trial that name it (core.trials), each once."""
        out = registrations(self.current) if self.current else [Registration("ctgov", self.row["nct_id"])]
        for r in self.row.get("registrations") or []:
            reg = Registration(r["registry"], r["id"])
            if reg not in out:
                out.append(reg)
        return out

    def to_json(self) -> dict[str, Any]:
        c = self.current
        return {
            **self.row,
            "registrations": [r.to_dict() for r in self.registrations],
            "results": self.results,
            "publications": [
                {k: v for k, v in p.items() if k != "links"}
                | {"links": [{"label": a, "url": u} for a, u in p["links"]]}
                for p in self.publications
            ],
            "followed_by": self.followed_by,
            "in_query": self.in_query,
            "classification": self.classification,
            "enrollment": {"count": c.enrollment_count, "type": c.enrollment_type} if c else None,
            "dates": {
                "start": c.start_date and c.start_date.date,
                "primary_completion": c.primary_completion_date and c.primary_completion_date.date,
                "completion": c.completion_date and c.completion_date.date,
                "first_posted": c.first_post_date,
                "last_update_posted": c.last_update_post_date,
            }
            if c
            else None,
            "sites": [
                {
                    "facility": s.facility,
                    "city": s.city,
                    "state": s.state,
                    "country": s.country,
                    "status": s.status,
                }
                for s in (c.sites if c else ())
            ],
            "statuses": self.history["statuses"],
            "changes": self.history["changes"],
            "versions": self.history["versions"],
        }


def sites_by_country(study: Any) -> list[tuple[str, list[Any]]]:
    groups: dict[str, list[Any]] = {}
    for s in study.sites if study else ():
        groups.setdefault(s.country or "Country not given", []).append(s)
    return sorted(((k, sorted(v, key=lambda s: s.label())) for k, v in groups.items()), key=lambda kv: kv[0])


@dataclass(frozen=True)
class ChangesQuery:
    """The change stream's state: the landscape's study filters, plus kinds, a minimum
    importance and a period read by detection date or by the registry's date."""

    filter: StudyFilter = field(default_factory=StudyFilter)
    kinds: tuple[str, ...] = ()
    min_importance: int = 1
    since: date | None = None
    until: date | None = None
    by: str = "detected"
    include_backfill: bool = False
    include_baseline: bool = False  # the first poll's arrivals, asked for explicitly
    limit: int = 500
    # A reader's "since my last look": only events after this id.
    after_event_id: int | None = None
    # The page's cursor: changes older than this event id (the previous page's last).
    before: int | None = None

    def check(self) -> ChangesQuery:
        check_kinds(self.kinds)
        if self.by not in PERIOD_BASES:
            raise UserError(f"by: {self.by!r}; valid: {', '.join(PERIOD_BASES)}")
        if not 1 <= self.limit <= MAX_PAGE:
            raise UserError(f"limit: {self.limit} is not a number from 1 to {MAX_PAGE}")
        if not 1 <= self.min_importance <= 3:
            raise UserError(f"importance: {self.min_importance} is not 1, 2 or 3")
        if self.since and self.until and self.since > self.until:
            raise UserError("since is after until")
        return self


MAX_PAGE = 1000


@dataclass(frozen=True)
class ChangesView:
    query: ChangesQuery
    groups: list[tuple[dict[str, Any], list[dict[str, Any]]]]  # (study, its changes newest first)
    total: int  # every change of the period and filters, on every page
    newer: int = 0  # changes before this page (newer than its cursor)
    next_cursor: int | None = None  # where the next (older) page starts; None on the last page
    ok: bool = True

    @property
    def shown(self) -> int:
        return sum(len(evs) for _, evs in self.groups)

    @property
    def truncated(self) -> bool:
        return self.next_cursor is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "count": self.shown,
            "first": self.newer + 1 if self.shown else None,
            "next_cursor": self.next_cursor,
            "studies": [{**public_row(study), "changes": events} for study, events in self.groups],
        }


def _day(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def scope(q: ChangesQuery) -> store.ChangeScope:
    """The change stream's query as the one selection every surface uses."""
    since, until = store.period(q.since, q.until)
    return store.ChangeScope(
        filter=q.filter,
        kinds=tuple(q.kinds),
        since=since,
        until=until,
        by=q.by,
        min_importance=q.min_importance,
        backfill=q.include_backfill,
        baseline=q.include_baseline,
    )


def changes(session: Session, q: ChangesQuery) -> ChangesView:
    """Changes newest first, grouped by study as digests group them (the study with the
    most recent change first), a page at a time: `q.before` is the cursor (an event id),
    stable while new changes arrive. `total` counts every page."""
    rows = store.StudyRows(session)
    chosen = scope(q)
    # counted by the database; only the page's changes (and one more) are read
    total = per_version(
        session,
        ("changes", chosen, q.after_event_id),
        lambda: store.count_changes(session, chosen, after_id=q.after_event_id),
        changes=True,
    )
    newer = 0
    if q.before is not None:  # changes newer than the page asked for
        newer = store.count_changes(session, chosen, after_id=q.after_event_id, from_id=q.before)
    picked = list(
        store.reader_changes(
            session, chosen, after_id=q.after_event_id, before_id=q.before, limit=q.limit + 1, studies=rows
        )
    )
    more = len(picked) > q.limit
    picked = picked[: q.limit]
    # one group per trial (its registrations joined, core.trials), under the registration
    # standing for it; each change keeps the registration it came from
    groups: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for c in picked:
        n = c.event.nct_id
        trial = getattr(rows.get(n), "trial_id", None) or n
        groups.setdefault(trial if trial in rows else n, []).append(change_dict(c))
    return ChangesView(
        q,
        [(summary_dict(rows[n]), evs) for n, evs in groups.items()],
        total,
        newer=newer,
        next_cursor=picked[-1].event.id if more and picked else None,
    )


def recent_and_moves(
    session: Session, q: ChangesQuery, recent: int
) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
    """For a product's or sponsor's page, in one pass over the changes: the `recent` newest
    (each with its study), how many there are in all, and the status changes oldest first
    (its timeline)."""
    rows = store.StudyRows(session)
    newest: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    total = 0
    for c in store.reader_changes(session, scope(q), studies=rows):
        total += 1
        if len(newest) < recent or c.event.kind == EventKind.STATUS:
            d = change_dict(c)
            d["study"] = c.event.nct_id
            d["title"] = c.study.brief_title if c.study is not None else ""
            if len(newest) < recent:
                newest.append(d)
            if c.event.kind == EventKind.STATUS:
                moves.append(d)
    return newest, total, moves[::-1]


def change_dict(c: store.ReaderChange) -> dict[str, Any]:
    """A change as a reader sees it: the stored event, its arrival and reader importance."""
    d = event_dict(c.event)
    # the trial it belongs to (core.trials): the registration standing for it
    d["trial_id"] = getattr(c.study, "trial_id", None) or c.event.nct_id
    d["importance"] = c.importance
    d["arrival"] = str(c.arrival) if c.arrival else None
    if c.arrival is not None:
        d["label"] = arrival_label(c.arrival)
        first = getattr(c.study, "first_post_date", None)
        if note := arrival_note(c.arrival, first):
            d["text"] = f"{d['text']}; {note}" if d["text"] else note
    return d


@dataclass(frozen=True)
class Health:
    """For an uptime monitor: ok while polls succeed and the data is fresh."""

    last_poll: dict[str, Any] | None
    last_successful_poll: datetime | None
    data_timestamp: str | None
    held_events: int
    failing_jobs: list[str]
    stale_after: timedelta

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[str]:
        out = []
        if self.last_successful_poll is None:
            out.append("no successful poll yet")
        if self.failing_jobs:
            out.append("failing: " + ", ".join(self.failing_jobs))
        if self.held_events:
            out.append(f"{self.held_events} events held for review")
        return out

    def fresh(self, now: datetime) -> bool:
        return self.last_successful_poll is not None and now - self.last_successful_poll <= self.stale_after

    def to_json(self, now: datetime) -> dict[str, Any]:
        problems = list(self.problems)
        if self.last_successful_poll is not None and not self.fresh(now):
            hours = int(self.stale_after.total_seconds() // 3600)
            span = f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"
            problems.append(f"no successful poll for more than {span}")
        return {
            "ok": not problems,
            "problems": problems,
            "last_poll": self.last_poll,
            "last_successful_poll": self.last_successful_poll,
            "registry_data_timestamp": self.data_timestamp,
            "held_events": self.held_events,
            "failing_jobs": self.failing_jobs,
        }

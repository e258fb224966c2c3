"""The poll: registry -> normalized studies -> diffs -> snapshots and events, one page per transaction.

Order of a poll:
1. take the writer lock (a second poll says so and leaves);
2. `GET /version`: if the data timestamp has not moved since the last good poll and no
   full reconciliation is due, stop there (one request);
3. run every watch query, incrementally (`LastUpdatePostDate` from the last good poll's
   data date minus an overlap) or in full, committing each page with its snapshots and
   events; check that each query returned exactly its `totalCount`;
4. fetch by id the studies subscribers follow (`nct_ids`) that no query reaches and we
   do not track yet (no full poll needed: the queries did not change);
5. re-read by id (`filter.ids`) the tracked studies the queries did not return, so a
   study that left the query is recorded as such and keeps being followed; in a full
   reconciliation, confirm the ones the registry no longer has one by one;
6. hold the run's events for review if an implausible share of studies changed;
7. record the run as ok. Only an ok run moves the next window forward, so a failed or
   killed poll is simply covered again by the next one; since every page compares with
   what is stored, nothing is recorded twice.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from monitor import store
from monitor.config import Settings
from monitor.core.classify import Classifier
from monitor.core.domain import NCT_RE, PollSummary, RunOutcome
from monitor.core.normalize import (
    RecordError,
    canonical_json,
)
from monitor.gc_relax import gc_relaxed
from monitor.registry.client import ApiError, ApiNotFound, CtGovClient, Record
from monitor.store import Session, locking
from monitor.store.db import Database
from monitor.tracking.overlap import prefetched
from monitor.tracking.pages import PageWriter
from monitor.tracking.reclassify import reclassify

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None, str], None]  # (studies processed, expected, query name)


class PollStopped(Exception):
    """A stop was asked for (SIGTERM to the service or the command): the poll ends between
    two pages, each already committed whole, and the next poll covers the rest."""


class IncompleteResult(ApiError):
    """The registry returned fewer or more studies than it said it had."""


# The collector is relaxed during a poll (monitor.gc_relax) and counts objects, not bytes:
# a library's reference cycle that holds a large buffer (httpx's did, a page's body) would
# keep it until the poll ends. A young-generation pass every few pages bounds that too,
# for a few milliseconds a page.
_PAGES_PER_COLLECTION = 10


def utcnow() -> datetime:
    """Naive UTC: the one convention for every timestamp we store (SQLite keeps no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


def query_hash(settings: Settings) -> str:
    return hashlib.sha256(canonical_json([q.model_dump() for q in settings.queries])).hexdigest()


# The one field an ids-only search asks for (the API takes the path as well as "NCTId").
ID_FIELD = "protocolSection.identificationModule.nctId"


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _window_param(params: dict[str, str], window_start: str | None) -> dict[str, str]:
    """Add the incremental date window to a query, keeping any filter.advanced it has."""
    if not window_start:
        return params
    clause = f"AREA[LastUpdatePostDate]RANGE[{window_start},MAX]"
    out = dict(params)
    existing = out.get("filter.advanced")
    out["filter.advanced"] = f"({existing}) AND {clause}" if existing else clause
    return out


class Syncer(PageWriter):
    """One poll of the registry into the database. The CLI and the scheduler both call `poll()`."""

    def __init__(
        self,
        db: Database,
        client: CtGovClient,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        progress: ProgressCallback | None = None,
        classifier: Classifier | None = None,
    ) -> None:
        self.db, self.client, self.settings = db, client, settings
        self.now = now
        self.progress = progress
        self._should_stop: Callable[[], bool] = lambda: False
        self.classifier = classifier or Classifier.from_settings(settings)

    # -- the use case ------------------------------------------------------------

    def poll(self, *, full: bool = False, should_stop: Callable[[], bool] | None = None) -> PollSummary:
        """Run one poll. Raises locking.LockBusy if another writer is active; any other
        failure is recorded on the run and returned in the summary. `should_stop` is asked
        after every page: when it says yes the run ends as "stopped" (not a success, so the
        next poll reads the same window again). The garbage collector is relaxed for the
        poll's span (monitor.gc_relax)."""
        self._should_stop = should_stop or (lambda: False)
        with locking.exclusive(self.db.engine), gc_relaxed():
            return self._poll_locked(full=full)

    def _check_stop(self) -> None:
        if self._should_stop():
            raise PollStopped("stopped on request before the poll finished; the next poll covers the rest")

    def _poll_locked(self, *, full: bool) -> PollSummary:
        t0 = time.monotonic()
        requests_before = self.client.requests
        qhash = query_hash(self.settings)
        with self.db.session() as s:
            # A run that died published nothing (its run was "running"); judge it now as it
            # would have judged itself, in the transaction that ends it.
            crashed = store.mark_crashed_runs(s, self.now())
            tracked = store.count_tracked(s) if crashed else 0
            for run in crashed:
                self._guard(s, run, tracked)
            last_ok = store.last_run(s, outcomes=store.SUCCESSFUL)
            last_full = store.last_run(s, outcomes=(RunOutcome.OK,), mode="full")
            mode = "full" if full or self._full_due(s, last_ok, last_full, qhash) else "incremental"
            run_id = store.start_run(
                s, mode=mode, now=self.now(), host=socket.gethostname(), query_hash=qhash
            )
            last_ts = last_ok.data_timestamp if last_ok else None
            window = None if mode == "full" or last_ok is None else self._window_start(last_ok)
        summary = PollSummary(run_id=run_id, mode=mode, outcome=RunOutcome.RUNNING, window_start=window)
        self._seen: set[str] = set()  # ids processed by this poll (a study two queries reach counts once)
        self._refused: list[str] = []  # records of a shape the API does not document, left as stored
        tracked_before: int | None = None  # set once the queries start: the hold guard's base
        try:
            # A vocabulary or overrides edit since the last poll: relabel from the stored records first.
            reclassify(self.db, self.classifier, run_id=run_id, now=self.now(), only_stale=True)
            info = self.client.version()
            summary.data_timestamp = info.data_timestamp
            if mode == "incremental" and info.data_timestamp and info.data_timestamp == last_ts:
                # Nothing new in the registry; a study just followed by id is fetched all the same.
                tracked_before = self._count_tracked()
                self._follow_new_ids(summary)
                summary.outcome = RunOutcome.OK if summary.fetched else RunOutcome.UNCHANGED
            else:
                tracked_before = self._count_tracked()
                self._run_queries(summary)
                self._follow_new_ids(summary)
                self._recheck_missing(summary)
                summary.outcome = RunOutcome.OK
            if self._refused:
                # Everything else of the poll is stored; failing the run makes the next
                # poll cover its window again, so the record is read once it is mended.
                summary.outcome = RunOutcome.FAILED
                more = f" (and {len(self._refused) - 1} more)" if len(self._refused) > 1 else ""
                summary.error = (
                    f"{len(self._refused)} record(s) refused, the rest stored: {self._refused[0]}{more}"
                )
        except PollStopped as exc:
            summary.outcome, summary.error = RunOutcome.STOPPED, str(exc)
        except Exception as exc:  # recorded on the run; the CLI prints it in one line
            if not isinstance(exc, (ApiError, RecordError)):
                log.exception("poll %s failed", run_id)
            summary.outcome = RunOutcome.FAILED
            summary.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ApiError) else str(exc)
        except BaseException:
            summary.outcome = RunOutcome.FAILED
            summary.error = "interrupted"
            self._finish(summary, t0, requests_before, tracked_before)
            raise
        self._finish(summary, t0, requests_before, tracked_before)
        return summary

    def _full_due(self, s: Session, last_ok: Any, last_full: Any, qhash: str) -> bool:
        if last_ok is None or last_full is None:
            return True
        if last_ok.query_hash != qhash:
            return True  # new or edited watch queries: the date window would miss older studies
        if store.count_stale_fields(s):
            return True  # studies fetched before parts of the record were asked for: fetch all once
        return self.now() - last_full.started_at >= timedelta(days=self.settings.sync.full_every_days)

    def _window_start(self, last_ok: Any) -> str:
        """The registry posts updates with day precision and a lag, so re-read an overlap."""
        base: date
        try:
            base = datetime.fromisoformat(last_ok.data_timestamp).date()
        except (TypeError, ValueError):
            base = last_ok.started_at.date()
        return (base - timedelta(days=self.settings.sync.overlap_days)).isoformat()

    def _count_tracked(self) -> int:
        with self.db.session() as s:
            return store.count_tracked(s)

    # -- fetching ------------------------------------------------------------------

    def _run_queries(self, run: PollSummary) -> None:
        for q in self.settings.queries:
            if q.ids:
                for batch in _chunks(q.ids, self.settings.api.ids_per_request):
                    params = _window_param({"filter.ids": "|".join(batch)}, run.window_start)
                    self._fetch_all(run, q.name, params, in_query=True)
            else:
                searches = q.searches()
                for n, params in enumerate(searches, 1):
                    name = q.name if len(searches) == 1 else f"{q.name} (part {n} of {len(searches)})"
                    self._fetch_all(run, name, _window_param(params, run.window_start), in_query=True)

    def _fetch_all(self, run: PollSummary, name: str, params: dict[str, str], *, in_query: bool) -> set[str]:
        """Every page of one search, each committed as it arrives; checks the count at the end."""
        expected: int | None = None
        fetched = 0
        returned: set[str] = set()
        for page in prefetched(self.client.iter_pages(params)):
            if page.number == 1:
                if page.total_count is None:
                    raise IncompleteResult(f"query {name!r}: the registry did not report totalCount")
                expected = page.total_count
                run.expected += expected
            fetched += len(page.records)
            returned |= self._apply_page(run, page.records, in_query=in_query)
            self._check_stop()
            if page.number % _PAGES_PER_COLLECTION == 0:
                gc.collect(0)  # see _PAGES_PER_COLLECTION
            if self.progress:
                self.progress(run.fetched, run.expected, name)
        if expected is not None and fetched != expected:
            raise IncompleteResult(
                f"query {name!r}: the registry reported {expected} studies but {fetched} were returned; "
                "nothing was marked as gone, and the next poll will cover this window again"
            )
        return returned

    def _follow_new_ids(self, run: PollSummary) -> None:
        """Studies a subscriber follows by NCT id that no watch query reaches and that we do
        not track yet: fetched by id, whatever their update date, and tracked from then on
        (re-read by id with the other tracked studies). Following one forces no full poll:
        the watch queries, and so the query hash, are unchanged."""
        with self.db.session() as s:
            followed = sorted(
                {n for sub in self.settings.subscribers for n in sub.nct_ids} | store.followed_ids(s)
            )
            if not followed:
                return
            known = store.tracked_ids(s, followed)
        # a CTIS trial followed by its EU CT number is CTIS's poll's to read
        new = [n for n in followed if n not in known and n not in self._seen and NCT_RE.match(n)]
        for batch in _chunks(new, self.settings.api.ids_per_request):
            self._fetch_all(run, "studies followed by id", {"filter.ids": "|".join(batch)}, in_query=False)

    def _recheck_missing(self, run: PollSummary) -> None:
        """Tracked studies the queries did not return: re-read by id so none is forgotten.

        An incremental poll asks the registry once which studies changed in its window (ids
        only, every page: a handful of requests whatever is tracked) and reads in full only
        the tracked ones among them; a full poll re-reads every one by id, and so finds
        what was renumbered or withdrawn."""
        with self.db.session() as s:
            missing = [n for n in store.recheck_candidates(s) if n not in self._seen]
        if not missing:
            return
        if run.mode != "full" and run.window_start:
            changed = self._changed_ids(run)
            for batch in _chunks([n for n in missing if n in changed], self.settings.api.ids_per_request):
                self._fetch_all(run, "tracked studies", {"filter.ids": "|".join(batch)}, in_query=False)
            return
        returned: set[str] = set()
        for batch in _chunks(missing, self.settings.api.ids_per_request):
            params = _window_param({"filter.ids": "|".join(batch)}, run.window_start)
            returned |= self._fetch_all(run, "tracked studies", params, in_query=False)
        if run.mode != "full":
            return  # outside the window, silence only means "not updated"
        with self.db.session() as s:
            # a returned record may carry a new id and list the old one as an alias
            still_missing = [
                n
                for n in missing
                if n not in self._seen
                and n not in returned
                and store.load_current(s, [n])[n].merged_into is None
            ]
        for nct in still_missing:
            self._check_stop()
            try:
                raw = self.client.get_study(nct)
            except ApiNotFound:
                self._record_gone(run, nct)
                continue
            self._apply_page(run, [Record.of(raw)], in_query=False)

    def _changed_ids(self, run: PollSummary) -> set[str]:
        """The ids of every study the registry updated in the poll's window, ids only."""
        params = _window_param({}, run.window_start)
        ids: set[str] = set()
        expected: int | None = None
        for page in self.client.iter_pages(params, page_size=1000, fields=[ID_FIELD]):
            if page.number == 1:
                expected = page.total_count
            ids.update(r.nct_id for r in page.records)
            self._check_stop()
        if expected is not None and len(ids) < expected:
            raise IncompleteResult(
                f"the registry reported {expected} studies updated since {run.window_start} but listed "
                f"{len(ids)}; nothing was skipped, and the next poll will cover this window again"
            )
        return ids

    # -- processing ----------------------------------------------------------------

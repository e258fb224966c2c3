"""A poll of the EU CTIS into the database: the same comparison, snapshots and events as
ClinicalTrials.gov's (tracking/pages.py), by CTIS's own means.

1. take the writer lock; a run of CTIS's family ("ctis-full" or "ctis-incremental");
2. each search of `[ctis] searches` (CTIS's full text, all its words), every page, newest
   publication first: a trial is read in full (`/retrieve`) when it is new to ctmonitor,
   when its listing shows an update date later than the record stored, or in a full poll.
   An incremental poll stops a search at the first *whole* page older than the last good
   poll less `overlap_days` (CTIS's order is only roughly by date, so one old trial never
   stops it). CTIS keeps no versions: the records ctmonitor stores are the history;
3. a full poll (the first, a changed list of searches, or every `full_every_days`) reads
   every listed trial and re-reads by number the tracked trials no search listed (a
   trial CTIS no longer gives is recorded as gone);
4. the hold guard, judged against the CTIS trials tracked; the run ends ok only when every
   search was read whole, so a failed or killed poll is covered again by the next.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from monitor import store
from monitor.config import Settings
from monitor.core.classify import Classifier
from monitor.core.ctis import CTIS_NUMBER
from monitor.core.domain import PollSummary, RunOutcome
from monitor.core.normalize import RecordError
from monitor.gc_relax import gc_relaxed
from monitor.registry.answers import ApiError, Record
from monitor.registry.ctis import CtisClient, TrialUnavailable
from monitor.store import locking
from monitor.store.db import Database
from monitor.tracking.pages import PageWriter
from monitor.tracking.sync import PollStopped, utcnow

log = logging.getLogger(__name__)
REGISTRY = "ctis"


def ctis_query_hash(settings: Settings) -> str:
    """The searches' identity: a changed list makes the next poll a full one (and a baseline)."""
    basis = json.dumps(settings.ctis.searches, sort_keys=True).encode()
    return "ctis:" + hashlib.sha256(basis).hexdigest()[:32]


class CtisSyncer(PageWriter):
    """One poll of CTIS. The CLI and the scheduler both call `poll()`."""

    def __init__(
        self,
        db: Database,
        client: CtisClient,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        classifier: Classifier | None = None,
    ) -> None:
        self.db, self.client, self.settings = db, client, settings
        self.now = now
        self.classifier = classifier or Classifier.from_settings(settings)
        self._should_stop: Callable[[], bool] = lambda: False

    def poll(self, *, full: bool = False, should_stop: Callable[[], bool] | None = None) -> PollSummary:
        self._should_stop = should_stop or (lambda: False)
        with locking.exclusive(self.db.engine), gc_relaxed():
            return self._poll_locked(full=full)

    def _check_stop(self) -> None:
        if self._should_stop():
            raise PollStopped(
                "stopped on request before the CTIS poll finished; the next poll covers the rest"
            )

    def _poll_locked(self, *, full: bool) -> PollSummary:
        t0, requests_before = time.monotonic(), self.client.requests
        cfg = self.settings.ctis
        qhash = ctis_query_hash(self.settings)
        with self.db.session() as s:
            crashed = store.mark_crashed_runs(s, self.now(), store.CTIS_MODES)
            tracked = store.count_tracked(s, REGISTRY) if crashed else 0
            for run in crashed:
                self._guard(s, run, tracked)
            last_ok = store.last_run(s, outcomes=store.SUCCESSFUL, modes=store.CTIS_MODES)
            last_full = store.last_run(s, outcomes=(RunOutcome.OK,), modes=("ctis-full",))
            due = (
                last_ok is None
                or last_full is None
                or last_ok.query_hash != qhash
                or self.now() - last_full.started_at >= timedelta(days=cfg.full_every_days)
            )
            mode = "ctis-full" if full or due else "ctis-incremental"
            window = None
            if mode == "ctis-incremental" and last_ok is not None:
                window = (last_ok.started_at.date() - timedelta(days=cfg.overlap_days)).isoformat()
            run_id = store.start_run(
                s, mode=mode, now=self.now(), host=socket.gethostname(), query_hash=qhash
            )
        summary = PollSummary(run_id=run_id, mode=mode, outcome=RunOutcome.RUNNING, window_start=window)
        self._seen, self._refused = set(), []
        self._unavailable: list[str] = []
        tracked_before: int | None = None
        try:
            with self.db.session() as s:
                tracked_before = store.count_tracked(s, REGISTRY)
                stored = store.update_dates(s, REGISTRY)
            listed: set[str] = set()
            for search in cfg.searches:
                self._search(summary, search, stored, listed)
            self._follow_new_numbers(summary, listed)
            if mode == "ctis-full":
                self._recheck_unlisted(summary, listed)
            summary.expected = len(listed)
            summary.outcome = RunOutcome.OK
            if self._refused:
                summary.outcome = RunOutcome.FAILED
                summary.error = f"{len(self._refused)} record(s) refused, the rest stored: {self._refused[0]}"
            elif self._unavailable:
                summary.error = (
                    f"CTIS gave no record for {len(self._unavailable)} listed trial(s) "
                    f"(e.g. {self._unavailable[0]}); they are read again at the next poll"
                )
        except PollStopped as exc:
            summary.outcome, summary.error = RunOutcome.STOPPED, str(exc)
        except (ApiError, RecordError) as exc:
            summary.outcome, summary.error = RunOutcome.FAILED, str(exc)
        except Exception as exc:
            log.exception("CTIS poll %s failed", run_id)
            summary.outcome, summary.error = RunOutcome.FAILED, f"{type(exc).__name__}: {exc}"
        except BaseException:
            summary.outcome, summary.error = RunOutcome.FAILED, "interrupted"
            self._finish(summary, t0, requests_before, tracked_before)
            raise
        self._finish(summary, t0, requests_before, tracked_before)
        return summary

    def _search(self, run: PollSummary, search: str, stored: dict[str, str | None], listed: set[str]) -> None:
        full = run.mode == "ctis-full"
        for page in self.client.search({"containAll": search}):
            self._check_stop()
            window = "" if full else run.window_start or ""
            if window and page.trials and all(t.newest and t.newest < window for t in page.trials):
                return  # a whole page older than the window: the rest is older still
            wanted = []
            for t in page.trials:
                if t.number in listed:
                    continue
                listed.add(t.number)
                known = stored.get(t.number, "")
                if full or t.number not in stored or (t.newest and t.newest > (known or "")):
                    wanted.append(t.number)
            self._read(run, wanted, in_query=True)

    def _read(self, run: PollSummary, numbers: list[str], *, in_query: bool) -> None:
        records: list[Record] = []
        for number in numbers:
            self._check_stop()
            try:
                records.append(self.client.retrieve(number))
            except TrialUnavailable as exc:
                log.warning("%s", exc)
                self._unavailable.append(number)
        if records:
            self._apply_page(run, records, in_query=in_query)

    def _follow_new_numbers(self, run: PollSummary, listed: set[str]) -> None:
        """CTIS trials readers follow by EU CT number that no search lists and that are not
        tracked yet: read by number, and tracked from then on."""
        with self.db.session() as s:
            followed = {n for sub in self.settings.subscribers for n in sub.nct_ids} | store.followed_ids(s)
            wanted = sorted(n for n in followed if CTIS_NUMBER.match(n) and n not in listed)
            known = store.tracked_ids(s, wanted) if wanted else set()
        self._read(run, [n for n in wanted if n not in known], in_query=False)

    def _recheck_unlisted(self, run: PollSummary, listed: set[str]) -> None:
        """Tracked CTIS trials no search listed: read again by number (left the searches),
        or recorded as gone when CTIS no longer gives them."""
        with self.db.session() as s:
            missing = [
                n for n in store.recheck_candidates(s, REGISTRY) if n not in listed and n not in self._seen
            ]
        for number in missing:
            self._check_stop()
            try:
                record = self.client.retrieve(number)
            except TrialUnavailable:
                self._record_gone(run, number)
                continue
            self._apply_page(run, [record], in_query=False)

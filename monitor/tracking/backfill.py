"""Backfill: the registry's own version history of a study, stored as snapshots and events.

A poll only sees a study from the day ctmonitor first fetched it. The registry keeps every
version of every record; its web site reads them through undocumented endpoints (see
`CtGovClient.history_index` / `history_version`). For each study this:

1. reads the version list once (number, date, status) and keeps it whole on the
   `backfills` row: it is the status timeline from registration;
2. fetches, oldest first, each version that predates our first polled record (the
   "cut"), stores it as a snapshot with `origin="backfill"`, its registry version
   number and a negative seq (`BACKFILL_SEQ_BASE + version`, so seq still orders a
   study's snapshots in time), and the changes from the version before as events marked
   `backfill`; each version is its own transaction, which is what makes an interrupted
   run resume where it stopped, with nothing fetched twice and nothing recorded twice;
3. links the last backfilled version to our first polled record: a difference there is a
   change the registry published before our first poll saw the study, recorded as a
   backfilled event on that first snapshot.

Backfilled events are history, not news: digests and report periods never count them.
Versions published between two of our polls are not fetched (the polls recorded the net
change); the version list still shows their statuses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor import store
from monitor.core import ctis_history
from monitor.core.diff import diff
from monitor.core.domain import FieldChange, Study
from monitor.core.normalize import RecordError, content_hash, raw_hash, raw_json, to_study
from monitor.core.registrations import registry_of
from monitor.registry.client import (
    ApiError,
    CtGovClient,
    HistoryUnavailable,
    RegistryVersion,
    RetriesExhausted,
)
from monitor.store import locking
from monitor.store.db import Database
from monitor.tracking.sync import utcnow

log = logging.getLogger(__name__)

# Backfilled version N is stored as seq BACKFILL_SEQ_BASE + N: before every polled snapshot (1, 2...).
BACKFILL_SEQ_BASE = -1_000_000
LOCK = "backfill"

ProgressCallback = Callable[[str, str], None]  # (nct id, what happened)


def backfill_seq(version: int) -> int:
    return BACKFILL_SEQ_BASE + version


@dataclass(slots=True)
class StudyBackfill:
    """What one study's backfill did. outcome: done | empty | failed | skipped | stopped."""

    nct_id: str
    outcome: str
    versions_listed: int = 0
    versions_stored: int = 0
    events: int = 0
    requests: int = 0
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "nct_id": self.nct_id,
            "outcome": self.outcome,
            "versions_listed": self.versions_listed,
            "versions_stored": self.versions_stored,
            "events": self.events,
            "requests": self.requests,
            "detail": self.detail,
        }


@dataclass(slots=True)
class BackfillSummary:
    studies: list[StudyBackfill] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    # Why the run stopped before the end: the registry withdrew the endpoint, or stopped answering.
    stopped: str | None = None

    def count(self, outcome: str) -> int:
        return sum(1 for s in self.studies if s.outcome == outcome)

    @property
    def events(self) -> int:
        return sum(s.events for s in self.studies)

    @property
    def versions(self) -> int:
        return sum(s.versions_stored for s in self.studies)

    @property
    def ok(self) -> bool:
        return self.stopped is None and self.count("failed") == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stopped": self.stopped,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "versions_stored": self.versions,
            "events": self.events,
            "studies": [s.to_json() for s in self.studies],
        }

    def text(self) -> str:
        parts = [
            f"{len(self.studies)} studies: {self.count('done')} backfilled, {self.count('empty')} with no "
            f"earlier history, {self.count('failed')} failed, {self.count('skipped')} skipped",
            f"{self.versions} registry versions stored, {self.events} backfilled changes",
            f"{self.requests} requests in {self.seconds:.1f} s",
        ]
        text = "; ".join(parts) + "."
        if self.stopped:
            text += f" Stopped early: {self.stopped}."
        return text


def cut_version(versions: Sequence[RegistryVersion], first_posted_update: str | None) -> int | None:
    """The last registry version dated on or before our first polled record's last-update date.

    The version list's date is the day a version was submitted, which is on or before the
    day it was posted, so comparing with the record's post date never leaves out the
    version our first poll saw. (A version listed with a date this early but posted later
    is caught when its body is read: see `Backfiller`.) None: nothing predates it.
    """
    if not first_posted_update:
        return versions[-1].version if versions else None
    dated = [v.version for v in versions if v.date and v.date <= first_posted_update]
    return max(dated) if dated else None


# Studies in a row refused on both history endpoints before a run takes the registry to
# have withdrawn record histories (one refused study is skipped and the run goes on).
REFUSALS_BEFORE_STOPPING = 3


def _not_now(nct: str, first: Any, row: Any) -> StudyBackfill | None:
    """Why a study's history is not taken now: not polled yet, or taken already."""
    if first is None:
        return StudyBackfill(nct, "skipped", detail="not polled yet: nothing to attach a history to")
    if row is not None and row.status in store.BACKFILL_FINISHED:
        return StudyBackfill(nct, "skipped", detail="already backfilled")
    return None


class Backfiller:
    """Fetches and stores registry histories. The CLI and the scheduler both call `run()`."""

    def __init__(
        self,
        db: Database,
        client: CtGovClient,
        *,
        now: Callable[[], datetime] = utcnow,
        progress: ProgressCallback | None = None,
        followed: Sequence[str] = (),
    ) -> None:
        self.db, self.client, self.now = db, client, now
        self.progress = progress
        self.followed = list(followed)  # studies subscribers follow by id: backfilled in scope or not

    def run(
        self,
        nct_ids: Sequence[str] | None = None,
        *,
        limit: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> BackfillSummary:
        """Backfill the given studies, or the candidates (at most `limit`). Raises LockBusy if
        another backfill runs. Stops early, saying why, if the registry withdraws the history
        endpoints or stops answering; a stop request is honoured between two versions."""
        t0, requests0 = time.monotonic(), self.client.requests
        summary = BackfillSummary()
        refused = 0  # studies in a row whose history both endpoints refused
        with locking.exclusive(self.db.engine, LOCK):
            if nct_ids is None:
                with self.db.session() as s:
                    nct_ids = store.backfill_candidates(s, limit, also=self.followed)
            for nct in nct_ids:
                if should_stop():
                    summary.stopped = "asked to stop"
                    break
                before = self.client.requests
                try:
                    result = self._study(nct, should_stop)
                except HistoryUnavailable as exc:
                    # One study refused on both endpoints is marked and skipped; several in a
                    # row mean the registry has withdrawn record histories: stop there.
                    refused += 1
                    self._failed(nct, str(exc))
                    result = StudyBackfill(nct, "failed", detail=str(exc))
                    if refused >= REFUSALS_BEFORE_STOPPING:
                        result.requests = self.client.requests - before
                        summary.studies.append(result)
                        summary.stopped = (
                            f"the registry no longer offers record histories, it seems: {refused} studies "
                            f"in a row were refused (the last: {exc})"
                        )
                        break
                except RetriesExhausted as exc:
                    self._failed(nct, str(exc))
                    summary.studies.append(
                        StudyBackfill(nct, "failed", requests=self.client.requests - before, detail=str(exc))
                    )
                    summary.stopped = str(exc)
                    break
                except (ApiError, RecordError) as exc:
                    self._failed(nct, str(exc))
                    result = StudyBackfill(nct, "failed", detail=str(exc))
                else:
                    refused = 0
                result.requests = self.client.requests - before
                if result.requests:
                    self._count_requests(nct, result.requests)
                summary.studies.append(result)
                if self.progress:
                    self.progress(nct, result.outcome)
                if result.outcome == "stopped":
                    summary.stopped = "asked to stop"
                    break
        summary.requests = self.client.requests - requests0
        summary.seconds = time.monotonic() - t0
        return summary

    # -- one study ---------------------------------------------------------------

    def _failed(self, nct: str, error: str) -> None:
        with self.db.session() as s:
            store.record_backfill_failure(s, nct, error, self.now())

    def _count_requests(self, nct: str, n: int) -> None:
        with self.db.session() as s:
            store.count_backfill_requests(s, nct, n)

    def _study(self, nct: str, should_stop: Callable[[], bool]) -> StudyBackfill:
        if registry_of(nct) == "ctis":
            return self._ctis(nct)
        with self.db.session() as s:
            first = store.first_polled_snapshot(s, nct)
            row = store.backfill_state(s, nct)
            if (skipped := _not_now(nct, first, row)) is not None:
                return skipped
            listed = [RegistryVersion.from_json(v) for v in row.versions] if row and row.versions else None
        first_study = to_study(store.decompress(first.raw))
        bound = first_study.last_update_post_date or first.fetched_at.date().isoformat()

        if listed is None:
            listed = self.client.history_index(nct)
            cut = cut_version(listed, bound)
            with self.db.session() as s:
                store.start_backfill(s, nct, [v.to_json() for v in listed], cut, self.now())
        with self.db.session() as s:
            cut, through = store.resume_backfill(s, nct)
        result = StudyBackfill(nct, "done", versions_listed=len(listed))

        if not listed or cut is None:
            detail = (
                "the registry lists no versions"
                if not listed
                else "no registry version predates our first polled record"
            )
            self._finish(nct, "empty", detail)
            result.outcome, result.detail = "empty", detail
            return result
        previous, cut = self._walk(nct, listed, first_study, cut, through, should_stop, result)
        if result.outcome == "stopped":
            return result
        if previous is None:  # every listed version turned out to postdate our first record
            self._finish(nct, "empty", "no registry version predates our first polled record")
            result.outcome = "empty"
            return result
        link = diff(previous, first_study)
        with self.db.session() as s:
            if link:
                store.add_events(
                    s,
                    nct,
                    link,
                    run_id=None,
                    now=self.now(),
                    registry_date=first_study.last_update_post_date,
                    origin="backfill",
                    snapshot_seq=first.seq,
                )
            else:  # our first polled record is that registry version: say so (digests link versions)
                store.name_snapshot_version(s, nct, first.seq, cut)
            store.finish_backfill(s, nct, "done", self.now(), None, events=len(link))
        result.events += len(link)
        return result

    def _ctis(self, nct: str) -> StudyBackfill:
        """An EU CTIS trial's own history: its applications and its member states' status
        histories as its first polled record lists them, each dated by its own date (what
        came later, our polls saw). No request: the record is stored. One transaction."""
        with self.db.session() as s:
            first = store.first_polled_snapshot(s, nct)
            row = store.backfill_state(s, nct)
            if (skipped := _not_now(nct, first, row)) is not None:
                return skipped
            try:
                record = store.decompress(first.raw)
            except ValueError as exc:
                raise RecordError(f"{nct}: the stored CTIS record is not JSON ({exc})") from None
            items = ctis_history.history(record if isinstance(record, dict) else {})
            store.store_record_history(s, nct, items, snapshot_seq=first.seq, now=self.now())
        if not items:
            return StudyBackfill(nct, "empty", detail="the CTIS record lists no applications or statuses")
        return StudyBackfill(nct, "done", events=len(items))

    def _walk(
        self,
        nct: str,
        listed: Sequence[RegistryVersion],
        first_study: Study,
        cut: int,
        through: int,
        should_stop: Callable[[], bool],
        result: StudyBackfill,
    ) -> tuple[Study | None, int]:
        """Fetch and store the versions after `through` up to the cut, one transaction each.
        Returns the last version stored (None: none predates our first record) and the cut,
        which ends early at the first version posted after our first polled record."""
        previous: Study | None = None
        if through >= 0:
            with self.db.session() as s:
                previous = store.stored_studies(s, [(nct, backfill_seq(through))]).get(nct)
        dates = {v.version: v.date for v in listed}
        for version in range(through + 1, cut + 1):
            if should_stop():
                result.outcome, result.detail = "stopped", f"stopped after version {version - 1}"
                return previous, cut
            body = self.client.history_version(nct, version)
            study = to_study(body)
            if study.nct_id != nct:
                raise RecordError(f"version {version} of {nct} carries the id {study.nct_id}")
            if (
                first_study.last_update_post_date
                and study.last_update_post_date
                and study.last_update_post_date > first_study.last_update_post_date
            ):
                # Posted after the record our first poll saw: polls cover it. The cut ends here.
                cut = version - 1
                with self.db.session() as s:
                    store.set_backfill_cut(s, nct, cut)
                break
            changes = diff(previous, study) if previous is not None else []
            registry_date = study.last_update_post_date or dates.get(version)
            self._store_version(nct, version, body, study, changes, registry_date)
            result.versions_stored += 1
            result.events += len(changes)
            previous = study
        return previous, cut

    def _store_version(
        self,
        nct: str,
        version: int,
        body: dict[str, Any],
        study: Study,
        changes: Sequence[FieldChange],
        registry_date: str | None,
    ) -> None:
        """One version, its events and the resume point, in one transaction."""
        data = raw_json(body)
        with self.db.session() as s:
            store.store_backfill_version(
                s,
                nct,
                version=version,
                seq=backfill_seq(version),
                raw_hash=raw_hash(data),
                content_hash=content_hash(study),
                raw=store.compress(data),
                last_update_post_date=study.last_update_post_date or registry_date,
                changes=changes,
                registry_date=registry_date,
                now=self.now(),
            )

    def _finish(self, nct: str, status: str, detail: str | None) -> None:
        with self.db.session() as s:
            store.finish_backfill(s, nct, status, self.now(), detail)

"""Writing a page of records: each compared with what is stored, decided, and written with
its snapshot and events in one transaction. Shared by every registry's poll (the
ClinicalTrials.gov sync, the CTIS poll), so a study from either is compared, classified
and told alike; and the guard against registry-wide format shifts, judged per registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from monitor import store
from monitor.config import Settings
from monitor.core.classify import Classifier
from monitor.core.decide import Incoming, decide, match
from monitor.core.decide import untouched as is_untouched
from monitor.core.domain import EventKind, FieldChange, PollSummary, Study
from monitor.core.normalize import RecordError, content_hash, raw_hash
from monitor.core.records import study_of
from monitor.registry.answers import Record
from monitor.store import Session
from monitor.store.db import Database
from monitor.tracking import trials
from monitor.tracking.overlap import in_background

# studies written by one poll past which the database's planner statistics are refreshed
ANALYZE_AFTER = 1000

log = logging.getLogger(__name__)


class PageWriter:
    """What a poll needs to store records: the database, settings, clock and classifier;
    `_seen` (ids processed by this poll) and `_refused` (records of an undocumented shape)."""

    db: Database
    settings: Settings
    now: Callable[[], datetime]
    classifier: Classifier
    _seen: set[str]
    _refused: list[str]
    client: Any  # the registry's client (its request count goes on the run)

    def _apply_page(self, run: PollSummary, records: Iterable[Record], *, in_query: bool) -> set[str]:
        """Compare and store one page in one transaction. Returns the ids it carried.

        A record whose bytes hash as before is not even parsed, let alone normalized: that
        is most records in a reconciliation or an overlapping incremental window. The
        bytes hashed, compressed and kept are the registry's own.
        """
        items: list[tuple[str, Record]] = []
        returned: set[str] = set()
        for raw in records:
            nct = raw.nct_id
            returned.add(nct)
            run.fetched += 1
            if nct in self._seen:
                continue  # reached by two queries; processed once per run
            self._seen.add(nct)
            items.append((nct, raw))
        if not items:
            return returned
        now = self.now()
        with self.db.session() as s:
            current = store.load_current(s, [nct for nct, _ in items])
            untouched: list[str] = []
            fresh: list[tuple[Record, bytes, str]] = []
            for nct, raw in items:
                rhash = raw_hash(raw.raw)
                if is_untouched(current.get(nct), rhash, in_query):
                    untouched.append(nct)
                else:
                    fresh.append((raw, raw.raw, rhash))
            # Compressed on another thread while these are normalized and classified (zstd
            # releases the GIL); a record whose bytes did not move is compressed for nothing, rarely.
            packed = in_background(store.compress_many, [blob for _, blob, _ in fresh]) if fresh else list
            pending = []
            for raw, blob, rhash in fresh:
                try:
                    pending.append((study_of(raw.nct_id, blob), blob, rhash))
                except RecordError as exc:
                    # Refused alone: the rest of the page is stored, this study keeps what
                    # we had (its bytes are not recorded as seen, so every poll reads it
                    # again), and the run fails at its end, naming it (see _poll_locked).
                    log.warning("%s", exc)
                    message = str(exc)
                    self._refused.append(message if raw.nct_id in message else f"{raw.nct_id}: {message}")
            # Ids a new record lists as its aliases may be studies we track under the old id.
            aliases = {a for st, _, _ in pending if st.nct_id not in current for a in st.aliases}
            if aliases - current.keys():
                current.update(store.load_current(s, aliases - current.keys()))
            incoming = [match(st, blob, rhash, content_hash(st), current) for st, blob, rhash in pending]
            # The previous version is re-read only for records whose tracked content moved.
            needed = {(i.base.nct_id, i.base.snapshot_count) for i in incoming if i.needs_previous}
            previous = store.stored_studies(s, needed) if needed else {}
            writes: list[store.StudyWrite] = []
            for item in incoming:
                write = self._decide(item, previous, in_query=in_query)
                if write is None:
                    untouched.append(item.study.nct_id)
                else:
                    writes.append(write)
            by_hash = dict(zip((rhash for _, _, rhash in fresh), packed(), strict=True))
            for w in writes:
                w.raw_compressed = by_hash[w.raw_hash]
            for w in writes:
                if w.merges is not None:  # the id it replaces is kept, marked as merged into this one
                    store.mark_merged(s, w.merges, w.study.nct_id)
            store.write_batch(s, writes, run_id=run.run_id, now=now)
            store.touch(s, untouched, now)
        for w in writes:
            run.baselined += w.baselined
            if w.is_new and not any(c.kind == EventKind.ID_CHANGED for c in w.changes):
                run.new_studies += 1
            elif w.changes:
                run.changed_studies += 1
        return returned

    def _decide(
        self, item: Incoming, previous: dict[str, Study], *, in_query: bool
    ) -> store.StudyWrite | None:
        """Classify the record and decide it (monitor.core.decide); None: untouched."""
        label = self.classifier.classify(item.study)
        prior = previous.get(item.base.nct_id) if item.needs_previous else None
        d = decide(item, prior, label, in_query=in_query)
        if d is None:
            return None
        return store.StudyWrite(
            item.study,
            item.blob,
            item.rhash,
            item.chash,
            in_query,
            is_new=d.is_new,
            snapshot_seq=d.snapshot_seq,
            changes=d.changes,
            classification=store.classification_values(label, self.classifier.version),
            merges=d.merges,
            baselined=bool(d.baseline),
        )

    def _finish(
        self, summary: PollSummary, t0: float, requests_before: int, tracked_before: int | None
    ) -> None:
        """End the run: its events are published by this transaction, or held by it.

        A failed run is judged like a successful one: what it stored before failing is as
        real, and as likely to be a format shift."""
        summary.requests = self.client.requests - requests_before
        summary.seconds = time.monotonic() - t0
        with self.db.session() as s:
            # one trial, several registrations: joined again from what is stored now, and a
            # trial whose statuses came to disagree (or agree again) is a change of this run
            told = trials.regroup(s, run_id=summary.run_id, now=self.now())
            if told:
                kind = EventKind.ACROSS_REGISTRIES.value
                summary.events_by_kind[kind] = summary.events_by_kind.get(kind, 0) + told
            if tracked_before is not None:
                summary.held = self._guard(s, summary.run_id, tracked_before)
            store.finish_run(s, summary, self.now())
        written = summary.new_studies + summary.changed_studies
        if written >= ANALYZE_AFTER or (tracked_before and written * 10 >= tracked_before >= ANALYZE_AFTER):
            # a first sync, or a large share of the studies rewritten: the planner's view of
            # the tables is refreshed before readers count them (store.refresh_statistics)
            with self.db.session() as s:
                store.refresh_statistics(s)

    def _record_gone(self, run: PollSummary, nct: str) -> None:
        now = self.now()
        with self.db.session() as s:
            cur = store.load_current(s, [nct])[nct]
            change = FieldChange(EventKind.GONE, "registry", before=cur.overall_status, after=None)
            store.add_events(
                s,
                nct,
                [change],
                run_id=run.run_id,
                now=now,
                registry_date=cur.last_update_post_date,
            )
            store.mark_gone(s, nct)
        run.changed_studies += 1

    def _guard(self, s: Session, run_id: int, tracked: int) -> bool:
        """The guard against registry-wide format shifts, run in the transaction that ends a run.

        A shift looks like everything changed at once. The run is judged together with the
        failed or crashed runs since the last successful poll: a shift interrupted part-way
        and completed by the retry is still one shift. Holds the events of all of them (a
        failed part that stayed under the threshold alone was published when it ended).
        """
        runs = [*store.unsuccessful_before(s, run_id), run_id]
        changed = store.changed_studies_in_runs(s, runs)
        sync = self.settings.sync
        if tracked < sync.hold_min_studies or changed / tracked <= sync.hold_threshold:
            return False
        for r in runs:
            store.hold_run_events(s, r)
        log.warning(
            "run %s: %s of %s tracked studies changed since the last successful poll; events held for review",
            run_id,
            changed,
            tracked,
        )
        return True

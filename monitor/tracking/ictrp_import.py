"""`ctmonitor import ictrp FILE.xml`: the trials of a WHO ICTRP export that the watch matches,
tracked like any study (ChiCTR, jRCT and the other registers ctmonitor does not poll).

The export has no API behind it: a person downloads it from the ICTRP portal. It is read
streaming (`iterparse`, each `<Trial>` cleared once read, so a file of hundreds of MB
takes the memory of one batch); a trial is kept when ctmonitor already tracks it or when
its classification puts it in scope (the watch's meaning, whatever search made the file);
trials of registers polled directly (ClinicalTrials.gov, CTIS, EUCTR) come from those
registers and are skipped. Each kept trial goes through the same page writer as a poll:
the first import of a trial is the starting picture, a later import records what
changed, dated by the record's own `Last_Refreshed_on`. The run is recorded with the
file's name (`status` shows what was imported when, and from which file).
"""

from __future__ import annotations

import hashlib
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson

from monitor import store
from monitor.config import Settings
from monitor.core import ictrp
from monitor.core.classify import Classifier
from monitor.core.domain import PollSummary, RunOutcome, UserError
from monitor.core.registrations import registry_of
from monitor.gc_relax import gc_relaxed
from monitor.registry.answers import Record
from monitor.store import locking
from monitor.store.db import Database
from monitor.tracking.pages import PageWriter
from monitor.tracking.sync import utcnow

ROOT = "Trials_downloaded_from_ICTRP"
MODE = "ictrp-import"
BATCH = 200
# The registries whose trials come from ICTRP exports (core.registrations' keys).
IMPORTED = ("chictr", "jrct", "eudract", "isrctn", "anzctr", "drks")


class IctrpImport(PageWriter):
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        classifier: Classifier | None = None,
    ) -> None:
        self.db, self.settings, self.now = db, settings, now
        self.classifier = classifier or Classifier.from_settings(settings)

    def run(self, path: Path) -> PollSummary:
        if not path.is_file():
            raise UserError(f"no such file: {path}")
        with locking.exclusive(self.db.engine), gc_relaxed():
            return self._run(path)

    def _run(self, path: Path) -> PollSummary:
        t0 = time.monotonic()
        digest = hashlib.sha256(path.name.encode()).hexdigest()[:16]
        with self.db.session() as s:
            store.mark_crashed_runs(s, self.now(), (MODE,))
            run_id = store.start_run(
                s, mode=MODE, now=self.now(), host=socket.gethostname(), query_hash=f"ictrp:{digest}"
            )
            store.set_run_source(s, run_id, path.name)
        summary = PollSummary(run_id=run_id, mode=MODE, outcome=RunOutcome.RUNNING)
        self._seen, self._refused = set(), []
        self.skipped = 0
        try:
            self._read(path, summary)
            summary.outcome = RunOutcome.FAILED if self._refused else RunOutcome.OK
            if self._refused:
                summary.error = f"{len(self._refused)} trial(s) refused, the rest stored: {self._refused[0]}"
        except ET.ParseError as exc:
            summary.outcome = RunOutcome.FAILED
            summary.error = (
                f"{path.name} is not a whole ICTRP XML export ({exc}); what was read before is stored"
            )
        except UserError as exc:
            summary.outcome, summary.error = RunOutcome.FAILED, str(exc)
        summary.seconds = time.monotonic() - t0
        with self.db.session() as s:
            store.finish_run(s, summary, self.now())
        return summary

    def _read(self, path: Path, summary: PollSummary) -> None:
        batch: list[Record] = []
        with self.db.session() as s:
            tracked = {n for r in IMPORTED for n in store.recheck_candidates(s, r)}
        events = ET.iterparse(path, events=("start", "end"))
        _, root = next(events)
        if root.tag != ROOT:
            raise UserError(f"{path.name} is not an ICTRP export (its root is <{root.tag}>, not <{ROOT}>)")
        try:
            for event, elem in events:
                if event != "end" or elem.tag != "Trial":
                    continue
                summary.expected += 1
                fields = ictrp.fields_of({child.tag: child.text for child in elem})
                elem.clear()
                root.clear()  # the parsed trials are not kept: memory stays that of one batch
                raw_id = fields.get("TrialID", "")
                number = ictrp.trial_id(raw_id)
                if not raw_id or ictrp.polled_directly(raw_id) or registry_of(number) in ("ctgov", "ctis"):
                    self.skipped += 1
                    continue
                blob = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
                if number not in tracked:
                    try:
                        label = self.classifier.classify(ictrp.from_bytes(blob))
                    except ictrp.IctrpRecordError:
                        self.skipped += 1
                        continue
                    if not label.in_scope:
                        continue
                batch.append(Record(blob, number))
                if len(batch) >= BATCH:
                    self._apply_page(summary, batch, in_query=True)
                    batch = []
        except ET.ParseError:  # a file cut short: what was read before the cut is stored all the same
            if batch:
                self._apply_page(summary, batch, in_query=True)
            raise
        if batch:
            self._apply_page(summary, batch, in_query=True)

"""Search a literature service for every tracked study's registry numbers, and record what it found.

One run per service (PubMed, Europe PMC). Each study is searched by its NCT number and the
other registries' numbers its record names (core.literature.search_terms). A study the
service never searched gets its whole history searched once, recorded as a baseline (its
papers listed, nothing told: they are not news); later runs search only what was indexed
or changed since the last search, less an overlap, so a paper indexed late is still found.

Numbers are searched a batch at a time (one request per batch, not per study). A paper is
given to the studies whose numbers its record names; a paper the service returned for a
batch whose record names none of them (the number is in its full text, which the answer
does not carry) is placed by asking again one number at a time, for that batch only.

A batch is written in one transaction: its papers, links, events and the searched-through
date of every study whose numbers are all done. A crash repeats at most the batch it was
in, and a link already stored is never told twice; a failure ends the run with what was
stored kept, and the next run goes on from there.
"""

from __future__ import annotations

import socket
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from monitor import store
from monitor.core.literature import SOURCES, Publication, search_terms
from monitor.registry.answers import ApiError
from monitor.store.db import Database


class LiteratureClient(Protocol):
    name: str
    requests: int

    def find(self, numbers: Sequence[str], since: date | None, until: date) -> list[Publication]: ...


@dataclass
class LiteratureSummary:
    """One run of one service, as `status`, the CLI and the service tell it."""

    source: str
    run_id: int = 0
    outcome: str = "running"
    studies: int = 0
    baseline: int = 0  # studies searched for the first time (their papers listed, not told)
    requests: int = 0
    found: int = 0
    linked: int = 0
    events: int = 0
    seconds: float = 0.0
    error: str | None = None
    since: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def text(self) -> str:
        name = SOURCES.get(self.source, self.source)
        head = f"{name}: searched {self.studies} studies' registry numbers"
        if self.baseline:
            head += f" ({self.baseline} for the first time: what they found is listed, not told)"
        body = (
            f"; {self.found} papers returned, {self.linked} new links, {self.events} publications to tell; "
            f"{self.requests} requests in {self.seconds:.1f}s."
        )
        if self.outcome == "failed":
            kept = "What was stored is kept; the next search goes on from there."
            return f"{head}{body} FAILED: {self.error}. {kept}"
        if self.outcome == "stopped":
            return f"{head}{body} Stopped; the next search goes on from there."
        return head + body

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"ok": self.ok}


def _record_keys(references: Sequence[Any]) -> set[str]:
    return {f"pmid:{r.pmid}" for r in references if r.pmid}


class LiteratureSearch:
    """One run of one service over the tracked studies."""

    def __init__(
        self,
        database: Database,
        client: LiteratureClient,
        *,
        terms_per_request: int,
        overlap_days: int,
        now: Callable[[], datetime],
    ) -> None:
        self.db, self.client = database, client
        self.per_request, self.overlap = terms_per_request, overlap_days
        self.now = now

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> LiteratureSummary:
        source = self.client.name
        started = time.monotonic()
        summary = LiteratureSummary(source)
        today = self.now().date()
        with self.db.session() as s, s.begin():
            summary.run_id = store.start_literature_run(s, source, now=self.now(), host=socket.gethostname())
        try:
            self._search(summary, today, should_stop)
            summary.outcome = "stopped" if summary.outcome == "stopping" else "ok"
        except ApiError as exc:
            summary.outcome, summary.error = "failed", str(exc)
        except BaseException as exc:  # a crash still ends the run's row; then it goes on up
            summary.outcome, summary.error = "failed", f"{type(exc).__name__}: {exc}"
            self._finish(summary, started)
            raise
        self._finish(summary, started)
        return summary

    def _finish(self, summary: LiteratureSummary, started: float) -> None:
        summary.requests = self.client.requests
        summary.seconds = time.monotonic() - started
        with self.db.session() as s, s.begin():
            store.finish_literature_run(
                s,
                summary.run_id,
                now=self.now(),
                outcome=summary.outcome,
                studies=summary.studies,
                requests=summary.requests,
                found=summary.found,
                linked=summary.linked,
                events=summary.events,
                error=summary.error,
            )

    def _search(self, summary: LiteratureSummary, today: date, should_stop: Callable[[], bool]) -> None:
        source = self.client.name
        # Every study's numbers, grouped by where its search starts (None: never searched).
        groups: dict[date | None, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        cited: dict[str, set[str]] = {}
        with self.db.session() as s:
            done = store.checked_through(s, source)
            keys = list(store.searched_studies(s))
            for study in store.latest_studies(s, keys):
                last = done.get(study.nct_id)
                since = date.fromisoformat(last) - timedelta(days=self.overlap) if last else None
                for term in search_terms(study):
                    groups[since][term].append(study.nct_id)
                if refs := _record_keys(study.references):
                    cited[study.nct_id] = refs
        summary.studies = len(keys)
        summary.baseline = len({n for ids in groups.get(None, {}).values() for n in ids})
        summary.since = sorted(str(d) for d in groups if d is not None)
        for since, by_term in sorted(groups.items(), key=lambda kv: (kv[0] is not None, kv[0] or date.min)):
            left: dict[str, int] = defaultdict(int)  # numbers still to search, per study
            for ids in by_term.values():
                for n in ids:
                    left[n] += 1
            terms = sorted(by_term)
            for i in range(0, len(terms), self.per_request):
                if should_stop():
                    summary.outcome = "stopping"
                    return
                batch = terms[i : i + self.per_request]
                placed = self._place(batch, since, today)
                found = [
                    store.Found(nct, pub, term) for pub, term in placed for nct in sorted(set(by_term[term]))
                ]
                finished = []
                for term in batch:
                    for n in set(by_term[term]):
                        left[n] -= 1
                        if left[n] == 0:
                            finished.append(n)
                with self.db.session() as s, s.begin():
                    linked, events = store.record_found(
                        s,
                        source,
                        found,
                        baseline=set(left) if since is None else set(),
                        cited_by_record=cited,
                        now=self.now(),
                    )
                    store.mark_checked(s, source, finished, today.isoformat())
                summary.found += len({p.key for p, _ in placed})
                summary.linked += linked
                summary.events += events

    def _place(self, batch: Sequence[str], since: date | None, until: date) -> list[tuple[Publication, str]]:
        """(paper, number it cites) for every paper the service returns for this batch."""
        pubs = self.client.find(batch, since, until)
        wanted = set(batch)
        out: list[tuple[Publication, str]] = []
        unplaced = False
        for p in pubs:
            named = [n for n in p.mentions if n in wanted]
            if named:
                out += [(p, n) for n in named]
            elif len(batch) == 1:
                out.append((p, batch[0]))
            else:
                unplaced = True
        if unplaced:
            placed = {(p.key, n) for p, n in out}
            for term in batch:
                for p in self.client.find([term], since, until):
                    if (p.key, term) not in placed:
                        placed.add((p.key, term))
                        out.append((p, term))
        return out

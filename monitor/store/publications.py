"""Publications found in the literature: papers, their links to studies, how far each
service has been searched, and each search run. Nothing here commits: the caller's
transaction decides, so a batch's papers, links, events and progress are written together
(a crash repeats the batch; a link already stored is never told twice).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import Study
from monitor.core.literature import Publication, found_change
from monitor.store.events import add_events
from monitor.store.models import (
    LiteratureCheck,
    LiteratureRun,
    PublicationRow,
    StudyPublication,
    StudyRow,
)

_CHUNK = 400
_SOURCE_ORDER = {"registry": 0, "pubmed": 1, "europepmc": 2}
_DESCRIBED = (
    "pmid",
    "pmcid",
    "doi",
    "europepmc_id",
    "title",
    "authors",
    "journal",
    "year",
    "pub_date",
    "abstract",
    "kind",
)


@dataclass(frozen=True, slots=True)
class Found:
    """One paper a service returned for one study, through the registry number it cites."""

    nct_id: str
    publication: Publication
    cites: str


def searched_studies(session: Session) -> Iterator[tuple[str, int]]:
    """(nct_id, latest snapshot) of the studies whose literature is searched: every tracked
    study not judged out of scope, not gone and not merged into another."""
    stmt = (
        select(StudyRow.nct_id, StudyRow.snapshot_count)
        .where(StudyRow.in_scope.is_not(False), StudyRow.gone.is_(False), StudyRow.merged_into.is_(None))
        .order_by(StudyRow.nct_id)
    )
    yield from session.execute(stmt)


def latest_studies(session: Session, keys: Sequence[tuple[str, int]]) -> Iterator[Study]:
    """The studies at these snapshots, re-normalized a chunk at a time (memory flat in N)."""
    from monitor.store.studies import stored_studies

    for start in range(0, len(keys), _CHUNK):
        yield from stored_studies(session, keys[start : start + _CHUNK]).values()


def checked_through(session: Session, source: str) -> dict[str, str]:
    """How far `source` has been searched, per study (a study without an entry never was)."""
    stmt = select(LiteratureCheck.nct_id, LiteratureCheck.checked_through).where(
        LiteratureCheck.source == source
    )
    return {k: v for k, v in session.execute(stmt)}


def mark_checked(session: Session, source: str, nct_ids: Iterable[str], through: str) -> None:
    ids = sorted(set(nct_ids))
    if not ids:
        return
    known = set(
        session.scalars(
            select(LiteratureCheck.nct_id).where(
                LiteratureCheck.source == source, LiteratureCheck.nct_id.in_(ids)
            )
        )
    )
    if known:
        session.execute(
            update(LiteratureCheck)
            .where(LiteratureCheck.source == source, LiteratureCheck.nct_id.in_(sorted(known)))
            .values(checked_through=through)
        )
    if fresh := [n for n in ids if n not in known]:
        session.execute(
            insert(LiteratureCheck),
            [{"nct_id": n, "source": source, "checked_through": through} for n in fresh],
        )


def _upsert(session: Session, pubs: Sequence[Publication], now: datetime) -> dict[str, int]:
    """Each paper's row id by key: new papers inserted, known ones' descriptions refreshed.

    PubMed's description of a paper it holds is the one kept (its title and abstract as
    MEDLINE has them, refreshed when they are corrected); another service's fills only
    what is missing, so two services never take turns rewriting one paper."""
    rows = {p.key: p.to_row() for p in pubs}
    authoritative = {p.key for p in pubs if p.source == "pubmed"}
    existing = {
        r.key: r for r in session.scalars(select(PublicationRow).where(PublicationRow.key.in_(sorted(rows))))
    }
    for key, values in rows.items():
        old = existing.get(key)
        if old is None:
            session.execute(insert(PublicationRow), [{**values, "first_seen_at": now, "updated_at": now}])
            continue
        # nothing known is blanked; a value another service gave is kept unless PubMed's differs
        fresh = {
            k: v
            for k, v in values.items()
            if k in _DESCRIBED
            and v not in (None, "", [])
            and getattr(old, k) != v
            and (key in authoritative or getattr(old, k) in (None, "", []))
        }
        if old.europepmc_id and "europepmc_id" in fresh:
            del fresh["europepmc_id"]
        if fresh:
            session.execute(
                update(PublicationRow).where(PublicationRow.id == old.id).values(**fresh, updated_at=now)
            )
    ids = session.execute(
        select(PublicationRow.key, PublicationRow.id).where(PublicationRow.key.in_(sorted(rows)))
    )
    return {k: v for k, v in ids}


def record_found(
    session: Session,
    source: str,
    found: Sequence[Found],
    *,
    baseline: set[str],
    cited_by_record: dict[str, set[str]],
    now: datetime,
) -> tuple[int, int]:
    """Store what one search batch found: papers, links, and an event for each paper newly
    linked to a study, unless the study's search is a baseline (`baseline`: its first), the
    paper was already linked by another service, or the record itself cites it
    (`cited_by_record`: the keys of the record's own references). Returns (links, events)."""
    if not found:
        return 0, 0
    ids = _upsert(session, [f.publication for f in found], now)
    studies = sorted({f.nct_id for f in found})
    linked: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for start in range(0, len(studies), _CHUNK):
        rows = session.execute(
            select(StudyPublication.nct_id, StudyPublication.publication_id, StudyPublication.source).where(
                StudyPublication.nct_id.in_(studies[start : start + _CHUNK])
            )
        )
        for nct, pid, src in rows:
            linked[nct][pid].add(src)
    before = {nct: len(linked[nct]) + len(cited_by_record.get(nct, ())) for nct in studies}
    new_links: list[dict[str, Any]] = []
    told: dict[str, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for f in found:
        pid = ids[f.publication.key]
        sources = linked[f.nct_id][pid]
        if source in sources:
            continue  # known: a repeated window, or a batch done again after a crash
        quiet = (
            f.nct_id in baseline or bool(sources) or f.publication.key in cited_by_record.get(f.nct_id, ())
        )
        sources.add(source)
        new_links.append(
            {
                "nct_id": f.nct_id,
                "publication_id": pid,
                "source": source,
                "cites": f.cites,
                "found_at": now,
                "baseline": f.nct_id in baseline,
            }
        )
        if not quiet:
            told[f.nct_id].append((f.publication.to_row(), f.cites))
    if new_links:
        session.execute(insert(StudyPublication), new_links)
    events = 0
    for nct, items in told.items():
        items.sort(key=lambda x: (x[0].get("pub_date") or "9999", x[0]["key"]))
        changes = [
            found_change(row, [source], first=before[nct] == 0 and i == 0, cites=cites)
            for i, (row, cites) in enumerate(items)
        ]
        add_events(
            session, nct, changes, run_id=None, now=now, registry_date=now.date().isoformat(), origin=source
        )
        events += len(changes)
    return len(new_links), events


def study_publications(session: Session, nct_id: str) -> list[dict[str, Any]]:
    """Every paper linked to a study, newest first, with the services that linked it and
    the registry numbers it cites."""
    stmt = (
        select(PublicationRow, StudyPublication.source, StudyPublication.cites, StudyPublication.found_at)
        .join(StudyPublication, StudyPublication.publication_id == PublicationRow.id)
        .where(StudyPublication.nct_id == nct_id)
    )
    out: dict[int, dict[str, Any]] = {}
    for pub, source, cites, found_at in session.execute(stmt):
        entry = out.get(pub.id)
        if entry is None:
            entry = out[pub.id] = {
                **{k: getattr(pub, k) for k in ("key", *_DESCRIBED)},
                "sources": [],
                "cites": [],
                "found_at": found_at,
            }
        if source not in entry["sources"]:
            entry["sources"].append(source)
        if cites not in entry["cites"]:
            entry["cites"].append(cites)
        entry["found_at"] = min(entry["found_at"], found_at)
    for entry in out.values():
        entry["found_at"] = entry["found_at"].isoformat(timespec="seconds")
        entry["sources"].sort(key=lambda x: _SOURCE_ORDER.get(x, 9))
    return sorted(out.values(), key=lambda e: (e.get("pub_date") or "", e["key"]), reverse=True)


def publication_counts(session: Session, nct_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Papers linked to each study (those with any)."""
    stmt = select(
        StudyPublication.nct_id, func.count(func.distinct(StudyPublication.publication_id))
    ).group_by(StudyPublication.nct_id)
    if nct_ids is not None:
        stmt = stmt.where(StudyPublication.nct_id.in_(list(nct_ids)))
    return {k: v for k, v in session.execute(stmt)}


# -- runs -------------------------------------------------------------------------------


def start_literature_run(session: Session, source: str, *, now: datetime, host: str) -> int:
    """A new run of `source`; a run of it left `running` by a process that died is marked crashed."""
    session.execute(
        update(LiteratureRun)
        .where(LiteratureRun.source == source, LiteratureRun.outcome == "running")
        .values(outcome="crashed", finished_at=now, error="the process ended before this search finished")
    )
    run = LiteratureRun(
        source=source,
        started_at=now,
        outcome="running",
        host=host,
        studies=0,
        requests=0,
        found=0,
        linked=0,
        events=0,
    )
    session.add(run)
    session.flush()
    return run.id


def finish_literature_run(session: Session, run_id: int, *, now: datetime, **values: Any) -> None:
    session.execute(update(LiteratureRun).where(LiteratureRun.id == run_id).values(finished_at=now, **values))


def recent_literature_runs(session: Session, limit: int = 6) -> list[LiteratureRun]:
    return list(session.scalars(select(LiteratureRun).order_by(LiteratureRun.id.desc()).limit(limit)))

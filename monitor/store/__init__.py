"""Reads and writes on a Session. Nothing here commits: the caller's transaction decides.

Writes are done in bulk (one statement per table per page) because a full sync of
tens of thousands of studies must keep pace with the download.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import zstandard
from sqlalchemy import ColumnElement, Select, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from monitor.core.classify import Classification
from monitor.core.domain import EventKind, FieldChange, Study
from monitor.core.timeline import Change, Version
from monitor.store.bulk import insert_rows
from monitor.store.models import Backfill, Event, PollRun, Snapshot, StudyRow


@dataclass(frozen=True, slots=True)
class CurrentState:
    """What the sync needs to know about a stored study to decide whether a record changed."""

    nct_id: str
    content_hash: str
    raw_hash: str
    snapshot_count: int
    in_query: bool
    gone: bool
    merged_into: str | None
    overall_status: str | None
    last_update_post_date: str | None
    in_scope: bool | None


@dataclass(slots=True)
class StudyWrite:
    """Everything one processed record changes: study row, maybe a snapshot, its events."""

    study: Study
    raw_json: bytes  # canonical JSON of the record as fetched
    raw_hash: str
    content_hash: str
    in_query: bool
    is_new: bool
    snapshot_seq: int | None  # None: no new snapshot (the record is byte-for-byte what we had)
    changes: list[FieldChange] = field(default_factory=list)
    origin: str = "poll"
    registry_version: int | None = None
    classification: dict[str, Any] | None = None  # classification_values(...)
    raw_compressed: bytes | None = None  # compress(raw_json), when done ahead (compress_many)


# zstd: a third of zlib's time at a better ratio (the sync compresses every new record version).
_ZSTD_LEVEL = 3


_compressors = threading.local()  # a compressor is reused, but not shared between threads


def _compressor() -> zstandard.ZstdCompressor:
    compressor = getattr(_compressors, "zstd", None)
    if compressor is None:
        compressor = _compressors.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor


def compress(raw_json: bytes) -> bytes:
    return _compressor().compress(raw_json)


def compress_many(blobs: Sequence[bytes]) -> list[bytes]:
    """`compress` of each blob, in one call that releases the GIL for all of them.

    The sync compresses a page's new records on a second thread while it normalizes and
    classifies them. Compressing them one call at a time there would not overlap: each
    call hands the GIL back and waits up to the interpreter's switch interval (5 ms) to
    get it again. `multi_compress_to_buffer` (zstandard's C backend) does the whole list
    in one; the output frames are the same as `compress` makes. Where the backend lacks
    it (the CFFI one), this is a plain loop.
    """
    if not blobs:
        return []
    try:
        frames = _compressor().multi_compress_to_buffer(list(blobs))
    except (AttributeError, NotImplementedError):
        return [compress(b) for b in blobs]
    return [frame.tobytes() for frame in frames]


def decompress(blob: bytes) -> Any:
    return json.loads(zstandard.ZstdDecompressor().decompress(blob))


# -- runs ----------------------------------------------------------------------------

SUCCESSFUL = ("ok", "unchanged")  # a successful poll: it read the registry, or found its data unchanged
UNSUCCESSFUL = ("failed", "crashed", "stopped")  # ended before it finished: the next poll covers its window


def start_run(session: Session, *, mode: str, now: datetime, host: str, query_hash: str) -> int:
    run = PollRun(
        mode=mode,
        started_at=now,
        outcome="running",
        host=host,
        query_hash=query_hash,
        requests=0,
        fetched=0,
        expected=0,
        new_studies=0,
        changed_studies=0,
        events=0,
        held=False,
    )
    session.add(run)
    session.flush()
    return run.id


def mark_crashed_runs(session: Session, now: datetime) -> list[int]:
    """Runs still 'running' when we hold the lock died without finishing; say so. Returns their ids."""
    ids = list(session.scalars(select(PollRun.id).where(PollRun.outcome == "running")))
    if ids:
        session.execute(
            update(PollRun)
            .where(PollRun.id.in_(ids))
            .values(outcome="crashed", finished_at=now, error="the process ended before the poll finished")
        )
    return ids


def finish_run(session: Session, run_id: int, **values: Any) -> None:
    session.execute(update(PollRun).where(PollRun.id == run_id).values(**values))


def last_run(session: Session, *, outcomes: Sequence[str], mode: str | None = None) -> PollRun | None:
    stmt = select(PollRun).where(PollRun.outcome.in_(outcomes))
    if mode:
        stmt = stmt.where(PollRun.mode == mode)
    return session.scalars(stmt.order_by(PollRun.id.desc()).limit(1)).first()


def recent_runs(session: Session, limit: int = 10) -> list[PollRun]:
    return list(session.scalars(select(PollRun).order_by(PollRun.id.desc()).limit(limit)))


# -- studies -------------------------------------------------------------------------


def load_current(session: Session, nct_ids: Iterable[str]) -> dict[str, CurrentState]:
    ids = list(set(nct_ids))
    out: dict[str, CurrentState] = {}
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit is generous, not unlimited
        rows = session.execute(
            select(
                StudyRow.nct_id,
                StudyRow.content_hash,
                StudyRow.raw_hash,
                StudyRow.snapshot_count,
                StudyRow.in_query,
                StudyRow.gone,
                StudyRow.merged_into,
                StudyRow.overall_status,
                StudyRow.last_update_post_date,
                StudyRow.in_scope,
            ).where(StudyRow.nct_id.in_(ids[start : start + 900]))
        )
        for r in rows:
            out[r.nct_id] = CurrentState(*r)
    return out


def stored_studies(session: Session, keys: Iterable[tuple[str, int]]) -> dict[str, Study]:
    """The studies as of the given (nct_id, snapshot seq), re-normalized from the raw records kept.

    Deriving them (rather than storing a normalized copy) means an improved normalizer
    applies to what we stored before, and every write is half the size.
    """
    from monitor.core.normalize import to_study

    wanted = list(keys)
    out: dict[str, Study] = {}
    for start in range(0, len(wanted), 400):
        rows = session.execute(
            select(Snapshot.nct_id, Snapshot.raw).where(
                tuple_(Snapshot.nct_id, Snapshot.seq).in_(wanted[start : start + 400])
            )
        )
        for nct, blob in rows:
            out[nct] = to_study(decompress(blob))
    return out


def classification_values(c: Classification, version: str) -> dict[str, Any]:
    """The studies-row columns for one classification."""
    return {
        "in_scope": c.in_scope,
        "scope_reason": c.scope_reason,
        "modality": c.modality,
        "targets": "|".join(c.targets) or None,
        "indications": "|".join(c.indications) or None,
        "cell_source": c.cell_source,
        "product": c.product,
        "needs_review": c.needs_review,
        "classification": c.to_dict(),
        "classified_with": version,
    }


def stale_classifications(session: Session, version: str | None) -> list[tuple[str, int, bool | None]]:
    """(nct_id, newest snapshot, stored in_scope) of studies classified with another version (all if None)."""
    stmt = select(StudyRow.nct_id, StudyRow.snapshot_count, StudyRow.in_scope).where(
        StudyRow.merged_into.is_(None), StudyRow.snapshot_count > 0
    )
    if version is not None:
        stmt = stmt.where((StudyRow.classified_with != version) | StudyRow.classified_with.is_(None))
    return [(n, seq, scope) for n, seq, scope in session.execute(stmt.order_by(StudyRow.nct_id))]


def set_classification(session: Session, nct_id: str, values: dict[str, Any]) -> None:
    session.execute(update(StudyRow).where(StudyRow.nct_id == nct_id).values(**values))


def list_studies(
    session: Session,
    *,
    modality: str | None = None,
    target: str | None = None,
    indication: str | None = None,
    status: str | None = None,
    needs_review: bool = False,
    in_scope: bool | None = True,
) -> list[StudyRow]:
    """Tracked studies (not gone, not renumbered) matching the filters, newest update first.

    Label filters compare case-insensitively with the stored labels; a target matches any
    antigen of a combined label (BCMA matches CD19/BCMA).
    """
    stmt = select(StudyRow).where(StudyRow.merged_into.is_(None), StudyRow.gone.is_(False))
    if in_scope is not None:
        stmt = stmt.where(StudyRow.in_scope.is_(in_scope))
    if status:
        stmt = stmt.where(func.upper(StudyRow.overall_status) == status.strip().upper().replace(" ", "_"))
    if needs_review:
        stmt = stmt.where(StudyRow.needs_review.is_(True))
    if modality:
        stmt = stmt.where(func.lower(StudyRow.modality) == modality.strip().lower())
    rows = list(session.scalars(stmt.order_by(StudyRow.last_update_post_date.desc(), StudyRow.nct_id)))

    def has(joined: str | None, wanted: str, split: str) -> bool:
        parts = {p.strip().lower() for label in (joined or "").split("|") for p in label.split(split)}
        return wanted.strip().lower() in parts

    if target:
        rows = [r for r in rows if has((r.targets or "").replace("x", "/"), target, "/")]
    if indication:
        rows = [r for r in rows if has(r.indications, indication, "|")]
    return rows


SUMMARY_COLUMNS = (
    "nct_id",
    "brief_title",
    "overall_status",
    "phases",
    "lead_sponsor",
    "countries",
    "in_scope",
    "scope_reason",
    "modality",
    "targets",
    "cell_source",
    "product",
    "indications",
    "needs_review",
    "last_update_post_date",
)


def study_summaries(
    session: Session, *, in_scope: bool | None, with_classification: bool, current_only: bool = True
) -> list[Any]:
    """The tracked studies' summary columns as light rows (no ORM objects), newest update
    first, as `list_studies` orders them: what the landscape filters and sorts, read fast.
    The classification JSON (evidence, review, curated) only when asked for. `current_only`
    leaves out studies gone from the registry or renumbered (the change stream keeps them:
    their last changes say so)."""
    cols = [getattr(StudyRow, c) for c in SUMMARY_COLUMNS]
    if with_classification:
        cols.append(StudyRow.classification)
    stmt = select(*cols)
    if current_only:
        stmt = stmt.where(StudyRow.merged_into.is_(None), StudyRow.gone.is_(False))
    if in_scope is not None:
        stmt = stmt.where(StudyRow.in_scope.is_(in_scope))
    return list(session.execute(stmt.order_by(StudyRow.last_update_post_date.desc(), StudyRow.nct_id)))


def classifications(session: Session, nct_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored classification (with evidence) of these studies."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(nct_ids), 500):
        chunk = list(nct_ids[i : i + 500])
        for nct, c in session.execute(
            select(StudyRow.nct_id, StudyRow.classification).where(StudyRow.nct_id.in_(chunk))
        ):
            out[nct] = c or {}
    return out


def recheck_candidates(session: Session) -> list[str]:
    """Studies we track and still expect in the registry: re-read by id when a query misses them."""
    return list(
        session.scalars(
            select(StudyRow.nct_id)
            .where(StudyRow.gone.is_(False), StudyRow.merged_into.is_(None))
            .order_by(StudyRow.nct_id)
        )
    )


def study_row(session: Session, nct_id: str) -> StudyRow | None:
    """A tracked study's row (any state), or None."""
    return session.get(StudyRow, nct_id)


def tracked_ids(session: Session, nct_ids: Sequence[str]) -> set[str]:
    """Which of these ids ctmonitor has stored (whatever their state)."""
    return set(session.scalars(select(StudyRow.nct_id).where(StudyRow.nct_id.in_(list(nct_ids)))))


def count_tracked(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(StudyRow)
            .where(StudyRow.gone.is_(False), StudyRow.merged_into.is_(None))
        )
        or 0
    )


def touch(session: Session, nct_ids: Sequence[str], now: datetime) -> None:
    for start in range(0, len(nct_ids), 900):
        session.execute(
            update(StudyRow).where(StudyRow.nct_id.in_(nct_ids[start : start + 900])).values(last_seen_at=now)
        )


def study_columns(st: Study, chash: str) -> dict[str, Any]:
    """The studies-row columns derived from the normalized record (and its content hash)."""
    return {
        "brief_title": st.title,
        "overall_status": st.overall_status,
        "study_type": st.study_type,
        "phases": "|".join(st.phases) or None,
        "lead_sponsor": st.lead_sponsor,
        "countries": "|".join(st.countries) or None,
        "first_post_date": st.first_post_date,
        "last_update_post_date": st.last_update_post_date,
        "content_hash": chash,
    }


def _study_values(w: StudyWrite) -> dict[str, Any]:
    return {
        **study_columns(w.study, w.content_hash),
        "raw_hash": w.raw_hash,
        "in_query": w.in_query,
        "gone": False,
        **(w.classification or {}),
    }


def write_batch(session: Session, writes: Sequence[StudyWrite], *, run_id: int | None, now: datetime) -> int:
    """Store one page's worth of processed records. Returns the number of events written."""
    snap_writes = [w for w in writes if w.snapshot_seq is not None]
    if snap_writes:
        rows = [
            {
                "nct_id": w.study.nct_id,
                "seq": w.snapshot_seq,
                "raw_hash": w.raw_hash,
                "content_hash": w.content_hash,
                "raw": w.raw_compressed if w.raw_compressed is not None else compress(w.raw_json),
                "last_update_post_date": w.study.last_update_post_date,
                "origin": w.origin,
                "registry_version": w.registry_version,
                "run_id": run_id,
                "fetched_at": now,
            }
            for w in snap_writes
        ]
        insert_rows(session, Snapshot.__table__, rows)

    new_rows = []
    for w in writes:
        values = _study_values(w)
        if w.is_new:
            new_rows.append(
                {
                    "nct_id": w.study.nct_id,
                    **values,
                    "snapshot_count": w.snapshot_seq or 0,
                    "merged_into": None,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "first_seen_run_id": run_id,
                }
            )
        else:
            values["last_seen_at"] = now
            if w.snapshot_seq is not None:
                values["snapshot_count"] = w.snapshot_seq
            session.execute(update(StudyRow).where(StudyRow.nct_id == w.study.nct_id).values(**values))
    if new_rows:
        insert_rows(session, StudyRow.__table__, new_rows)

    event_rows = [
        event_row(
            w.study.nct_id,
            c,
            run_id=run_id,
            snapshot_seq=w.snapshot_seq,
            registry_date=w.study.last_update_post_date,
            now=now,
            origin=w.origin,
        )
        for w in writes
        for c in w.changes
    ]
    if event_rows:
        insert_rows(session, Event.__table__, event_rows)
    return len(event_rows)


def mark_merged(session: Session, old_id: str, new_id: str) -> None:
    session.execute(
        update(StudyRow).where(StudyRow.nct_id == old_id).values(merged_into=new_id, in_query=False)
    )


def event_row(
    nct_id: str,
    change: FieldChange,
    *,
    run_id: int | None,
    snapshot_seq: int | None,
    registry_date: str | None,
    now: datetime,
    origin: str,
) -> dict[str, Any]:
    """The events-table row for one change (every writer of events builds it here)."""
    return {
        "nct_id": nct_id,
        "run_id": run_id,
        "snapshot_seq": snapshot_seq,
        "kind": change.kind.value,
        "field": change.field,
        "item_key": change.key,
        "before": change.before,
        "after": change.after,
        "importance": change.importance,
        "registry_date": registry_date,
        "detected_at": now,
        "origin": origin,
        "held": False,
    }


def add_events(
    session: Session,
    nct_id: str,
    changes: Sequence[FieldChange],
    *,
    run_id: int | None,
    now: datetime,
    registry_date: str | None,
    origin: str = "poll",
    snapshot_seq: int | None = None,
) -> None:
    """Events written on their own: with no new snapshot (a study left the registry, or was
    reclassified), or on a snapshot stored earlier (backfilled history)."""
    if not changes:
        return
    session.execute(
        insert(Event),
        [
            event_row(
                nct_id,
                c,
                run_id=run_id,
                snapshot_seq=snapshot_seq,
                registry_date=registry_date,
                now=now,
                origin=origin,
            )
            for c in changes
        ],
    )


def mark_gone(session: Session, nct_id: str) -> None:
    session.execute(update(StudyRow).where(StudyRow.nct_id == nct_id).values(gone=True, in_query=False))


# -- events --------------------------------------------------------------------------


def _runs_in_progress() -> Select[tuple[int]]:
    return select(PollRun.id).where(PollRun.outcome == "running")


def published() -> list[ColumnElement[bool]]:
    """The events that may be told to people (digests, feeds, reports): not held for review,
    not backfilled history, and not from a poll still in progress, which may yet hold them
    all as a registry format shift when it ends. (A poll that died stays "running" until the
    next poll marks it crashed and applies the same guard to what it recorded.)"""
    return [
        Event.held.is_(False),
        Event.origin != "backfill",
        Event.run_id.is_(None) | Event.run_id.not_in(_runs_in_progress()),
    ]


def events_in_progress(session: Session) -> int:
    """Events recorded so far by a poll that has not finished (not yet published)."""
    stmt = select(func.count()).select_from(Event).where(Event.run_id.in_(_runs_in_progress()))
    return session.scalar(stmt) or 0


def unsuccessful_before(session: Session, run_id: int) -> list[int]:
    """The failed, crashed or stopped runs since the last successful poll before `run_id`: with it,
    one attempt at the same picture, which the hold guard judges as a whole."""
    last_ok = session.scalar(
        select(func.max(PollRun.id)).where(PollRun.id < run_id, PollRun.outcome.in_(SUCCESSFUL))
    )
    stmt = select(PollRun.id).where(PollRun.id < run_id, PollRun.outcome.in_(UNSUCCESSFUL))
    if last_ok is not None:
        stmt = stmt.where(PollRun.id > last_ok)
    return list(session.scalars(stmt.order_by(PollRun.id)))


def changed_studies_in_runs(session: Session, run_ids: Sequence[int]) -> int:
    """Studies these runs found changed in the registry, new ones aside: what the hold guard
    counts. (Relabelling after a vocabulary edit is the administrator's doing, not the registry's.)"""
    return (
        session.scalar(
            select(func.count(func.distinct(Event.nct_id))).where(
                Event.run_id.in_(list(run_ids)), Event.kind != EventKind.NEW_STUDY, Event.origin == "poll"
            )
        )
        or 0
    )


def hold_run_events(session: Session, run_id: int) -> int:
    """Hold a run's events for review, and say so on the run; events an administrator has
    already released stay released."""
    result = session.execute(
        update(Event).where(Event.run_id == run_id, Event.released_at.is_(None)).values(held=True)
    )
    session.execute(update(PollRun).where(PollRun.id == run_id).values(held=True))
    return result.rowcount or 0


def release_events(session: Session, *, run_id: int | None, now: datetime) -> int:
    stmt = update(Event).where(Event.held.is_(True))
    if run_id is not None:
        stmt = stmt.where(Event.run_id == run_id)
    result = session.execute(stmt.values(held=False, released_at=now))
    if run_id is not None:
        session.execute(update(PollRun).where(PollRun.id == run_id).values(held=False))
    else:
        session.execute(update(PollRun).where(PollRun.held.is_(True)).values(held=False))
    return result.rowcount or 0


def list_events(
    session: Session,
    *,
    since: datetime | None = None,
    kinds: Sequence[str] = (),
    nct_id: str | None = None,
    held: bool | None = None,
    limit: int | None = None,
) -> list[Event]:
    stmt = select(Event)
    if since is not None:
        stmt = stmt.where(Event.detected_at >= since)
    if kinds:
        stmt = stmt.where(Event.kind.in_(list(kinds)))
    if nct_id:
        stmt = stmt.where(Event.nct_id == nct_id)
    if held is not None:
        stmt = stmt.where(Event.held.is_(held))
    stmt = stmt.order_by(Event.id)
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def count_events_by_kind(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Event.kind, func.count()).where(Event.run_id == run_id).group_by(Event.kind)
    )
    return {k: n for k, n in rows}


def study_totals(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(StudyRow.gone, StudyRow.in_query, StudyRow.merged_into.is_(None), func.count()).group_by(
            StudyRow.gone, StudyRow.in_query, StudyRow.merged_into.is_(None)
        )
    )
    totals = {"tracked": 0, "in_query": 0, "left_query": 0, "gone": 0, "merged": 0}
    for gone, in_query, not_merged, n in rows:
        if not not_merged:
            totals["merged"] += n
        elif gone:
            totals["gone"] += n
        else:
            totals["tracked"] += n
            totals["in_query" if in_query else "left_query"] += n
    return totals


# -- one study's history ----------------------------------------------------------------


def study_versions(session: Session, nct_id: str) -> list[Version]:
    """Every stored version of a study, oldest first (seq order is chronological), normalized."""
    from monitor.core.normalize import to_study

    rows = session.execute(
        select(
            Snapshot.seq,
            Snapshot.origin,
            Snapshot.registry_version,
            Snapshot.last_update_post_date,
            Snapshot.fetched_at,
            Snapshot.raw,
        )
        .where(Snapshot.nct_id == nct_id)
        .order_by(Snapshot.seq)
    )
    return [
        Version(seq, origin, reg, posted, fetched, to_study(decompress(raw)))
        for seq, origin, reg, posted, fetched, raw in rows
    ]


def study_changes(session: Session, nct_id: str, labels: dict[int, str]) -> list[Change]:
    """A study's events as timeline changes; `labels` maps snapshot seq to version label."""
    return [
        Change(
            event_id=e.id,
            date=e.registry_date or e.detected_at.date().isoformat(),
            detected_at=e.detected_at,
            kind=e.kind,
            field=e.field,
            item_key=e.item_key,
            before=e.before,
            after=e.after,
            origin=e.origin,
            held=e.held,
            version=labels.get(e.snapshot_seq) if e.snapshot_seq is not None else None,
        )
        for e in session.scalars(select(Event).where(Event.nct_id == nct_id).order_by(Event.id))
    ]


def backfill_state(session: Session, nct_id: str) -> Backfill | None:
    return session.get(Backfill, nct_id)


def consistency_problems(session: Session) -> list[str]:
    """What ctmonitor's own invariants say of the stored data: each study's snapshot
    count matches its snapshots (1..n, no gaps), every event and snapshot belongs to a
    stored study."""
    problems: list[str] = []
    counted = {nct: n for nct, n in session.execute(select(StudyRow.nct_id, StudyRow.snapshot_count))}
    polled = session.execute(
        select(Snapshot.nct_id, func.count(), func.max(Snapshot.seq))
        .where(Snapshot.seq > 0)
        .group_by(Snapshot.nct_id)
    ).all()
    for nct, n, top in polled:
        if nct not in counted:
            problems.append(f"{nct}: {n} snapshots of a study that is not stored")
        elif n != top or top != counted[nct]:
            problems.append(f"{nct}: snapshots 1..{top} ({n} stored), the study says {counted[nct]}")
    with_snapshots = {nct for nct, _, _ in polled}
    for nct, n in counted.items():
        if n and nct not in with_snapshots:
            problems.append(f"{nct}: the study says {n} snapshots, none is stored")
    orphans = session.scalar(
        select(func.count()).select_from(Event).where(Event.nct_id.not_in(select(StudyRow.nct_id)))
    )
    if orphans:
        problems.append(f"{orphans} events of studies that are not stored")
    return problems

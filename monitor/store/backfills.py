"""The backfill's bookkeeping per study (listed versions, cut, resume point, outcome) and
the snapshots and events it writes. Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import FieldChange
from monitor.store.events import add_events
from monitor.store.models import Backfill, Snapshot, StudyRow

BACKFILL_FINISHED = ("done", "empty")  # a backfill in either state is never asked for again


class FirstSnapshot(NamedTuple):
    """The oldest polled version of a study: what the registry's history is attached to."""

    seq: int
    raw: bytes
    fetched_at: datetime


def backfill_state(session: Session, nct_id: str) -> Backfill | None:
    return session.get(Backfill, nct_id)


def backfill_candidates(session: Session, limit: int | None = None, also: Sequence[str] = ()) -> list[str]:
    """Studies in scope (and those in `also`: followed by id, in scope or not) with no
    finished backfill: interrupted ones first, then new, then failed.

    Failed ones go last so that one study the registry will not serve never blocks the rest.
    """
    order = case((Backfill.status == "running", 0), (Backfill.status.is_(None), 1), else_=2)
    stmt = (
        select(StudyRow.nct_id)
        .outerjoin(Backfill, Backfill.nct_id == StudyRow.nct_id)
        .where(
            StudyRow.in_scope.is_(True) | StudyRow.nct_id.in_(list(also)),
            StudyRow.merged_into.is_(None),
            StudyRow.gone.is_(False),
            StudyRow.snapshot_count > 0,
            # ClinicalTrials.gov's record histories; a CTIS trial's own (its applications
            # and member states' statuses, read from its first record)
            StudyRow.registered_on.in_(("ctgov", "ctis")),
            Backfill.status.is_(None) | Backfill.status.not_in(BACKFILL_FINISHED),
        )
        .order_by(order, StudyRow.nct_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def first_polled_snapshot(session: Session, nct_id: str) -> FirstSnapshot | None:
    row = session.execute(
        select(Snapshot.seq, Snapshot.raw, Snapshot.fetched_at)
        .where(Snapshot.nct_id == nct_id, Snapshot.seq > 0)
        .order_by(Snapshot.seq)
        .limit(1)
    ).first()
    return FirstSnapshot(row.seq, row.raw, row.fetched_at) if row else None


def _row(session: Session, nct_id: str, now: datetime) -> Backfill:
    row = session.get(Backfill, nct_id)
    if row is None:
        row = Backfill(nct_id=nct_id, events=0, requests=0, started_at=now)
        session.add(row)
    return row


def record_backfill_failure(session: Session, nct_id: str, error: str, now: datetime) -> None:
    row = _row(session, nct_id, now)
    row.status, row.error, row.finished_at = "failed", error[:2000], now


def count_backfill_requests(session: Session, nct_id: str, n: int) -> None:
    session.execute(update(Backfill).where(Backfill.nct_id == nct_id).values(requests=Backfill.requests + n))


def stored_through(session: Session, nct_id: str) -> int:
    """The highest registry version already stored for this study (-1: none)."""
    value = session.scalar(
        select(func.max(Snapshot.registry_version)).where(
            Snapshot.nct_id == nct_id, Snapshot.origin == "backfill"
        )
    )
    return -1 if value is None else int(value)


def start_backfill(
    session: Session, nct_id: str, versions: list[dict[str, Any]], cut: int | None, now: datetime
) -> None:
    """Keep the registry's version list and the cut; resume after what is already stored."""
    row = _row(session, nct_id, now)
    row.versions = versions
    row.cut_version, row.status, row.error = cut, "running", None
    row.stored_through = stored_through(session, nct_id)


def resume_backfill(session: Session, nct_id: str) -> tuple[int | None, int]:
    """(cut version, last stored version or -1) of a started backfill; a failed one runs again."""
    row = session.get(Backfill, nct_id)
    assert row is not None, f"backfill of {nct_id} was not started"
    if row.status == "failed":
        row.status, row.error = "running", None
    return row.cut_version, row.stored_through if row.stored_through is not None else -1


def set_backfill_cut(session: Session, nct_id: str, cut: int) -> None:
    session.execute(update(Backfill).where(Backfill.nct_id == nct_id).values(cut_version=cut))


def store_backfill_version(
    session: Session,
    nct_id: str,
    *,
    version: int,
    seq: int,
    raw_hash: str,
    content_hash: str,
    raw: bytes,
    last_update_post_date: str | None,
    changes: Sequence[FieldChange],
    registry_date: str | None,
    now: datetime,
) -> None:
    """One registry version as a snapshot, its events, and the resume point."""
    session.execute(
        insert(Snapshot.__table__),
        [
            {
                "nct_id": nct_id,
                "seq": seq,
                "raw_hash": raw_hash,
                "content_hash": content_hash,
                "raw": raw,
                "last_update_post_date": last_update_post_date,
                "origin": "backfill",
                "registry_version": version,
                "run_id": None,
                "fetched_at": now,
            }
        ],
    )
    add_events(
        session,
        nct_id,
        changes,
        run_id=None,
        now=now,
        registry_date=registry_date,
        origin="backfill",
        snapshot_seq=seq,
    )
    session.execute(
        update(Backfill)
        .where(Backfill.nct_id == nct_id)
        .values(stored_through=version, events=Backfill.events + len(changes))
    )


def name_snapshot_version(session: Session, nct_id: str, seq: int, version: int) -> None:
    """Our polled snapshot `seq` is registry version `version` (digests link versions)."""
    session.execute(
        update(Snapshot)
        .where(Snapshot.nct_id == nct_id, Snapshot.seq == seq, Snapshot.registry_version.is_(None))
        .values(registry_version=version)
    )


def finish_backfill(
    session: Session, nct_id: str, status: str, now: datetime, detail: str | None, events: int = 0
) -> None:
    session.execute(
        update(Backfill)
        .where(Backfill.nct_id == nct_id)
        .values(status=status, finished_at=now, error=detail, events=Backfill.events + events)
    )


def store_record_history(
    session: Session,
    nct_id: str,
    items: Sequence[tuple[str | None, FieldChange]],
    *,
    snapshot_seq: int,
    now: datetime,
) -> None:
    """The history a record tells of itself (CTIS), each change dated by its own date, on
    the snapshot it was read from; the study's backfill is done (or empty) with it."""
    row = _row(session, nct_id, now)
    row.status = "done" if items else "empty"
    row.versions, row.cut_version, row.stored_through = None, None, None
    row.finished_at, row.error, row.events = now, None, len(items)
    session.flush()
    for day, change in items:
        add_events(
            session,
            nct_id,
            [change],
            run_id=None,
            now=now,
            registry_date=day,
            origin="backfill",
            snapshot_seq=snapshot_seq,
        )


def backfill_progress(session: Session) -> dict[str, Any]:
    """How far backfill has got: studies by state, those waiting, the latest failure."""
    counts = dict(session.execute(select(Backfill.status, func.count()).group_by(Backfill.status)).all())
    failed = session.scalars(
        select(Backfill).where(Backfill.status == "failed").order_by(Backfill.finished_at.desc()).limit(1)
    ).first()
    return {
        "done": counts.get("done", 0),
        "empty": counts.get("empty", 0),
        "failed": counts.get("failed", 0),
        "running": counts.get("running", 0),
        "waiting": len(backfill_candidates(session)),
        "last_failure": f"{failed.nct_id}: {failed.error}" if failed else None,
    }

"""The change log: events written in bulk, published or held, listed.

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import EventKind, FieldChange
from monitor.core.timeline import Change
from monitor.store.models import Event, PollRun


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


def runs_in_progress() -> Select[tuple[int]]:
    return select(PollRun.id).where(PollRun.outcome == "running")


def published() -> list[ColumnElement[bool]]:
    """The events that may be told to people (digests, feeds, reports): not held for review,
    not backfilled history, and not from a poll still in progress, which may yet hold them
    all as a registry format shift when it ends. (A poll that died stays "running" until the
    next poll marks it crashed and applies the same guard to what it recorded.)"""
    return [Event.held.is_(False), Event.origin != "backfill", settled()]


def settled() -> ColumnElement[bool]:
    """Not from a poll still in progress (see `published`)."""
    return Event.run_id.is_(None) | Event.run_id.not_in(runs_in_progress())


def events_in_progress(session: Session) -> int:
    """Events recorded so far by a poll that has not finished (not yet published)."""
    stmt = select(func.count()).select_from(Event).where(Event.run_id.in_(runs_in_progress()))
    return session.scalar(stmt) or 0


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
    by: str = "detected",
    origin: str | None = None,
    after_id: int | None = None,
) -> list[Event]:
    """Events, oldest first. `since` reads the detection date, or with `by="registry"` the
    registry's update date of the version that made the event (a backfilled change of
    2023 is then from 2023, though we learnt of it today); `origin` "poll" or "backfill"."""
    stmt = select(Event)
    if since is not None:
        if by == "registry":
            stmt = stmt.where(Event.registry_date >= since.date().isoformat())
        else:
            stmt = stmt.where(Event.detected_at >= since)
    if origin is not None:
        stmt = stmt.where(Event.origin == origin)
    if kinds:
        stmt = stmt.where(Event.kind.in_(list(kinds)))
    if nct_id:
        stmt = stmt.where(Event.nct_id == nct_id)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    if held is not None:
        stmt = stmt.where(Event.held.is_(held))
    stmt = stmt.order_by(Event.id)
    if limit:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


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


def count_held_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Event).where(Event.held.is_(True))) or 0

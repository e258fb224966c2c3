"""Deliveries: every mail ctmonitor sends (digests, the administrator's alerts) and which
events each subscriber has settled. The exactly-once protocol lives here, once: a row is
written `sending` before the SMTP call and `sent` (with its events settled) after it; a
row left `sending` by a dead process is `interrupted` and its events stay due.
Nothing here commits: the caller's transaction decides.

Settled means one of two things: below the subscriber's floor (`subscribers.settled_upto`,
raised to the run's `frontier` with each sent digest and each run that found nothing for
them), or a `delivered_events` row (the changes a digest listed, and what was settled above
the floor: past a change held for review). So a thousand readers over a year of changes
neither write nor read a row per change each.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import DIGEST_KINDS, DeliveryStatus, Settlement
from monitor.store.bulk import insert_rows
from monitor.store.events import published, runs_in_progress
from monitor.store.models import DeliveredEvent, Delivery, Event, SubscriberRow


def last_sent_digest(session: Session, subscriber: str) -> Delivery | None:
    return session.scalars(
        select(Delivery)
        .where(
            Delivery.subscriber == subscriber,
            Delivery.status == DeliveryStatus.SENT,
            Delivery.kind.in_(DIGEST_KINDS),
        )
        .order_by(Delivery.id.desc())
        .limit(1)
    ).first()


def latest_delivery(
    session: Session, subscriber: str | None = None, kinds: Sequence[str] = ()
) -> Delivery | None:
    """The newest delivery row (any status) for a subscriber and/or of the given kinds."""
    stmt = select(Delivery)
    if subscriber is not None:
        stmt = stmt.where(Delivery.subscriber == subscriber)
    if kinds:
        stmt = stmt.where(Delivery.kind.in_(list(kinds)))
    return session.scalars(stmt.order_by(Delivery.id.desc()).limit(1)).first()


def last_sent_of_kinds(session: Session, kinds: Sequence[str]) -> Delivery | None:
    return session.scalars(
        select(Delivery)
        .where(Delivery.kind.in_(list(kinds)), Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.id.desc())
        .limit(1)
    ).first()


def floor_of(session: Session, subscriber: str) -> int:
    """Every event up to this id is settled for the subscriber (0: none yet)."""
    return session.scalar(select(SubscriberRow.settled_upto).where(SubscriberRow.name == subscriber)) or 0


def raise_floor(session: Session, subscriber: str, upto: int | None) -> None:
    """Settle everything up to `upto` for the subscriber (never lowers the floor). The
    caller vouches that each due event up to there is told, counted or filtered out in the
    same transaction (`frontier` says how far a run may go)."""
    if upto:
        session.execute(
            update(SubscriberRow)
            .where(SubscriberRow.name == subscriber, SubscriberRow.settled_upto < upto)
            .values(settled_upto=upto)
        )


def frontier(session: Session) -> int:
    """How far a digest run may raise its readers' floors: the highest event id below which
    every event is published or never will be (backfilled history). A change held for
    review, or recorded by a poll still running, stops it just below, so it is due once
    released. Read before the run reads its events (nothing at or below it can appear
    later). 0 on PostgreSQL while another transaction that wrote is in flight (on any
    database of the server: the snapshot does not say which): one that inserts events may
    commit them below ids already visible, so the floors wait for a quiet moment and rows
    settle the changes meanwhile (SQLite has one writer, and never reuses an event's id:
    they are never deleted).

    Everything is read in one statement, so under one snapshot: read in several, a
    transaction that began after the first could write an event and stay open while
    another wrote a later one and committed, and the frontier would pass the first one's
    event unseen (a poll and a literature search write events side by side)."""
    lowest = [
        select(func.min(Event.id)).where(Event.held.is_(True), Event.origin != "backfill"),
        select(func.min(Event.id)).where(Event.run_id.in_(runs_in_progress()), Event.origin != "backfill"),
    ]
    columns = [s.scalar_subquery() for s in [*lowest, select(func.max(Event.id))]]
    if session.get_bind().dialect.name == "postgresql":
        columns.append(literal_column("(SELECT count(*) FROM pg_snapshot_xip(pg_current_snapshot()))"))
    held, running, newest, *busy = session.execute(select(*columns)).one()
    if busy and busy[0]:
        return 0
    blockers = [b for b in (held, running) if b is not None]
    if blockers:
        return min(blockers) - 1
    return newest or 0


def _due(session: Session, subscriber: str) -> list[ColumnElement[bool]]:
    """The conditions of "due for this subscriber": published (not held, not backfilled, not
    from a poll still running), above their floor, and not settled by a row."""
    settled = select(DeliveredEvent.event_id).where(
        DeliveredEvent.subscriber == subscriber, DeliveredEvent.event_id == Event.id
    )
    return [*published(), Event.id > floor_of(session, subscriber), ~settled.exists()]


def pending_events(session: Session, subscriber: str) -> Iterator[Event]:
    """Events not yet settled for this subscriber, oldest first (held and backfilled ones never are)."""
    stmt = select(Event).where(*_due(session, subscriber)).order_by(Event.id)
    yield from session.scalars(stmt.execution_options(yield_per=2000))


class Pending:
    """Each subscriber's pending events (as `pending_events` gives them), read in one pass:
    the published events past the lowest floor once, and the few rows settled above each
    floor in one query, instead of one scan of the events per subscriber (a digest run for
    a thousand readers reads the week's changes once). A subscriber's list is made when
    asked for, so memory does not grow with the number of readers. `frontier` was read
    first (see `frontier`)."""

    def __init__(self, session: Session, subscribers: Sequence[str]) -> None:
        names = list(subscribers)
        self.frontier = frontier(session)
        self.floors: dict[str, int] = (
            dict(
                session.execute(  # type: ignore[arg-type]
                    select(SubscriberRow.name, SubscriberRow.settled_upto).where(
                        SubscriberRow.name.in_(names)
                    )
                ).all()
            )
            if names
            else {}
        )
        low = min((self.floors.get(n, 0) for n in names), default=0)
        # light rows with every column of an event (no ORM objects: each is read by every
        # subscriber's digest, and an ORM attribute costs ten times a row's)
        self.events = (
            list(
                session.execute(
                    select(*Event.__table__.columns)
                    .where(*published(), Event.id > low)
                    .order_by(Event.id)
                    .execution_options(yield_per=2000)
                )
            )
            if names
            else []
        )
        self.settled: dict[str, set[int]] = {}
        if self.events:
            rows = session.execute(
                select(DeliveredEvent.subscriber, DeliveredEvent.event_id)
                .join(SubscriberRow, SubscriberRow.name == DeliveredEvent.subscriber)
                .where(
                    DeliveredEvent.subscriber.in_(names), DeliveredEvent.event_id > SubscriberRow.settled_upto
                )
            )
            for sub, event_id in rows:
                self.settled.setdefault(sub, set()).add(event_id)

    def of(self, subscriber: str) -> list[Any]:
        floor = self.floors.get(subscriber, 0)
        settled = self.settled.get(subscriber, ())
        return [e for e in self.events if e.id > floor and e.id not in settled]


def count_pending(session: Session, subscriber: str) -> int:
    return session.scalar(select(func.count()).select_from(Event).where(*_due(session, subscriber))) or 0


def max_published_event_id(session: Session) -> int | None:
    """The landscape's cursor when nothing was due: the last published event. (A running
    poll's events come after it, so they stay due once that poll ends.)"""
    return session.scalar(select(func.max(Event.id)).where(*published()))


def interrupt_stale_deliveries(session: Session, now: datetime, kinds: Sequence[str] = ()) -> int:
    """Deliveries left `sending` by a process that died: their events were never settled."""
    stmt = update(Delivery).where(Delivery.status == DeliveryStatus.SENDING)
    if kinds:
        stmt = stmt.where(Delivery.kind.in_(list(kinds)))
    result = session.execute(
        stmt.values(
            status=DeliveryStatus.INTERRUPTED,
            finished_at=now,
            error="the sending process stopped before recording",
        )
    )
    return result.rowcount or 0


def settle(
    session: Session, subscriber: str, event_ids: Sequence[int], how: Settlement, delivery_id: int | None
) -> None:
    if event_ids:  # one executemany (store.bulk): a reader settles a week's changes at once
        insert_rows(
            session,
            DeliveredEvent.__table__,
            [
                {"subscriber": subscriber, "event_id": i, "delivery_id": delivery_id, "how": how}
                for i in event_ids
            ],
        )


def begin_delivery(session: Session, **values: Any) -> Delivery:
    """Write the `sending` row before the mail goes out; returns it with its id."""
    row = Delivery(status=DeliveryStatus.SENDING, **values)
    session.add(row)
    session.flush()
    return row


def end_delivery(
    session: Session,
    delivery_id: int,
    status: DeliveryStatus,
    now: datetime,
    *,
    error: str | None = None,
    size_bytes: int | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": now, "error": error}
    if size_bytes is not None:
        values["size_bytes"] = size_bytes
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))

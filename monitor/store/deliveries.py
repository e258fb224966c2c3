"""Deliveries: every mail ctmonitor sends (digests, the administrator's alerts) and which
events each subscriber has settled. The exactly-once protocol lives here, once: a row is
written `sending` before the SMTP call and `sent` (with its events settled) after it; a
row left `sending` by a dead process is `interrupted` and its events stay due.
Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import DIGEST_KINDS, DeliveryStatus, Settlement
from monitor.store.bulk import insert_rows
from monitor.store.events import published
from monitor.store.models import DeliveredEvent, Delivery, Event


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


def _due(session: Session, subscriber: str) -> list[ColumnElement[bool]]:
    """The conditions of "due for this subscriber": published (not held, not backfilled, not
    from a poll still running), not settled, after the landscape cursor."""
    settled = select(DeliveredEvent.event_id).where(
        DeliveredEvent.subscriber == subscriber, DeliveredEvent.event_id == Event.id
    )
    conditions = [*published(), ~settled.exists()]
    floor = session.scalar(
        select(func.max(Delivery.upto_event_id)).where(
            Delivery.subscriber == subscriber, Delivery.status == DeliveryStatus.SENT
        )
    )
    if floor is not None:
        conditions.append(Event.id > floor)
    return conditions


def pending_events(session: Session, subscriber: str) -> Iterator[Event]:
    """Events not yet settled for this subscriber, oldest first (held and backfilled ones never are)."""
    stmt = select(Event).where(*_due(session, subscriber)).order_by(Event.id)
    yield from session.scalars(stmt.execution_options(yield_per=2000))


def pending_for_all(session: Session, subscribers: Sequence[str]) -> dict[str, list[Event]]:
    """Each subscriber's pending events (as `pending_events` gives them), read in one pass:
    the published events past the lowest landscape cursor once, and who settled which of
    them in one query, instead of one scan of the events per subscriber (a digest run for
    a thousand readers reads the week's changes once)."""
    names = list(subscribers)
    if not names:
        return {}
    floors: dict[str, int] = {
        sub: upto or 0
        for sub, upto in session.execute(
            select(Delivery.subscriber, func.max(Delivery.upto_event_id))
            .where(Delivery.subscriber.in_(names), Delivery.status == DeliveryStatus.SENT)
            .group_by(Delivery.subscriber)
        )
    }
    low = min(floors.get(n, 0) for n in names)
    # light rows with every column of an event (no ORM objects: each is read by every
    # subscriber's digest, and an ORM attribute costs ten times a row's)
    events = list(
        session.execute(
            select(*Event.__table__.columns)
            .where(*published(), Event.id > low)
            .order_by(Event.id)
            .execution_options(yield_per=2000)
        )
    )
    settled: dict[str, set[int]] = {n: set() for n in names}
    if events:
        rows = session.execute(
            select(DeliveredEvent.subscriber, DeliveredEvent.event_id).where(
                DeliveredEvent.subscriber.in_(names), DeliveredEvent.event_id > low
            )
        )
        for sub, event_id in rows:
            settled[sub].add(event_id)
    return {n: [e for e in events if e.id > floors.get(n, 0) and e.id not in settled[n]] for n in names}


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

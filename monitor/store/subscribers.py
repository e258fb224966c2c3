"""Subscribers (config-file and browser sign-ups alike), the shared signing secret, and the
records behind the web's rate limits. Nothing here commits: the caller's transaction decides.

A subscriber's filters are stored as config.toml spells them (`preferences`), so one
validator (config.SubscriberSettings) checks both kinds when they are read back."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.core.domain import SubscriberStatus
from monitor.store.models import AppSecret, Event, SubscriberRow, WebAttempt

FILE = "file"
WEB = "web"


def shared_secret(session: Session, name: str) -> str:
    """The named secret, created on first use (random, 256 bits). Two processes creating it
    at once: the second's insert fails and it reads the first's."""
    row = session.get(AppSecret, name)
    if row is not None:
        return row.value
    value = secrets.token_urlsafe(32)
    try:
        with session.begin_nested():
            session.add(AppSecret(name=name, value=value))
    except IntegrityError:
        row = session.get(AppSecret, name)
        assert row is not None
        return row.value
    return value


# -- who ---------------------------------------------------------------------------------


def get_subscriber(session: Session, name: str) -> SubscriberRow | None:
    return session.get(SubscriberRow, name)


def list_subscribers(session: Session, statuses: Iterable[str] | None = None) -> list[SubscriberRow]:
    q = select(SubscriberRow).order_by(SubscriberRow.name)
    if statuses is not None:
        q = q.where(SubscriberRow.status.in_(list(statuses)))
    return list(session.scalars(q))


def subscribers_with_email(session: Session, email: str) -> list[SubscriberRow]:
    """Every subscriber at this address (compared without case), whatever their status."""
    return list(
        session.scalars(
            select(SubscriberRow)
            .where(func.lower(SubscriberRow.email) == email.lower())
            .order_by(SubscriberRow.created_at)
        )
    )


def unsubscribed_names(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(SubscriberRow.name).where(SubscriberRow.status == SubscriberStatus.UNSUBSCRIBED)
        )
    )


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A `[[subscribers]]` entry as the store keeps it."""

    name: str
    email: str
    preferences: Mapping[str, object]
    channel: str = ""


def sync_file_subscribers(session: Session, entries: Iterable[FileEntry], now: datetime) -> list[str]:
    """Make the database agree with config.toml's `[[subscribers]]`: each entry is created
    (active) or updated (address, filters, channel); a file-managed subscriber no longer in
    the file becomes `removed` (nothing is sent; their history stays). A subscriber who left
    with their link stays unsubscribed: the file cannot sign anyone back up. An entry named
    like a browser sign-up takes that row over (the administrator's word wins).
    Returns the names that changed; writes nothing when all agree."""
    changed: list[str] = []
    seen: set[str] = set()
    newest_event: int | None = None
    for e in entries:
        seen.add(e.name)
        prefs = dict(e.preferences)
        row = session.get(SubscriberRow, e.name)
        if row is None:
            if newest_event is None:  # their "last look" starts now, not at the first change ever
                newest_event = int(session.scalar(select(func.max(Event.id))) or 0)
            try:
                # `serve` and `run` may start together: the second's insert of the same
                # entry fails, and the row the first made is the one to keep.
                with session.begin_nested():
                    session.add(
                        SubscriberRow(
                            name=e.name,
                            email=e.email,
                            preferences=prefs,
                            channel=e.channel,
                            status=SubscriberStatus.ACTIVE,
                            managed_by=FILE,
                            link_generation=1,
                            seen_upto_event_id=newest_event,
                            created_at=now,
                            updated_at=now,
                            confirmed_at=now,
                        )
                    )
                changed.append(e.name)
                continue
            except IntegrityError:
                row = session.get(SubscriberRow, e.name)
                if row is None:
                    raise
        status = row.status
        if status in (SubscriberStatus.REMOVED, SubscriberStatus.PENDING):
            status = SubscriberStatus.ACTIVE
        if (row.email, row.preferences, row.channel, row.status, row.managed_by) != (
            e.email,
            prefs,
            e.channel,
            status,
            FILE,
        ):
            row.email, row.preferences, row.channel, row.status = e.email, prefs, e.channel, status
            row.managed_by = FILE
            row.updated_at = now
            changed.append(e.name)
    for row in session.scalars(
        select(SubscriberRow).where(
            SubscriberRow.managed_by == FILE,
            SubscriberRow.status.in_([SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED]),
        )
    ):
        if row.name not in seen:
            row.status = SubscriberStatus.REMOVED
            row.updated_at = now
            changed.append(row.name)
    session.flush()
    return changed


def add_signup(
    session: Session, email: str, preferences: Mapping[str, object], now: datetime
) -> SubscriberRow:
    """A browser sign-up, pending until its confirmation link is followed. Its name is
    random (`web-` and 10 letters): it appears in links and logs, and names nobody."""
    while True:
        name = "web-" + secrets.token_hex(5)
        if session.get(SubscriberRow, name) is None:
            break
    row = SubscriberRow(
        name=name,
        email=email,
        preferences=dict(preferences),
        channel="",
        status=SubscriberStatus.PENDING,
        managed_by=WEB,
        link_generation=1,
        seen_upto_event_id=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def drop_stale_signups(session: Session, before: datetime) -> int:
    """Forget sign-ups never confirmed since `before` (they were never sent anything)."""
    result = session.execute(
        delete(SubscriberRow).where(
            SubscriberRow.status == SubscriberStatus.PENDING,
            SubscriberRow.managed_by == WEB,
            SubscriberRow.created_at < before,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- their own changes -------------------------------------------------------------------


def _row(session: Session, name: str) -> SubscriberRow:
    row = session.get(SubscriberRow, name)
    if row is None:
        raise LookupError(f"no subscriber named {name!r}")
    return row


def set_status(session: Session, name: str, status: SubscriberStatus, now: datetime) -> bool:
    """Move the subscriber to `status`. Idempotent; True when this call made the change.
    Confirming (pending to active) stamps confirmed_at; leaving stamps unsubscribed_at."""
    row = _row(session, name)
    if row.status == status:
        return False
    if status == SubscriberStatus.ACTIVE and row.confirmed_at is None:
        row.confirmed_at = now
    row.unsubscribed_at = now if status == SubscriberStatus.UNSUBSCRIBED else None
    row.status = status
    row.updated_at = now
    return True


def unsubscribe(session: Session, name: str, now: datetime) -> bool:
    """Mark the subscriber as having left. Idempotent; True when this call made the change."""
    return set_status(session, name, SubscriberStatus.UNSUBSCRIBED, now)


def resubscribe(session: Session, name: str, now: datetime) -> None:
    set_status(session, name, SubscriberStatus.ACTIVE, now)


def set_preferences(session: Session, name: str, preferences: Mapping[str, object], now: datetime) -> None:
    row = _row(session, name)
    row.preferences = dict(preferences)
    row.updated_at = now


def set_email(session: Session, name: str, email: str, now: datetime) -> None:
    row = _row(session, name)
    row.email = email
    row.updated_at = now


def revoke_links(session: Session, name: str, now: datetime) -> int:
    """Invalidate every link issued so far; returns the new generation."""
    row = _row(session, name)
    row.link_generation += 1
    row.updated_at = now
    return row.link_generation


def mark_seen(session: Session, name: str, upto_event_id: int, now: datetime) -> None:
    """The reader has looked at every change up to this event (never moves back)."""
    row = _row(session, name)
    if upto_event_id > row.seen_upto_event_id:
        row.seen_upto_event_id = upto_event_id
        row.updated_at = now


def followers(session: Session, nct_id: str) -> set[str]:
    """The names of active or paused subscribers who follow this study by its NCT id."""
    return {
        name
        for name, prefs in session.execute(
            select(SubscriberRow.name, SubscriberRow.preferences).where(
                SubscriberRow.status.in_([SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED])
            )
        )
        if isinstance(prefs, dict) and nct_id in (prefs.get("nct_ids") or ())
    }


def followed_ids(session: Session) -> set[str]:
    """The NCT ids that active or paused subscribers follow by id (tracked from the next poll)."""
    out: set[str] = set()
    for prefs in session.scalars(
        select(SubscriberRow.preferences).where(
            SubscriberRow.status.in_([SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED])
        )
    ):
        ids = prefs.get("nct_ids") if isinstance(prefs, dict) else None
        if isinstance(ids, list):
            out.update(x for x in ids if isinstance(x, str))
    return out


# -- rate limits ---------------------------------------------------------------------------


def record_attempt(
    session: Session, kind: str, now: datetime, *, address_key: str = "", client_key: str = ""
) -> None:
    session.add(WebAttempt(kind=kind, at=now, address_key=address_key, client_key=client_key))
    session.flush()


def count_attempts(
    session: Session,
    kind: str,
    since: datetime,
    *,
    address_key: str | None = None,
    client_key: str | None = None,
) -> int:
    q = select(func.count()).select_from(WebAttempt).where(WebAttempt.kind == kind, WebAttempt.at >= since)
    if address_key is not None:
        q = q.where(WebAttempt.address_key == address_key)
    if client_key is not None:
        q = q.where(WebAttempt.client_key == client_key)
    return int(session.scalar(q) or 0)


def last_attempt_at(session: Session, kind: str, *, client_key: str) -> datetime | None:
    return session.scalar(
        select(func.max(WebAttempt.at)).where(WebAttempt.kind == kind, WebAttempt.client_key == client_key)
    )


def clear_attempts(session: Session, kind: str, *, client_key: str) -> None:
    session.execute(delete(WebAttempt).where(WebAttempt.kind == kind, WebAttempt.client_key == client_key))


def purge_attempts(session: Session, before: datetime) -> None:
    session.execute(delete(WebAttempt).where(WebAttempt.at < before))

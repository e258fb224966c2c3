"""Subscribers' own state beside config.toml (left or not, link generation) and the
shared signing secret. Nothing here commits: the caller's transaction decides."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from monitor.store.models import AppSecret, SubscriberStateRow


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


def subscriber_state(session: Session, name: str, now: datetime) -> SubscriberStateRow:
    """The subscriber's state row, created (subscribed, link generation 1) on first use."""
    row = session.get(SubscriberStateRow, name)
    if row is None:
        row = SubscriberStateRow(name=name, unsubscribed_at=None, link_generation=1, updated_at=now)
        session.add(row)
        session.flush()
    return row


def unsubscribed_names(session: Session) -> set[str]:
    return set(
        session.scalars(
            select(SubscriberStateRow.name).where(SubscriberStateRow.unsubscribed_at.is_not(None))
        )
    )


def unsubscribe(session: Session, name: str, now: datetime) -> bool:
    """Mark the subscriber as having left. Idempotent; True when this call made the change."""
    row = subscriber_state(session, name, now)
    if row.unsubscribed_at is not None:
        return False
    row.unsubscribed_at = now
    row.updated_at = now
    return True


def resubscribe(session: Session, name: str, now: datetime) -> None:
    row = subscriber_state(session, name, now)
    row.unsubscribed_at = None
    row.updated_at = now


def revoke_links(session: Session, name: str, now: datetime) -> int:
    """Invalidate every link issued so far; returns the new generation."""
    row = subscriber_state(session, name, now)
    row.link_generation += 1
    row.updated_at = now
    return row.link_generation

"""The digest use case: which events are due for whom, preview, and exactly-once sending.

The contract, per subscriber:
- an event is *due* until it is settled: below the subscriber's floor or by a
  `delivered_events` row (store.deliveries); held events, backfilled history and the
  events of a poll still running are never due (`store.published`), and the floor never
  rises past them (`store.frontier`); a subscriber's first digest (the landscape) settles
  everything before it through its `upto_event_id`;
- when nothing is to be told, their pending changes are settled without mail (the floor,
  and a `filtered` row for those past the frontier);
- mailed events are settled only after the server accepted the message, in the same
  transaction that marks the delivery `sent` (a row for each listed change, the floor for
  the rest). A failure leaves them due; a crash between acceptance and that transaction
  leaves the delivery `sending`, which the next run marks `interrupted`, and the events go
  out again (a repeat, never a loss).
One digest process at a time (the "digest" lock), so two service instances never both send.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import quote

from monitor import store
from monitor.config import Settings, SubscriberSettings
from monitor.core.classify import Classifier
from monitor.core.domain import (
    DIGEST_KINDS,
    DeliveryKind,
    DeliveryStatus,
    Settlement,
    SubscriberStatus,
    UserError,
)
from monitor.core.filters import StudyFilter
from monitor.publishing import channels
from monitor.publishing.channels import ChannelError, ChannelSender

# Building a digest lives in digests.py; its names stay reachable here, where callers look.
from monitor.publishing.digests import (
    Prepared,
    RunData,
    changes_query,
    health,
    manage_url,
    options,
    prepare,
    subscriber_filter,
    unsubscribe_url,
)
from monitor.publishing.mailer import LazyMailer, Mailer, MailError
from monitor.publishing.render import Rendered, build_message
from monitor.store import Session
from monitor.store.db import Database
from monitor.store.locking import exclusive

__all__ = [
    "Outcome",
    "Prepared",
    "SubscriberState",
    "as_settings",
    "changes_query",
    "file_entries",
    "health",
    "manage_url",
    "options",
    "prepare",
    "preview",
    "roster",
    "send_due",
    "subscriber_filter",
    "subscriber_states",
    "sync_file",
    "unsubscribe_url",
]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Outcome:
    """What happened for one subscriber."""

    subscriber: str
    status: str  # sent | failed | nothing-due | preview | unsubscribed | paused
    kind: str | None = None
    subject: str | None = None
    events: int = 0
    listed: int = 0
    html_bytes: int = 0  # the HTML part as mailed (quoted-printable encoded)
    message_bytes: int = 0
    error: str | None = None
    files: list[str] = field(default_factory=list)

    def line(self) -> str:
        who = f"{self.subscriber}:"
        if self.status == "nothing-due":
            return f"{who} nothing to send"
        if self.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.PAUSED, SubscriberStatus.REMOVED):
            return f"{who} {self.status}: nothing sent"
        if self.status == "failed":
            return f"{who} FAILED ({self.error}); its {self.events} events stay pending for the next try"
        size = f"{self.message_bytes / 1024:.0f} KB"
        what = f"{self.kind} digest, {self.events} events ({self.listed} listed), {size}"
        if self.status == "preview":
            return f"{who} {what} → {', '.join(self.files)}"
        return f"{who} sent {what}: {self.subject}"


def file_entries(settings: Settings) -> list[store.FileEntry]:
    """config.toml's `[[subscribers]]` as the store keeps them."""
    return [
        store.FileEntry(
            sub.name,
            sub.email,
            sub.model_dump(mode="json", exclude={"name", "email", "channel"}),
            sub.channel,
        )
        for sub in settings.subscribers
    ]


def as_settings(row: store.SubscriberRow) -> SubscriberSettings:
    """A stored subscriber, checked by the same rules as a config.toml entry."""
    return SubscriberSettings(name=row.name, email=row.email, channel=row.channel, **row.preferences)


def sync_file(session: Session, settings: Settings, now: datetime) -> list[str]:
    """Bring config.toml's subscribers into the database (created, updated, or removed)."""
    return store.sync_file_subscribers(session, file_entries(settings), now)


def roster(db: Database, settings: Settings, only: str | None, now: datetime) -> list[SubscriberSettings]:
    """The subscribers to build digests for: every active one, or the one named. The file's
    entries are brought in first, so an edit to config.toml counts from the next run."""
    with db.session() as s:
        sync_file(s, settings, now)
        if only:
            row = store.get_subscriber(s, only)
            if row is None or row.status in (SubscriberStatus.PENDING, SubscriberStatus.REMOVED):
                known = [r.name for r in store.list_subscribers(s, [SubscriberStatus.ACTIVE])]
                raise UserError(f"no subscriber named {only!r} (known: {', '.join(known) or 'none yet'})")
            rows = [row]
        else:
            rows = store.list_subscribers(s, [SubscriberStatus.ACTIVE])
            if not rows and not settings.subscribers:
                raise UserError(
                    "no subscribers yet: add [[subscribers]] to the config (see config.toml), "
                    "or let readers sign up at /subscribe (ctmonitor serve)"
                )
        return [as_settings(r) for r in rows]


# -- preview and send --------------------------------------------------------------------


def _message(
    settings: Settings, rendered: Rendered, sub: SubscriberSettings, message_id: str, now: datetime
) -> EmailMessage:
    smtp = settings.smtp
    mailto = smtp.list_unsubscribe
    if not mailto and settings.schedule.admin_email:  # a person reads these and acts on them
        mailto = f"mailto:{settings.schedule.admin_email}?subject=" + quote(f"unsubscribe {sub.name}")
    leave = [u for u in (rendered.digest.unsubscribe_url, mailto) if u]
    return build_message(
        rendered,
        # a reader who signed up on the web is addressed by the address they typed alone
        to_name=sub.name if rendered.digest.filters_by_file else "",
        to_address=sub.email,
        from_name=smtp.from_name,
        from_address=smtp.from_address or "ctmonitor@localhost.localdomain",
        message_id=message_id,
        date=now.replace(tzinfo=UTC) if now.tzinfo is None else now,
        list_unsubscribe=leave,
        one_click=bool(rendered.digest.unsubscribe_url),
    )


def _domain(settings: Settings) -> str:
    return (settings.smtp.from_address or "ctmonitor.localdomain").rpartition("@")[2]


def preview(
    db: Database,
    settings: Settings,
    classifier: Classifier,
    *,
    now: datetime,
    out_dir: Path,
    subscriber: str | None = None,
) -> list[Outcome]:
    """Write each due digest as .html, .txt and .eml; send nothing, settle nothing."""
    subs = roster(db, settings, subscriber, now)
    filters = {s.name: subscriber_filter(s, classifier) for s in subs}
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with db.session() as s:
        for sub in subs:
            p = prepare(s, settings, sub, filters[sub.name], now)
            if p is None or p.rendered is None:
                outcomes.append(Outcome(sub.name, "nothing-due"))
                continue
            msg = _message(
                settings, p.rendered, p.sub, make_msgid("ctmonitor-preview", domain=_domain(settings)), now
            )
            files = []
            for suffix, body in ((".html", p.rendered.html), (".txt", p.rendered.text)):
                path = out_dir / f"{sub.name}{suffix}"
                path.write_text(body, encoding="utf-8")
                files.append(str(path))
            eml = out_dir / f"{sub.name}.eml"
            eml.write_bytes(msg.as_bytes())
            files.append(str(eml))
            d = p.rendered.digest
            outcomes.append(
                Outcome(
                    sub.name,
                    "preview",
                    d.kind,
                    d.subject,
                    d.events,
                    d.listed,
                    p.rendered.html_sent_bytes,
                    len(msg.as_bytes()),
                    files=files,
                )
            )
        s.rollback()
    return outcomes


def send_due(
    db: Database,
    settings: Settings,
    classifier: Classifier,
    mailer: Mailer,
    *,
    now: datetime,
    subscriber: str | None = None,
    sender: ChannelSender | None = None,
) -> list[Outcome]:
    """Send each subscriber the digest that is due, exactly once: by mail, or through their
    channel (Apprise) when they have one. Returns one Outcome each.

    A failed subscriber does not stop the others; its events stay due.
    """
    sender = sender or ChannelSender()
    outcomes = []
    with exclusive(db.engine, "digest"):
        with db.session() as s:
            if n := store.interrupt_stale_deliveries(s, now, DIGEST_KINDS):
                log.warning(
                    "%s digest deliveries were interrupted earlier; their events will be sent again", n
                )
        subs = roster(db, settings, subscriber, now)
        filters = {s.name: subscriber_filter(s, classifier) for s in subs}
        if isinstance(mailer, LazyMailer) and any(not s.channel for s in subs):
            mailer.ready()  # someone is mailed: a missing mail server is one line now
        # One read of the studies and of the pending changes for the whole run; the run
        # holds the digest lock, so only this process settles them meanwhile (changes a
        # poll publishes during the run are due next time).
        with db.session() as s:
            shared = RunData.read(s, [sub.name for sub in subs])
        # Readers who follow the same things one after another: what they share is made
        # once, and let go before the next group (memory does not grow with the readers).
        groups: dict[object, list[SubscriberSettings]] = {}
        for sub in subs:
            groups.setdefault((filters[sub.name], sub.wanted_kinds(), sub.min_importance), []).append(sub)
        done: dict[str, Outcome] = {}
        for group in groups.values():
            shared.let_go()
            for sub in group:
                done[sub.name] = _send_one(db, settings, sub, filters[sub.name], mailer, sender, now, shared)
        outcomes = [done[sub.name] for sub in subs]
    return outcomes


def _send_one(
    db: Database,
    settings: Settings,
    sub: SubscriberSettings,
    flt: StudyFilter,
    mailer: Mailer,
    sender: ChannelSender,
    now: datetime,
    shared: RunData | None = None,
) -> Outcome:
    with db.session() as s:
        row = store.get_subscriber(s, sub.name)
        if row is None or row.status != SubscriberStatus.ACTIVE:
            # they left or paused with their link (perhaps a moment ago): nothing is sent
            return Outcome(sub.name, row.status if row is not None else "removed")
        p = prepare(s, settings, sub, flt, now, shared)
        if p is not None:
            # Outside the filters, past the run's frontier (a held change): a row each, so
            # they are not re-read every week. Those up to it are settled by the floor: now
            # when nothing is to be told, else once the digest is accepted (if it is not,
            # they are judged again at the next try).
            store.settle(s, sub.name, [i for i in p.filtered_ids if i > p.floor], Settlement.FILTERED, None)
            if p.rendered is None:
                store.raise_floor(s, sub.name, p.floor)
    if p is None or p.rendered is None:
        return Outcome(sub.name, "nothing-due")
    rendered = p.rendered
    d = rendered.digest
    with db.session() as s:
        row = store.begin_delivery(
            s,
            subscriber=sub.name,
            address=channels.masked(sub.channel) if sub.channel else sub.email,
            kind=d.kind,
            created_at=now,
            period_start=d.period_start,
            period_end=d.period_end,
            message_id="",
            subject=d.subject,
            events=d.events,
            listed=d.listed,
            size_bytes=0,
            # the floor it raises once sent (a first digest: its cursor)
            upto_event_id=p.upto_event_id if p.upto_event_id is not None else p.floor or None,
        )
        delivery_id = row.id
        row.message_id = f"<ctmonitor.digest.{delivery_id}.{sub.name}@{_domain(settings)}>"
        message_id = row.message_id
    msg = _message(settings, rendered, sub, message_id, now)
    size = len(rendered.text.encode()) if sub.channel else len(msg.as_bytes())
    outcome = Outcome(sub.name, "sent", d.kind, d.subject, d.events, d.listed, rendered.html_sent_bytes, size)
    try:
        if sub.channel:  # the digest as text, through Apprise
            sender.send(sub.channel, title=d.subject, body=rendered.text)
        else:
            mailer.send(msg)
    except (MailError, ChannelError) as exc:
        with db.session() as s:
            store.end_delivery(s, delivery_id, DeliveryStatus.FAILED, now, error=str(exc), size_bytes=size)
        outcome.status, outcome.error = "failed", str(exc)
        return outcome
    # Accepted: settle its events and the delivery together. What it listed gets a row each
    # (the record of what was told); the rest up to the frontier rises with the floor.
    with db.session() as s:
        if d.kind == DeliveryKind.LANDSCAPE:  # it stands for everything up to its cursor
            store.raise_floor(s, sub.name, p.upto_event_id)
        else:
            store.settle(s, sub.name, sorted(d.listed_ids), Settlement.LISTED, delivery_id)
            above = sorted(i for i in d.all_ids - d.listed_ids if i > p.floor)
            store.settle(s, sub.name, above, Settlement.SUMMARISED, delivery_id)
            store.raise_floor(s, sub.name, p.floor)
        store.end_delivery(s, delivery_id, DeliveryStatus.SENT, now, size_bytes=size)
    return outcome


# -- status --------------------------------------------------------------------------------


@dataclass(slots=True)
class SubscriberState:
    name: str
    address: str
    last_sent_at: datetime | None
    last_kind: str | None
    last_failure: str | None  # the latest attempt's error, when it failed
    last_failure_at: datetime | None
    pending: int  # unsettled events (before filters)
    status: str = SubscriberStatus.ACTIVE
    managed_by: str = "file"
    channel: str = "e-mail"  # masked: never a secret


def subscriber_states(session: Session, settings: Settings) -> list[SubscriberState]:
    """Every subscriber with their state and last delivery: those in the database, and
    config.toml's entries not brought in yet (read-only: nothing is written here)."""
    rows = {r.name: r for r in store.list_subscribers(session) if r.status != SubscriberStatus.REMOVED}
    names = sorted({*rows, *(sub.name for sub in settings.subscribers)})
    file_addresses = {sub.name: sub.email for sub in settings.subscribers}
    out = []
    for name in names:
        row = rows.get(name)
        last_sent = store.last_sent_digest(session, name)
        latest = store.latest_delivery(session, name)
        failing = (DeliveryStatus.FAILED, DeliveryStatus.INTERRUPTED)
        failed = latest if latest is not None and latest.status in failing else None
        out.append(
            SubscriberState(
                name,
                file_addresses.get(name) or (row.email if row else ""),
                last_sent.finished_at if last_sent else None,
                last_sent.kind if last_sent else None,
                failed.error if failed else None,
                failed.finished_at if failed else None,
                store.count_pending(session, name),
                status=row.status if row else SubscriberStatus.ACTIVE,
                managed_by=row.managed_by if row else store.FILE,
                channel=channels.masked(row.channel if row else settings.subscriber(name).channel),
            )
        )
    return out

"""What the subscriber's pages show: the typed results of the sign-up, confirmation,
manage and leave use cases (monitor.app.subscribing), each with its JSON and one line of
text. A reader's address is only ever shown masked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor import store
from monitor.app.browse import ChangesView

NOT_VALID = "this link is not valid (altered, revoked or no longer in use)"


def masked(address: str) -> str:
    """`j***@example.org`: enough for a reader to recognise their own address."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


@dataclass(frozen=True)
class SignupResult:
    """What the sign-up page says. `outcome`: "sent" (also when nothing was sent because
    the address's limit was reached: the page must not differ), "limited" (too many
    sign-ups from this client), "mail-failed", "closed" (sign-up is off)."""

    outcome: str
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome}

    def text(self) -> str:
        return self.outcome


@dataclass(frozen=True)
class ConfirmResult:
    address: str  # masked
    confirmed: bool
    changed: bool  # this request confirmed it
    manage_token: str = ""
    ok: bool = True
    first_digest: str = ""  # when the next digest run is, in the schedule's time zone, as a reader reads it

    def to_json(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed, "changed": self.changed}

    def text(self) -> str:
        return "confirmed" if self.confirmed else "awaiting confirmation"


@dataclass(frozen=True)
class ManageView:
    """A subscriber's own page: their state and filters, and what changed since their last look."""

    subscriber: str
    address: str  # masked
    status: str
    managed_by: str
    preferences: dict[str, Any]
    describe: str
    since_last_look: ChangesView
    upto_event_id: int  # "mark as read" marks up to here (what this page was built from)
    changes_url: str
    message: str = ""
    last_sent_at: datetime | None = None
    revoked: bool = False  # this page's link was just replaced: show nothing more
    ok: bool = True

    @property
    def editable(self) -> bool:
        return self.managed_by == store.WEB

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriber": self.subscriber,
            "status": self.status,
            "managed_by": self.managed_by,
            "preferences": self.preferences,
            "new_changes": self.since_last_look.total,
        }

    def text(self) -> str:
        return f"{self.subscriber}: {self.status}"


@dataclass(frozen=True)
class LeaveResult:
    subscriber: str
    address: str  # masked: the page never shows the whole address
    unsubscribed: bool
    changed: bool  # this request ended the subscription (False: it had ended before)
    ok: bool = True
    manage_token: str = field(default="", repr=False)  # their own page: subscribe again from there
    by_file: bool = False  # named by the administrator (a web reader is never shown an internal name)

    def to_json(self) -> dict[str, Any]:
        return {"subscriber": self.subscriber, "unsubscribed": self.unsubscribed, "changed": self.changed}

    def text(self) -> str:
        return f"{self.subscriber}: " + ("unsubscribed" if self.unsubscribed else "subscribed")

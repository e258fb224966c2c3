"""A reader changes the address their digest goes to: from their own page they give the
new one, a confirmation link goes to that address, and nothing changes until it is
followed (so nobody can move someone's digest to an address they cannot read). Only
readers who signed up on the web; an administrator's entries change in config.toml."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor import store
from monitor.app import notices
from monitor.app.accounts import NOT_VALID, masked
from monitor.config import SubscriberSettings
from monitor.core.domain import SubscriberStatus, UserError


@dataclass(frozen=True)
class AddressResult:
    address: str  # the new address, masked
    changed: bool  # this request changed it
    done: bool  # the digest goes to the new address
    manage_token: str = ""
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "changed": self.changed}

    def text(self) -> str:
        return "address changed" if self.done else "awaiting confirmation"


class AddressUseCases:
    """Mixed into Application (settings, database, now, and SubscriberUseCases._mail)."""

    settings: Any
    database: Any
    _mail: Callable[[str, Any], bool]  # SubscriberUseCases': a notice sent, or False

    def now(self) -> datetime:  # pragma: no cover - Application's
        raise NotImplementedError

    def request_address_change(self, s: Any, row: Any, new_address: str) -> str:
        """Mail a confirmation link to the new address; returns the page's message."""
        from pydantic import ValidationError

        if row.managed_by != store.WEB:
            raise UserError("your address is set by the person who runs this monitor; ask them to change it")
        try:
            new = SubscriberSettings(name="check", email=new_address.strip()).email
        except ValidationError:
            raise UserError(f"{new_address.strip()!r} is not an e-mail address") from None
        if new.lower() == row.email.lower():
            return "That is already your address."
        if not self._mail(new, notices.address_notice(s, row, self.settings, new)):
            return "The confirmation mail could not be sent just now; try again later."
        return (
            f"A confirmation link is on its way to {masked(new)}; your digest goes there once it is followed."
        )

    def address_confirming(self, token: str) -> AddressResult:
        """The confirmation page before its button (a GET changes nothing)."""
        with self.database.session() as s:
            row, new = self._address_holder(s, token)
            return AddressResult(masked(new), False, row.email.lower() == new.lower())

    def change_address(self, token: str) -> AddressResult:
        """Follow the link: the digest goes to the new address from now on. Idempotent."""
        from monitor.publishing import links

        with self.database.session() as s:
            row, new = self._address_holder(s, token)
            changed = row.email.lower() != new.lower()
            if changed:
                store.set_email(s, row.name, new, self.now())
            manage = links.make_token(s, row.name, row.link_generation, links.MANAGE)
            return AddressResult(masked(new), changed, True, manage_token=manage)

    def _address_holder(self, s: Any, token: str) -> tuple[Any, str]:
        from monitor.publishing import links

        holder = links.read_token(s, token, links.ADDRESS)
        row = store.get_subscriber(s, holder.name) if holder else None
        if (
            holder is None
            or not holder.extra
            or row is None
            or row.link_generation != holder.generation
            or row.status in (SubscriberStatus.REMOVED, SubscriberStatus.PENDING)
        ):
            raise UserError(NOT_VALID)
        return row, holder.extra

"""A reader changes the address their digest goes to: from their own page they give the
new one, a confirmation link goes to that address, and nothing changes until it is
followed (so nobody can move someone's digest to an address they cannot read). Only
readers who signed up on the web; an administrator's entries change in config.toml."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid
from typing import Any

from monitor import store
from monitor.app.accounts import masked
from monitor.config import SubscriberSettings
from monitor.core.domain import SubscriberStatus, UserError

_NOT_VALID = "this link is not valid (altered, revoked or no longer in use)"


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
    """Mixed into Application (settings, database, now, mailer_factory)."""

    settings: Any
    database: Any
    mailer_factory: Any

    def now(self) -> datetime:  # pragma: no cover - Application's
        raise NotImplementedError

    def request_address_change(self, s: Any, row: Any, new_address: str) -> str:
        """Mail a confirmation link to the new address; returns the page's message."""
        from pydantic import ValidationError

        from monitor.publishing import links
        from monitor.publishing.mailer import MailError
        from monitor.publishing.render import Notice, notice_message

        if row.managed_by != store.WEB:
            raise UserError("your address is set by the person who runs this monitor; ask them to change it")
        try:
            new = SubscriberSettings(name="check", email=new_address.strip()).email
        except ValidationError:
            raise UserError(f"{new_address.strip()!r} is not an e-mail address") from None
        if new.lower() == row.email.lower():
            return "That is already your address."
        token = links.make_token(s, row.name, row.link_generation, links.ADDRESS, extra=new)
        notice = Notice(
            subject="Confirm the new address for your ctmonitor digest",
            title="Confirm your new address",
            paragraphs=(
                "Someone, probably you, asked for their ctmonitor digest to come to this address "
                "instead of the one it goes to now.",
                "Nothing changes until you confirm here.",
            ),
            action_label="Send my digest to this address",
            action_url=f"{self.settings.web.base_url}/address/{token}",
            footnotes=("If you did not ask for this, ignore this mail: nothing changes.",),
        )
        smtp = self.settings.smtp
        msg = notice_message(
            notice,
            to_address=new,
            from_name=smtp.from_name,
            from_address=smtp.from_address or "ctmonitor@localhost.localdomain",
            message_id=make_msgid(domain="ctmonitor"),
            date=_aware(self.now()),
        )
        s.commit()  # the link's generation is what it is now; the mail may name it
        try:
            self.mailer_factory().send(msg)
        except MailError:
            return "The confirmation mail could not be sent just now; try again later."
        return (
            f"A confirmation link is on its way to {masked(new)}; your digest goes there once you follow it."
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
            raise UserError(_NOT_VALID)
        return row, holder.extra


def _aware(now: datetime) -> datetime:
    from datetime import UTC

    return now.replace(tzinfo=UTC) if now.tzinfo is None else now

"""Subscribers serving themselves: sign up (double opt-in), confirm, manage their filters,
pause, leave, and see what changed since their last look; all through signed links, with
no password. The web calls these; so could any other front end.

What the sign-up never does: tell whether an address is already subscribed (the same
answer, and a mail to the address either way), or mail an address more often than the
rate limits allow (per address per day, per client per hour).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from monitor import store
from monitor.app import notices
from monitor.app.accounts import (
    NOT_VALID,
    ConfirmResult,
    LeaveResult,
    ManageView,
    SignupResult,
    masked,
)
from monitor.app.browse import ChangesQuery, ChangesView
from monitor.app.following import FollowUseCases
from monitor.config import SubscriberSettings
from monitor.core.domain import SubscriberStatus, UserError

if TYPE_CHECKING:
    from monitor.publishing.render import Notice

SIGNUP = "signup"
# What a reader may set in the browser: the landscape's filters, ids to follow, how much.
PREFERENCE_KEYS = (
    "modalities",
    "targets",
    "indications",
    "statuses",
    "sponsors",
    "countries",
    "phases",
    "products",
    "registries",
    "nct_ids",
    "min_importance",
    "kinds",
    "include_out_of_scope",
    "publications",
)


@dataclass(frozen=True)
class SubscriberList:
    subscribers: list[dict[str, Any]]
    message: str = ""
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"subscribers": self.subscribers}

    def text(self) -> str:
        lines = [self.message] if self.message else []
        if not self.subscribers:
            lines.append("no subscribers yet ([[subscribers]] in config.toml, or /subscribe on the web)")
        for x in self.subscribers:
            last = f"last digest {x['last_sent_at']:%Y-%m-%d}" if x["last_sent_at"] else "no digest yet"
            who = "config.toml" if x["managed_by"] == store.FILE else "signed up on the web"
            lines.append(
                f"{x['name']:<20} {x['status']:<12} {x['address']} via {x['channel']}; {who}; {last}; "
                f"{x['pending']} changes pending"
            )
        return "\n".join(lines)


class SubscriberUseCases(FollowUseCases):
    """Mixed into Application (settings, database, classifier, now, mailer_factory)."""

    settings: Any
    database: Any
    classifier: Any
    mailer_factory: Any

    def now(self) -> datetime:  # pragma: no cover - Application's
        raise NotImplementedError

    # -- the file's subscribers ----------------------------------------------------------

    def sync_subscribers(self) -> list[str]:
        """Bring config.toml's [[subscribers]] into the database (at start of serve and run,
        and before every digest run). Returns the names that changed."""
        from monitor.publishing import delivery

        with self.database.session() as s:
            return delivery.sync_file(s, self.settings, self.now())

    def signing_key(self) -> str:
        """The key behind every signed link and form token (CTMONITOR_SECRET_KEY or the database's)."""
        from monitor.publishing import links

        with self.database.session() as s:
            return links.secret(s)

    # -- sign-up ------------------------------------------------------------------------------

    def check_preferences(self, email: str, preferences: dict[str, Any]) -> dict[str, Any]:
        """A reader's choices, checked by the same rules as a config.toml entry (one-line
        UserError naming what is wrong) and returned as they will be stored."""
        from pydantic import ValidationError

        from monitor.publishing import delivery

        unknown = set(preferences) - set(PREFERENCE_KEYS)
        if unknown:
            raise UserError(f"unknown field {sorted(unknown)[0]!r}")
        try:
            sub = SubscriberSettings(name="check", email=email, **preferences)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()) if not isinstance(x, int))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise UserError(f"{where}: {msg}" if where else msg) from None
        flt = delivery.subscriber_filter(sub, self.classifier)
        self._check_on_registry(sub.nct_ids)
        out = sub.model_dump(mode="json", include=set(PREFERENCE_KEYS))
        out.update(
            modalities=list(flt.modalities), targets=list(flt.targets), indications=list(flt.indications)
        )
        return out

    def sign_up(self, email: str, preferences: dict[str, Any], *, client: str) -> SignupResult:
        """Start a subscription: a pending row and a confirmation mail (nothing else is sent
        before the link in it is followed). An address already subscribed gets its manage
        link instead; the answer is the same either way."""
        web = self.settings.web
        if not web.signup:
            return SignupResult("closed", ok=False)
        if not web.base_url:
            raise UserError("sign-up needs [web] base_url: the confirmation mail must link back here")
        email = email.strip()
        prefs = self.check_preferences(email, preferences)
        now = self.now()
        with self.database.session() as s:
            key = self._key(s)
            client_key = _digest(key, "client", client)
            address_key = _digest(key, "address", email.lower())
            store.purge_attempts(s, now - timedelta(days=1))
            store.drop_stale_signups(s, now - timedelta(days=web.confirm_within_days))
            hour = store.count_attempts(s, SIGNUP, now - timedelta(hours=1), client_key=client_key)
            if hour >= web.signups_per_client_per_hour:
                return SignupResult("limited", ok=False)
            day = store.count_attempts(s, SIGNUP, now - timedelta(days=1), address_key=address_key)
            store.record_attempt(s, SIGNUP, now, address_key=address_key, client_key=client_key)
            if day >= web.signups_per_address_per_day:
                return SignupResult("sent")  # quietly: the page must not tell this case apart
            existing = [
                r
                for r in store.subscribers_with_email(s, email)
                if r.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)
            ]
            if existing:
                notice = notices.already_notice(s, existing[0], self.settings)
            else:
                pending = [
                    r for r in store.subscribers_with_email(s, email) if r.status == SubscriberStatus.PENDING
                ]
                row = pending[0] if pending else store.add_signup(s, email, prefs, now)
                store.set_preferences(s, row.name, prefs, now)
                notice = notices.confirm_notice(s, row, self.settings)
        # committed before mailing: a link in the mail always finds its row
        return SignupResult("sent") if self._mail(email, notice) else SignupResult("mail-failed", ok=False)

    def revoke_links(self, name: str) -> SubscriberList:
        """Invalidate every link of this subscriber (the CLI's `subscribers --revoke`); the
        next digest carries a new one."""
        self.sync_subscribers()
        with self.database.session() as s:
            if store.get_subscriber(s, name) is None:
                raise UserError(f"no subscriber named {name!r}")
            store.revoke_links(s, name, self.now())
        return self.subscriber_list(
            f"{name}: every earlier link is revoked; the next digest carries a new one"
        )

    def unsubscribe_by_name(self, name: str) -> SubscriberList:
        """The administrator ends a subscription (a request by mail): nothing more is sent."""
        self.sync_subscribers()
        with self.database.session() as s:
            if store.get_subscriber(s, name) is None:
                raise UserError(f"no subscriber named {name!r}")
            changed = store.unsubscribe(s, name, self.now())
        return self.subscriber_list(f"{name}: " + ("unsubscribed" if changed else "was already unsubscribed"))

    def subscriber_list(self, message: str = "") -> SubscriberList:
        """Every subscriber with their state, who manages them, channel and last digest."""
        import dataclasses

        from monitor.publishing import delivery

        with self.database.session() as s:
            return SubscriberList(
                [dataclasses.asdict(x) for x in delivery.subscriber_states(s, self.settings)], message
            )

    def _mail(self, address: str, notice: Notice) -> bool:
        from monitor.publishing.mailer import MailError
        from monitor.publishing.render import notice_message

        smtp = self.settings.smtp
        sender = smtp.from_address or "ctmonitor@localhost.localdomain"
        msg = notice_message(
            notice,
            to_address=address,
            from_name=smtp.from_name,
            from_address=sender,
            message_id=make_msgid("ctmonitor.account", domain=sender.rpartition("@")[2]),
            date=_aware(self.now()),
        )
        try:
            self.mailer_factory().send(msg)
        except MailError:
            return False
        return True

    # -- signed links -----------------------------------------------------------------------

    def _holder(self, s: Any, token: str, purpose: str, *, pending: bool = False) -> Any:
        """The subscriber row a signed link belongs to, or UserError (the web answers 400)
        for a link forged, altered, revoked, made for another purpose, or whose subscriber
        is gone; it never says who, if anyone, it was."""
        from monitor.publishing import links

        holder = links.read_token(s, token, purpose)
        row = store.get_subscriber(s, holder.name) if holder else None
        if (
            holder is None
            or row is None
            or row.link_generation != holder.generation
            or row.status == SubscriberStatus.REMOVED
            or (row.status == SubscriberStatus.PENDING and not pending)
        ):
            raise UserError(NOT_VALID)
        return row  # a confirmation link followed again after confirming is fine

    def leaving(self, token: str) -> LeaveResult:
        """What the unsubscribe page shows before the one click. Changes nothing (a GET must not)."""
        from monitor.publishing import links

        with self.database.session() as s:
            row = self._holder(s, token, links.UNSUBSCRIBE)
            return self._leave_result(
                s, row, unsubscribed=row.status == SubscriberStatus.UNSUBSCRIBED, changed=False
            )

    def _leave_result(self, s: Any, row: Any, *, unsubscribed: bool, changed: bool) -> LeaveResult:
        from monitor.publishing import links

        return LeaveResult(
            row.name,
            masked(row.email),
            unsubscribed=unsubscribed,
            changed=changed,
            manage_token=links.make_token(s, row.name, row.link_generation, links.MANAGE),
            by_file=row.managed_by == store.FILE,
        )

    def unsubscribe(self, token: str) -> LeaveResult:
        """End the link holder's subscription: nothing more is sent. Idempotent (a mail
        client's one-click POST may come twice)."""
        from monitor.publishing import links

        with self.database.session() as s:
            row = self._holder(s, token, links.UNSUBSCRIBE)
            changed = store.unsubscribe(s, row.name, self.now())
            return self._leave_result(s, row, unsubscribed=True, changed=changed)

    def confirming(self, token: str) -> ConfirmResult:
        """The confirmation page before its button (a GET changes nothing: mail scanners follow links)."""
        from monitor.publishing import links

        with self.database.session() as s:
            row = self._holder(s, token, links.CONFIRM, pending=True)
            return ConfirmResult(masked(row.email), row.status != SubscriberStatus.PENDING, False)

    def confirm(self, token: str) -> ConfirmResult:
        """Confirm a sign-up: the subscriber is active from now on and their first digest
        (the landscape) comes with the next digest run. Idempotent."""
        from monitor.publishing import delivery, links

        with self.database.session() as s:
            row = self._holder(s, token, links.CONFIRM, pending=True)
            changed = False
            if row.status == SubscriberStatus.PENDING:
                changed = store.set_status(s, row.name, SubscriberStatus.ACTIVE, self.now())
                # their "last look" starts now: the landscape digest shows the picture so far
                store.mark_seen(s, row.name, store.max_published_event_id(s) or 0, self.now())
            manage = delivery.manage_url(s, self.settings, row.name).rsplit("/", 1)[-1]
            return ConfirmResult(
                masked(row.email), True, changed, manage_token=manage, first_digest=self._next_digest()
            )

    def _next_digest(self) -> str:
        """The next digest run, "Monday 7 December 2026 at 07:00 (America/New_York)"."""
        from monitor.app.schedule import next_runs

        when = next_runs(self.settings, self.now()).get("digest")
        if when is None:
            return ""
        return f"{when:%A} {when.day} {when:%B %Y at %H:%M} ({self.settings.schedule.timezone})"

    # -- the manage page ----------------------------------------------------------------------

    def manage(self, token: str) -> ManageView:
        """The link holder's page. Reads only."""
        from monitor.publishing import links

        with self.database.session() as s:
            row = self._holder(s, token, links.MANAGE)
            return self._view(s, row)

    def manage_action(
        self,
        token: str,
        action: str,
        *,
        preferences: dict[str, Any] | None = None,
        upto: int | None = None,
        address: str | None = None,
    ) -> ManageView:
        """Change the link holder's subscription: save (filters; browser sign-ups only: the
        file's subscribers have theirs set in config.toml), pause, resume, unsubscribe,
        resubscribe, read (mark the changes up to `upto` as seen), or address (a new one,
        confirmed from the mail sent to it: monitor.app.addresses)."""
        from monitor.publishing import links

        now = self.now()
        with self.database.session() as s:
            row = self._holder(s, token, links.MANAGE)
            if action == "save":
                if row.managed_by != store.WEB:
                    raise UserError(
                        "your filters are set by the person who runs this monitor: ask them to change them"
                    )
                store.set_preferences(s, row.name, self.check_preferences(row.email, preferences or {}), now)
                message = "Your filters are saved: the next digest follows them."
            elif action == "pause":
                store.set_status(s, row.name, SubscriberStatus.PAUSED, now)
                message = "Your digest is paused. Changes wait for you; resume whenever you like."
            elif action in ("resume", "resubscribe"):
                store.set_status(s, row.name, SubscriberStatus.ACTIVE, now)
                message = "Your digest is on again."
            elif action == "unsubscribe":
                store.set_status(s, row.name, SubscriberStatus.UNSUBSCRIBED, now)
                message = "You are unsubscribed: nothing more is sent."
            elif action == "new-link":
                # the link leaked (a forwarded digest): every earlier link stops working and
                # a fresh one goes to the address, so only its owner can go on
                store.revoke_links(s, row.name, now)
                s.flush()
                notice = notices.link_notice(s, row, self.settings)
                s.commit()
                sent = self._mail(row.email, notice)
                return ManageView(
                    subscriber=row.name,
                    address=masked(row.email),
                    status=row.status,
                    managed_by=row.managed_by,
                    preferences={},
                    describe="",
                    since_last_look=ChangesView(ChangesQuery(), [], 0),
                    upto_event_id=0,
                    changes_url="",
                    message=(
                        "This link no longer works. A new one is on its way to your address."
                        if sent
                        else "This link no longer works, but the mail with the new one could not be "
                        "sent just now: ask the person who runs this monitor for one."
                    ),
                    revoked=True,
                )
            elif action == "address":
                message = self.request_address_change(s, row, address or "")  # type: ignore[attr-defined]
            elif action == "read":
                if upto is None or upto < 0:
                    raise UserError("read: which changes (upto) is missing")
                store.mark_seen(s, row.name, upto, now)
                message = "Marked as read."
            else:
                raise UserError(
                    f"action: {action!r}; valid: save, pause, resume, unsubscribe, resubscribe, "
                    "read, new-link, address"
                )
            s.flush()
            return self._view(s, row, message)

    def _view(self, s: Any, row: Any, message: str = "") -> ManageView:
        from monitor.app import browse
        from monitor.publishing import delivery

        sub = delivery.as_settings(row)
        flt = delivery.subscriber_filter(sub, self.classifier)
        q = ChangesQuery(
            filter=flt,
            kinds=sub.wanted_kinds(),
            min_importance=sub.min_importance,
            after_event_id=row.seen_upto_event_id,
            limit=100,
        )
        last = store.last_sent_digest(s, row.name)
        base = self.settings.web.base_url
        return ManageView(
            subscriber=row.name,
            address=masked(row.email),
            status=row.status,
            managed_by=row.managed_by,
            preferences=sub.model_dump(mode="json", include=set(PREFERENCE_KEYS)),
            describe=flt.describe(),
            since_last_look=browse.changes(s, q),
            upto_event_id=store.max_published_event_id(s) or 0,
            changes_url=(base or "") + "/changes" + delivery.changes_query(flt),
            message=message,
            last_sent_at=last.finished_at if last else None,
        )

    def _key(self, s: Any) -> str:
        from monitor.publishing import links

        return links.secret(s)


def _digest(key: str, purpose: str, value: str) -> str:
    """A keyed hash: rate-limit records never hold an address or an IP address."""
    return hmac.new(key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _aware(now: datetime) -> datetime:
    from datetime import UTC

    return now.replace(tzinfo=UTC) if now.tzinfo is None else now

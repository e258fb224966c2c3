"""The short mails a reader's account sends: confirm a new address, "you are already
subscribed", a new personal link. Each links back to the web with a signed token; none
names an internal subscriber name."""

from __future__ import annotations

from typing import Any

from monitor.config import Settings
from monitor.publishing import delivery, links
from monitor.publishing.render import Notice
from monitor.store import Session


def confirm_notice(s: Session, row: Any, settings: Settings) -> Notice:
    """The mail that asks a new reader to confirm their address."""

    token = links.make_token(s, row.name, row.link_generation, links.CONFIRM)
    days = settings.web.confirm_within_days
    return Notice(
        subject="Confirm your ctmonitor digest",
        title="Confirm your subscription",
        paragraphs=(
            "Someone, probably you, asked for ctmonitor's digest of cell and antibody therapy "
            "trials in autoimmune disease to be sent to this address.",
            "Nothing is sent until you confirm. Your first digest is a picture of the studies "
            "your filters follow; after that, what changed.",
        ),
        action_label="Confirm my subscription",
        action_url=f"{settings.web.base_url}/confirm/{token}",
        footnotes=(
            f"The link works for {days} days. If you did not ask for this, ignore this mail: "
            "nothing more will come.",
        ),
    )


def already_notice(s: Session, row: Any, settings: Settings) -> Notice:
    """The mail to an address that signs up again: its own page, nothing changed."""

    return Notice(
        subject="Your ctmonitor subscription",
        title="You are already subscribed",
        paragraphs=(
            "Someone, probably you, tried to sign this address up for ctmonitor's digest. "
            "It already receives it, so nothing was changed.",
            "To change your filters, pause the digest or leave, use your personal page.",
        ),
        action_label="Open my subscription",
        action_url=delivery.manage_url(s, settings, row.name),
        footnotes=("If you did not ask for this, ignore this mail.",),
    )


def link_notice(s: Session, row: Any, settings: Settings) -> Notice:
    """The mail with a reader's new personal link (every earlier one revoked)."""

    return Notice(
        subject="Your new ctmonitor link",
        title="Your new personal link",
        paragraphs=(
            "You (or someone with your previous link) asked for a new link to your ctmonitor "
            "subscription. The previous links, in earlier digests too, no longer work.",
        ),
        action_label="Open my subscription",
        action_url=delivery.manage_url(s, settings, row.name),
        footnotes=("The next digests carry the new link.",),
    )


def address_notice(s: Session, row: Any, settings: Settings, new_address: str) -> Notice:
    """The mail to a new address a reader gave: their digest moves there once followed."""
    token = links.make_token(s, row.name, row.link_generation, links.ADDRESS, extra=new_address)
    return Notice(
        subject="Confirm the new address for your ctmonitor digest",
        title="Confirm your new address",
        paragraphs=(
            "Someone, probably you, asked for their ctmonitor digest to come to this address "
            "instead of the one it goes to now.",
            "Nothing changes until you confirm here.",
        ),
        action_label="Send my digest to this address",
        action_url=f"{settings.web.base_url}/address/{token}",
        footnotes=("If you did not ask for this, ignore this mail: nothing changes.",),
    )

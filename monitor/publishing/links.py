"""Signed personal links: a subscriber's way to confirm, manage and leave without a
password. itsdangerous signs a small payload (the subscriber's name and the generation of
their links) with the shared secret; nothing in the link expires, but raising the
generation (store.revoke_links) makes every earlier link invalid, and an altered or forged
link never verifies. Links name no address: a forwarded digest reveals nothing more than
the digest itself.

Each purpose signs with its own salt, so one kind of link never passes for another: the
List-Unsubscribe link (which mail providers may fetch) can only end a subscription, the
confirmation link only confirms, and only the manage link opens the subscriber's page."""

from __future__ import annotations

import os
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from monitor import store
from monitor.store import Session

SECRET_ENV = "CTMONITOR_SECRET_KEY"
UNSUBSCRIBE = "unsubscribe"
MANAGE = "manage"
CONFIRM = "confirm"
ADDRESS = "address"  # confirms a new address (the link carries it), sent to that address
_SALTS = {
    UNSUBSCRIBE: "ctmonitor.subscriber-link.v1",  # the salt of the first links sent: they keep working
    MANAGE: "ctmonitor.manage-link.v1",
    CONFIRM: "ctmonitor.confirm-link.v1",
    ADDRESS: "ctmonitor.address-link.v1",
}


@dataclass(frozen=True, slots=True)
class LinkHolder:
    name: str
    generation: int
    extra: str | None = None  # what the link confirms besides its holder (a new address)


def secret(session: Session) -> str:
    """The key every signature here uses: CTMONITOR_SECRET_KEY, or one made once per database."""
    return os.environ.get(SECRET_ENV) or store.shared_secret(session, "link-signing")


def _serializer(session: Session, purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret(session), salt=_SALTS[purpose])


def make_token(
    session: Session, name: str, generation: int, purpose: str = UNSUBSCRIBE, *, extra: str | None = None
) -> str:
    payload: dict[str, object] = {"s": name, "g": generation}
    if extra is not None:
        payload["e"] = extra
    return _serializer(session, purpose).dumps(payload)


def read_token(session: Session, token: str, purpose: str = UNSUBSCRIBE) -> LinkHolder | None:
    """The link's holder, or None for a token that is forged, altered, malformed or made
    for another purpose."""
    try:
        data = _serializer(session, purpose).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), str) or not isinstance(data.get("g"), int):
        return None
    extra = data.get("e")
    return LinkHolder(data["s"], data["g"], extra if isinstance(extra, str) else None)

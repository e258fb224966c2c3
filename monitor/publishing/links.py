"""Signed personal links: a subscriber's way to leave (and, later, to manage) without a
password. itsdangerous signs a small payload (the subscriber's name and the generation of
their links) with the shared secret; nothing in the link expires, but raising the
generation (store.revoke_links) makes every earlier link invalid, and an altered or forged
link never verifies. Links name no address: a forwarded digest reveals nothing more than
the digest itself."""

from __future__ import annotations

import os
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from monitor import store
from monitor.store import Session

SECRET_ENV = "CTMONITOR_SECRET_KEY"
_SALT = "ctmonitor.subscriber-link.v1"


@dataclass(frozen=True, slots=True)
class LinkHolder:
    name: str
    generation: int


def _serializer(session: Session) -> URLSafeSerializer:
    secret = os.environ.get(SECRET_ENV) or store.shared_secret(session, "link-signing")
    return URLSafeSerializer(secret, salt=_SALT)


def make_token(session: Session, name: str, generation: int) -> str:
    return _serializer(session).dumps({"s": name, "g": generation})


def read_token(session: Session, token: str) -> LinkHolder | None:
    """The link's holder, or None for a token that is forged, altered or malformed."""
    try:
        data = _serializer(session).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("s"), str) or not isinstance(data.get("g"), int):
        return None
    return LinkHolder(data["s"], data["g"])

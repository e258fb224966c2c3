"""The curator's use cases behind the administrator login: the review queue with each
study's evidence and a label to pin (written to the overrides file, then relabelled),
held events and their release, the subscriber list.

The login: a password from CTMONITOR_ADMIN_PASSWORD (the pages are off without it),
compared in constant time; a session is a signed, timestamped cookie (itsdangerous) that
also binds a hash of the password, so changing the password ends every session. Failed
logins back off per client: after n failures, the next try waits 2^n seconds (at most 15
minutes), whatever the password.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

from monitor import store
from monitor.core.domain import UserError, check_nct_id
from monitor.core.vocabulary import LABELS, load_overrides

PASSWORD_ENV = "CTMONITOR_ADMIN_PASSWORD"
LOGIN = "login"
MAX_WAIT = timedelta(minutes=15)
_SALT = "ctmonitor.admin-session.v1"


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    session: str = ""  # the cookie's value when ok
    wait_seconds: int = 0  # when refused: how long before the next try is heard

    def text(self) -> str:
        return "signed in" if self.ok else "refused"

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "wait_seconds": self.wait_seconds}


@dataclass(frozen=True)
class ReviewItem:
    row: dict[str, Any]  # the landscape row (labels, review reasons)
    classification: dict[str, Any]  # with evidence


@dataclass(frozen=True)
class HeldRun:
    run_id: int | None
    events: int
    studies: int
    first_at: Any


@dataclass(frozen=True)
class CuratorView:
    review: list[ReviewItem]
    held: list[HeldRun]
    subscribers: list[dict[str, Any]]
    overrides_file: str
    message: str = ""
    labels: tuple[str, ...] = LABELS
    pins: list[dict[str, Any]] = field(default_factory=list)  # every pinned label, with its reason
    ok: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "review": [i.row["nct_id"] for i in self.review],
            "held": [h.__dict__ for h in self.held],
            "subscribers": self.subscribers,
        }

    def text(self) -> str:
        return f"{len(self.review)} to review, {sum(h.events for h in self.held)} held events"


class CuratorUseCases:
    """Mixed into Application (settings, database, classifier, now, reclassify, release)."""

    settings: Any
    database: Any
    _classifier: Any
    classifier: Any

    # -- the login ----------------------------------------------------------------------------

    @staticmethod
    def admin_enabled() -> bool:
        return bool(os.environ.get(PASSWORD_ENV))

    def _signer(self, s: Any) -> TimestampSigner:
        from monitor.publishing import links

        return TimestampSigner(links.secret(s), salt=_SALT)

    @staticmethod
    def _password_tag() -> str:
        return hashlib.sha256(("ctmonitor-admin:" + os.environ.get(PASSWORD_ENV, "")).encode()).hexdigest()[
            :24
        ]

    def admin_login(self, password: str, *, client: str) -> LoginResult:
        """Check the password; back off per client after failures. Never says which part failed."""
        from monitor.app.subscribing import _digest

        expected = os.environ.get(PASSWORD_ENV, "")
        if not expected:
            raise UserError("the administrator pages are off (set CTMONITOR_ADMIN_PASSWORD)")
        now = self.now()
        with self.database.session() as s:
            from monitor.publishing import links

            key = _digest(links.secret(s), "client", client)
            store.purge_attempts(s, now - timedelta(days=1))
            failures = store.count_attempts(s, LOGIN, now - MAX_WAIT * 4, client_key=key)
            last = store.last_attempt_at(s, LOGIN, client_key=key)
            if failures and last is not None:
                wait = min(timedelta(seconds=2**failures), MAX_WAIT)
                if now < last + wait:
                    return LoginResult(False, wait_seconds=int((last + wait - now).total_seconds()) + 1)
            if not hmac.compare_digest(password.encode(), expected.encode()):
                store.record_attempt(s, LOGIN, now, client_key=key)
                return LoginResult(
                    False, wait_seconds=min(2 ** (failures + 1), int(MAX_WAIT.total_seconds()))
                )
            store.clear_attempts(s, LOGIN, client_key=key)
            return LoginResult(True, session=self._signer(s).sign(self._password_tag()).decode())

    def admin_session_valid(self, cookie: str) -> bool:
        if not cookie or not self.admin_enabled():
            return False
        with self.database.session() as s:
            try:
                tag = self._signer(s).unsign(cookie, max_age=self.settings.web.admin_session_hours * 3600)
            except (BadSignature, SignatureExpired):
                return False
        return hmac.compare_digest(tag.decode(), self._password_tag())

    # -- the curator's page ----------------------------------------------------------------------

    def curator_view(self, message: str = "") -> CuratorView:
        from monitor.publishing import delivery

        rows = self.studies(needs_review=True, include_out_of_scope=True).rows  # type: ignore[attr-defined]
        with self.database.session() as s:
            cls = store.classifications(s, [r["nct_id"] for r in rows])
            held: dict[int | None, list[Any]] = {}
            for e in store.list_events(s, held=True):
                held.setdefault(e.run_id, []).append(e)
            subs = [
                {
                    "name": x.name,
                    "address": x.address,
                    "status": x.status,
                    "managed_by": x.managed_by,
                    "channel": x.channel,
                    "last_sent_at": x.last_sent_at,
                    "last_failure": x.last_failure,
                    "pending": x.pending,
                }
                for x in delivery.subscriber_states(s, self.settings)
            ]
        return CuratorView(
            review=[ReviewItem(r, cls.get(r["nct_id"], {})) for r in rows],
            held=[
                HeldRun(run, len(evs), len({e.nct_id for e in evs}), min(e.detected_at for e in evs))
                for run, evs in sorted(held.items(), key=lambda kv: kv[0] or 0)
            ],
            subscribers=subs,
            overrides_file=str(self._overrides_path()),
            message=message,
            pins=self._pins(),
        )

    def _pins(self) -> list[dict[str, Any]]:
        """The labels curators pinned, as the overrides file keeps them (reason included)."""
        path = self.settings.path(self.settings.classification.overrides)
        pinned = load_overrides(path) if path is not None else {}
        return [
            {
                "nct_id": o.nct_id,
                "label": o.field,
                "value": "; ".join(o.value) if isinstance(o.value, list) else o.value,
                "reason": o.reason,
            }
            for items in pinned.values()
            for o in items
        ]

    def _overrides_path(self) -> Path:
        path = self.settings.path(self.settings.classification.overrides)
        if path is None:
            raise UserError("classification.overrides is empty: there is no file to pin labels in")
        return path

    def pin_label(self, nct_id: str, label: str, value: str, reason: str) -> CuratorView:
        """Pin one label of one study: appended to the overrides file (checked as a whole
        before it replaces the old one, atomically), then every study is relabelled with
        the new overrides (or, when a poll holds the writer lock, at the next poll)."""
        from monitor.store.locking import LockBusy

        nct = check_nct_id(nct_id.strip().upper())
        with self.database.session() as s:
            if not store.tracked_ids(s, [nct]):
                raise UserError(f"{nct} is not tracked")
        if label not in LABELS:
            raise UserError(f"label: {label!r}; valid: {', '.join(LABELS)}")
        if not reason.strip():
            raise UserError("give a reason: the overrides file keeps it beside the label")
        parsed: Any
        if label == "in_scope":
            if value.strip().lower() not in ("true", "false", "yes", "no"):
                raise UserError("in_scope takes yes or no")
            parsed = value.strip().lower() in ("true", "yes")
        elif label in ("targets", "indications"):
            parsed = [v.strip() for v in value.split(",") if v.strip()]
        elif label == "product":
            # one product, or several separated by ";" (an unnamed one's name has a comma);
            # each is kept as the catalogue names it, so the pin reads as every page shows it
            names = self.classifier.catalogue.canonical(v for v in value.split(";"))
            parsed = names[0] if len(names) == 1 else list(names)
        else:
            parsed = value.strip()
        if parsed in ("", []):
            raise UserError(f"{label}: give a value")
        path = self._overrides_path()
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        entry = "\n".join(
            [
                "",
                "[[override]]",
                f"nct_id = {json.dumps(nct)}",
                f"field = {json.dumps(label)}",
                f"value = {_toml(parsed)}",
                f"reason = {json.dumps(' '.join(reason.split()), ensure_ascii=False)}",
                "",
            ]
        )
        new = (
            old.rstrip("\n") + "\n" if old.strip() else "# Labels pinned by a curator (ctmonitor).\n"
        ) + entry
        _check_overrides(new, path)
        _replace(path, new)
        self._classifier = None  # the next use reads the new overrides
        try:
            done = self.reclassify()  # type: ignore[attr-defined]
            message = f"Pinned {label} of {nct}; {done.text()}."
        except LockBusy:
            message = f"Pinned {label} of {nct}; a poll is running, so it is relabelled at the next poll."
        return self.curator_view(message)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _check_overrides(text: str, path: Path) -> None:
    """The whole new file must load (a bad value never reaches the file)."""
    with tempfile.TemporaryDirectory() as tmp:
        trial = Path(tmp) / path.name
        trial.write_text(text, encoding="utf-8")
        load_overrides(trial)


def _replace(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

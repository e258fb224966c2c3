"""SMTP delivery: STARTTLS, implicit TLS or plain, with login. The I/O edge for mail.

`send()` returns only when the server has accepted the message for every recipient;
anything else raises MailError with one line saying what failed, so the caller can
leave the events pending. A failure after acceptance (the goodbye) is not a failure.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from monitor.config import ENV_SMTP_PASSWORD, SmtpSettings
from monitor.core.domain import UserError


class MailError(Exception):
    """The server did not accept the message (unreachable, TLS, login, refusal, timeout)."""


class Mailer(Protocol):
    """Anything that delivers a message or raises MailError: SmtpMailer, FolderMailer."""

    def send(self, msg: EmailMessage) -> None: ...


class LazyMailer:
    """A mailer made on first use: a digest run whose subscribers all have a channel
    (publishing.channels) needs no mail server configured."""

    def __init__(self, factory: Callable[[], Mailer]) -> None:
        self._factory, self._mailer = factory, None  # type: Mailer | None

    def ready(self) -> None:
        """Make the mailer now: a configuration problem (no smtp.host) is one line before
        anything is sent, not an error halfway through a run."""
        if self._mailer is None:
            self._mailer = self._factory()

    def send(self, msg: EmailMessage) -> None:
        self.ready()
        assert self._mailer is not None
        self._mailer.send(msg)


class SmtpMailer:
    def __init__(
        self, settings: SmtpSettings, *, password: str | None = None, ca_file: str | None = None
    ) -> None:
        if not settings.host:
            raise UserError("smtp.host is not set in the config: nothing can be sent (try `--preview`)")
        self.settings = settings
        self.password = password if password is not None else os.environ.get(ENV_SMTP_PASSWORD)
        if settings.username and not self.password:
            raise UserError(
                f"smtp.username is set but {ENV_SMTP_PASSWORD} is not: the password comes from there"
            )
        self.ca_file = ca_file or settings.ca_file or None

    @property
    def where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UserError(f"smtp.ca_file {self.ca_file}: cannot be loaded: {exc}") from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=self._context())
        smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        try:
            smtp.ehlo()
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise MailError(
                        f"{self.where} does not offer STARTTLS (set smtp.security to match the server)"
                    )
                smtp.starttls(context=self._context())
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def check(self) -> str:
        """Connect, negotiate TLS and log in, without sending anything (`check-config --connect`)."""
        try:
            smtp = self._connect()
            if self.settings.username:
                smtp.login(self.settings.username, self.password or "")
            smtp.noop()
            smtp.quit()
        except MailError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{self.where}: {_why(exc)}") from None
        login = f", logged in as {self.settings.username}" if self.settings.username else ""
        return f"{self.where} ({self.settings.security}{login})"

    def send(self, msg: EmailMessage) -> None:
        try:
            smtp = self._connect()
        except MailError:
            raise
        except ssl.SSLError as exc:
            raise MailError(f"TLS with {self.where} failed: {exc.reason or exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"cannot reach the mail server {self.where}: {_why(exc)}") from None
        try:
            if self.settings.username:
                smtp.login(self.settings.username, self.password or "")
            refused = smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            smtp.close()
            raise MailError(
                f"{self.where} refused the login for {self.settings.username!r}: {_why(exc)}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            smtp.close()
            raise MailError(f"{self.where}: {_why(exc)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            smtp.close()
            raise MailError(f"{self.where} refused the recipient: {_why(exc)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise MailError(f"sending through {self.where} failed: {_why(exc)}") from None
        # Accepted. What happens at QUIT no longer matters to the message.
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
        if refused:
            raise MailError(f"{self.where} refused {', '.join(refused)}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _text(value: bytes | str) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    return " ".join(text.split())


class FolderMailer:
    """Delivers into a folder instead of a server: one .eml file per message (the offline demo,
    or a staging setup that wants to look at what would be sent). Accepts everything."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sent: list[Path] = []

    def send(self, msg: EmailMessage) -> None:
        to = str(msg["To"].addresses[0].addr_spec) if msg["To"] else "unknown"
        path = self.folder / f"{len(list(self.folder.glob('*.eml'))) + 1:03d}-{to}.eml"
        path.write_bytes(msg.as_bytes())
        self.sent.append(path)

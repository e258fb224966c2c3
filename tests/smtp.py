"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the delivery tests: plain, STARTTLS or implicit
TLS, optional login, and switches that make it refuse, stall or vanish like real servers do."""

from __future__ import annotations

import asyncio
import socket
import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from monitor.config import SmtpSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """The aiosmtpd handler: keeps what it accepted; `reply` turns DATA into a refusal."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reply: str | None = None  # e.g. "451 4.3.0 try again later"
        self.delay = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.reply:
            return self.reply
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 accepted"


class SmtpServer:
    """`with SmtpServer(tmp, security="starttls", login=("u", "p")) as server:`, then `server.settings()`."""

    def __init__(
        self, tmp_path: Path, *, security: str = "none", login: tuple[str, str] | None = None
    ) -> None:
        self.security, self.login = security, login
        self.inbox = Inbox()
        self.port = free_port()
        self.ca_file: Path | None = None
        kwargs: dict[str, Any] = {}
        if security != "none":
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(ctx)
            self.ca_file = tmp_path / f"ca-{self.port}.pem"
            ca.cert_pem.write_to_path(str(self.ca_file))
            if security == "starttls":
                kwargs.update(tls_context=ctx, require_starttls=True)
            else:
                kwargs.update(ssl_context=ctx)
        if login:
            # PLAIN only: after a refused PLAIN, smtplib retries with LOGIN, which stalls aiosmtpd 1.4.
            # auth_require_tls only understands STARTTLS (implicit TLS is TLS from the first byte).
            kwargs.update(
                authenticator=self._authenticate,
                auth_require_tls=security == "starttls",
                auth_exclude_mechanism=["LOGIN"],
            )
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == self.login
        return AuthResult(success=ok, handled=False)

    def settings(self, **overrides: Any) -> SmtpSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": self.security,
            "from_address": "ctmonitor@example.org",
            "timeout_seconds": 5,
            "ca_file": str(self.ca_file) if self.ca_file else "",
            "username": self.login[0] if self.login else "",
        }
        values.update(overrides)
        return SmtpSettings(**values)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

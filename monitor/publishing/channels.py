"""Digests through other channels than e-mail (Slack, Microsoft Teams, Matrix, Mattermost,
a generic JSON webhook, ...), through Apprise, which knows each service's API: one URL per
subscriber (`channel` in their entry), e.g. "slack://${SLACK_TOKEN}/#trials",
"msteams://...", "matrixs://...", "json://host/path".

Secrets stay out of config.toml and the database: `${NAME}` in a channel URL is read from
the environment when sending, and only `masked()` forms of a URL are ever shown. A send
that Apprise reports as failed raises ChannelError: the delivery's bookkeeping (the same
as e-mail's, in delivery.py) leaves its events due for the next run."""

from __future__ import annotations

import logging
import os
import re

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ChannelError(Exception):
    """The channel did not take the message (the error names the service, never a secret)."""


def expand(url: str) -> str:
    """The URL with each ${NAME} replaced from the environment; a missing one is an error."""

    def value(m: re.Match[str]) -> str:
        got = os.environ.get(m.group(1))
        if got is None:
            raise ChannelError(f"the environment variable {m.group(1)} (used in the channel URL) is not set")
        return got

    return _VAR.sub(value, url)


def _secrets(url: str) -> list[str]:
    """What must never appear in an error: the values put in, and the URL's path and password."""
    out = [os.environ.get(name, "") for name in _VAR.findall(url)]
    rest = expand(url).partition("://")[2]
    out.append(rest.split("/", 1)[1] if "/" in rest else "")
    out.append(rest.split("@", 1)[0] if "@" in rest.split("/", 1)[0] else "")
    return [x for x in out if len(x) >= 4]


def masked(url: str) -> str:
    """A channel URL safe to show: the scheme and host, never a token, password or path."""
    if not url:
        return "e-mail"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "channel (unreadable URL)"
    host = rest.split("/", 1)[0].rpartition("@")[2].split("?", 1)[0]
    if "${" in host or not ("." in host or ":" in host or host == "localhost"):
        host = "…"  # not a host name: services such as Slack put a token there
    return f"{scheme}://{host}/…" if ("/" in rest or "@" in rest) else f"{scheme}://{host}"


class _Capture(logging.Handler):
    """Apprise reports why a send failed through logging; keep the last lines for the error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class ChannelSender:
    """Sends one message to one Apprise URL, or raises ChannelError."""

    def send(self, url: str, *, title: str, body: str) -> None:
        import apprise  # only when a channel is used: every command's start would pay ~60 ms

        real = expand(url)
        ap = apprise.Apprise()
        if not ap.add(real):
            raise ChannelError(f"Apprise does not understand the channel URL {masked(url)}")
        capture = _Capture()
        logger = logging.getLogger("apprise")
        logger.addHandler(capture)
        try:
            ok = ap.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
        finally:
            logger.removeHandler(capture)
        if not ok:
            why = "; ".join(capture.lines)[-300:]
            for secret in _secrets(url):
                why = why.replace(secret, "***")
            raise ChannelError(f"{masked(url)} did not take the message" + (f": {why}" if why else ""))

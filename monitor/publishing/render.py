"""Digest -> HTML and plain text (Jinja2 templates), and the MIME message that carries them.

HTML for mail clients: the template's stylesheet is inlined into style attributes by
css_inline (mail clients drop <style> blocks unpredictably), layout is tables, and every
string from the registry is escaped by Jinja's autoescape.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from monitor.core.digest import Digest
from monitor.paths import resource_dir

TEMPLATES_DIR = resource_dir("templates")

_TONES = {
    "Now recruiting": "tag-good",
    "New study": "tag-good",
    "Now in scope": "tag-good",
    "Results posted": "tag-done",
    "Completed": "tag-done",
    "Suspended": "tag-bad",
    "Terminated": "tag-bad",
    "Withdrawn": "tag-bad",
    "Reason given": "tag-bad",
    "No longer in the registry": "tag-bad",
}


def _as_day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _day(value: date | None) -> str:
    return f"{value:%d %b %Y}" if value else ""


def _period(start: date | None, end: date) -> str:
    """A period's days as a reader reads them (datetimes by their day)."""
    if start is None:
        return f"up to {end:%d %b %Y}"
    if _as_day(start) == _as_day(end):
        return f"on {end:%d %b %Y}"
    return f"{start:%d %b %Y} – {end:%d %b %Y}"


def _wrap_items(pairs: list[tuple[str, int]], width: int = 60, indent: int = 15) -> str:
    """`label n, label n, ...` wrapped between items, never inside one."""
    lines: list[str] = []
    line = ""
    for label, n in pairs:
        item = f"{label} {n}"
        if line and len(line) + 2 + len(item) > width:
            lines.append(line + ",")
            line = item
        else:
            line = f"{line}, {item}" if line else item
    lines.append(line)
    return ("\n" + " " * indent).join(lines)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#"})


def _md(value: object) -> str:
    """Text safe inside Markdown (and its tables): markup characters escaped, one line."""
    return " ".join(str(value).split()).translate(_MD_SPECIAL)


_DATE = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?\b")


def keep_dates_whole(text: object) -> Markup:
    """Text escaped for HTML, each ISO date in it kept on one line ("2026-11-18" never
    broken after "2026-" on a narrow screen); the words themselves are not changed."""
    escaped = str(escape(text))
    return Markup(_DATE.sub(lambda m: f'<span style="white-space:nowrap">{m.group(0)}</span>', escaped))


@cache
@cache
def environment(templates: Path = TEMPLATES_DIR) -> Environment:
    """The templates' environment, made once per folder: its compiled templates are kept
    (Jinja still reloads a template whose file changed), so a digest run for a thousand
    readers compiles each template once."""
    env = Environment(
        loader=FileSystemLoader(str(templates)),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["day"] = _day
    env.filters["period"] = _period
    env.filters["tone"] = lambda label: _TONES.get(label, "")
    env.filters["wrap_items"] = _wrap_items
    env.filters["md"] = _md
    env.filters["dates"] = keep_dates_whole
    return env


@cache
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


def render_html(digest: Digest) -> str:
    html = environment().get_template("digest.html.j2").render(d=digest)
    return _inliner().inline(html)


def render_text(digest: Digest) -> str:
    return environment().get_template("digest.txt.j2").render(d=digest)


@dataclass(frozen=True, slots=True)
class Rendered:
    digest: Digest
    html: str
    text: str

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode())

    @property
    def html_sent_bytes(self) -> int:
        """The HTML part's size as mailed (quoted-printable: every `=` of the inlined styles
        is written `=3D`): what a webmail client's clipping threshold (about 102 KB) measures."""
        return sent_size(self.html)


def sent_size(html: str) -> int:
    """Bytes of `html` as build_message encodes it (quoted-printable, UTF-8)."""
    return len(quoted_printable(html))


def quoted_printable(body: str) -> str:
    """`body` as a mail part carries it: UTF-8, quoted-printable (lines of at most 76
    characters). The C encoder: a digest run measures and encodes a thousand of them."""
    return binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii")


def _text_part(body: str, subtype: str) -> EmailMessage:
    part = EmailMessage()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(quoted_printable(body))
    return part


def render_within(build: Callable[[int], Digest], max_items: int, max_html_bytes: int) -> Rendered:
    """Render the digest, listing fewer items until the HTML part fits the size cap as it
    is sent (quoted-printable encoded, see `sent_size`).

    The items left out are named and counted by the digest itself (Digest.omitted_studies,
    Digest.omitted), so shrinking never drops a change silently.
    """
    limit = max_items
    while True:
        digest = build(limit)
        html = render_html(digest)
        size = sent_size(html)
        if size > max_html_bytes and (limit <= 5 or digest.listed <= 5):
            # At the floor of listed changes: name fewer of the studies left out (the rest
            # are counted), down to counts alone.
            named = len(digest.omitted_studies)
            while size > max_html_bytes and named:
                named //= 2
                digest = replace(
                    digest,
                    omitted_studies=digest.omitted_studies[:named],
                    omitted_more=digest.omitted_more + len(digest.omitted_studies) - named,
                )
                html = render_html(digest)
                size = sent_size(html)
        if size <= max_html_bytes or limit <= 5 or digest.listed <= 5:
            return Rendered(digest, html, render_text(digest))
        # Shrink in proportion to the overshoot, at least one item at a time.
        ratio = max_html_bytes / size
        limit = max(5, min(digest.listed - 1, int(digest.listed * ratio * 0.95)))


def build_message(
    rendered: Rendered,
    *,
    to_name: str,
    to_address: str,
    from_name: str,
    from_address: str,
    message_id: str,
    date: datetime,
    list_unsubscribe: str | list[str] = "",
    one_click: bool = False,
) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by clients that can show it."""
    msg = EmailMessage()
    msg["Subject"] = rendered.digest.subject
    msg["From"] = Address(display_name=from_name, addr_spec=from_address)
    msg["To"] = Address(display_name=to_name, addr_spec=to_address)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    uris = [list_unsubscribe] if isinstance(list_unsubscribe, str) else list(list_unsubscribe)
    uris = [u for u in uris if u]
    if uris:
        msg["List-Unsubscribe"] = ", ".join(f"<{u}>" for u in uris)
    if one_click:  # RFC 8058: the https link takes a POST, no login, no confirmation page
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # the parts encoded as sent_size measured them: the size cap holds for what is mailed
    msg["MIME-Version"] = "1.0"
    msg["Content-Type"] = "multipart/alternative"
    msg.attach(_text_part(rendered.text, "plain"))
    msg.attach(_text_part(rendered.html, "html"))
    return msg


@dataclass(frozen=True, slots=True)
class Notice:
    """A short account mail: a title, a few paragraphs, one action link."""

    subject: str
    title: str
    paragraphs: tuple[str, ...]
    action_label: str = ""
    action_url: str = ""
    footnotes: tuple[str, ...] = ()


def notice_message(
    n: Notice, *, to_address: str, from_name: str, from_address: str, message_id: str, date: datetime
) -> EmailMessage:
    """The notice as a multipart/alternative message (plain text and inlined HTML)."""
    env = environment()
    msg = EmailMessage()
    msg["Subject"] = n.subject
    msg["From"] = Address(display_name=from_name, addr_spec=from_address)
    msg["To"] = Address(addr_spec=to_address)
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(env.get_template("notice.txt.j2").render(n=n), subtype="plain", cte="quoted-printable")
    html = _inliner().inline(env.get_template("notice.html.j2").render(n=n))
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg

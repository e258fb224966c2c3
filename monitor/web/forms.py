"""Posted forms: reading an urlencoded body (bounded), and the CSRF check every form has.

CSRF: a random value in a cookie (SameSite=Strict, HttpOnly) and, in each form, that value
signed with the application's key (HMAC). A post is accepted only when the form's token is
the signature of the cookie it came with: another site can make a browser send the cookie
but cannot read it, so it cannot write the matching field. The one-click unsubscribe POST
of RFC 8058 is the exception by design: its signed link is its credential.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "ctm_csrf"
FIELD = "csrf"
MAX_BODY = 64 * 1024


class FormRejected(Exception):
    """A post that is refused as a whole (the web answers 403 or 413 with this line)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


Form = dict[str, list[str]]


async def read_form(request: Request) -> Form:
    """The posted fields (repeated names kept in order). Urlencoded or multipart bodies
    (text fields only), at most 64 KB."""
    if request.method != "POST":
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise FormRejected("the form is too large", 413)
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if body and kind == "multipart/form-data":
        return _multipart_fields(content_type, body)
    if body and kind not in ("application/x-www-form-urlencoded", ""):
        raise FormRejected("forms are sent as application/x-www-form-urlencoded or multipart/form-data", 415)
    out: Form = {}
    for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        out.setdefault(k, []).append(v)
    return out


def _multipart_fields(content_type: str, body: bytes) -> Form:
    """The text fields of a multipart/form-data body (RFC 7578), files ignored: what RFC
    8058's own example of a one-click unsubscribe sends. Parsed by the standard library's
    MIME parser, the body already bounded above."""
    from email import policy
    from email.parser import BytesParser

    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise FormRejected("the multipart form could not be read", 400)
    out: Form = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename():
            continue
        payload = part.get_payload(decode=True) or b""
        out.setdefault(str(name), []).append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return out


def _sign(key: str, value: str) -> str:
    return hmac.new(key.encode(), f"csrf:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_pair(request: Request, key: str) -> tuple[str, str]:
    """(cookie value, form token): the browser's cookie if it has a well-formed one, else a new one."""
    value = request.cookies.get(COOKIE, "")
    if len(value) != 43 or not value.replace("-", "").replace("_", "").isalnum():
        value = secrets.token_urlsafe(32)
    return value, _sign(key, value)


def set_csrf_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(COOKIE, value, httponly=True, samesite="strict", secure=secure, path="/")


def check_csrf(request: Request, form: Form, key: str) -> None:
    cookie = request.cookies.get(COOKIE, "")
    sent = (form.get(FIELD) or [""])[-1]
    if not cookie or not sent or not hmac.compare_digest(sent, _sign(key, cookie)):
        raise FormRejected(
            "this form has expired or did not come from this site: reload the page and send it again"
        )


def form_page(
    pages: Any, request: Request, key: str, name: str, status: int = 200, *, secure: bool, **context: Any
) -> Response:
    """A page with forms (a subscriber's, the curator's): its form token set, never cached,
    never indexed; the cookie Secure when ctmonitor is reached over https."""
    value, token = csrf_pair(request, key)
    response: Response = pages.render(name, status_code=status, csrf=token, **context)
    set_csrf_cookie(response, value, secure=secure)
    response.headers["cache-control"] = "no-store"
    response.headers["x-robots-tag"] = "noindex"
    return response


def values(form: Form, name: str) -> list[str]:
    """Every non-empty value of a field; text fields may hold several, split at commas or lines."""
    out: list[str] = []
    for raw in form.get(name, []):
        out.extend(x.strip() for x in raw.replace("\n", ",").split(",") if x.strip())
    return out


def product_values(form: Form, name: str) -> list[str]:
    """Products typed in a text field: several split at commas, semicolons or lines, but an
    unnamed product's name keeps its comma ("unnamed CD19 CAR-T, <sponsor>")."""
    out: list[str] = []
    for raw in form.get(name, []):
        for piece in raw.replace("\n", ";").split(";"):
            piece = piece.strip()
            if piece.lower().startswith("unnamed "):
                out.append(piece)
            else:
                out.extend(x.strip() for x in piece.split(",") if x.strip())
    return out


def one(form: Form, name: str, default: str = "") -> str:
    got = form.get(name) or [default]
    return got[-1].strip()

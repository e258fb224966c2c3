"""The curator's pages (/admin): sign in with the administrator password, then the review
queue with each study's evidence and a form to pin a label, held events with release,
and the subscriber list. Off (404) unless CTMONITOR_ADMIN_PASSWORD is set.

Every form carries the CSRF token; the session is a signed cookie scoped to /admin
(HttpOnly, SameSite=Strict, Secure behind https) that expires after web.admin_session_hours.
A subscriber's personal link never opens these pages: they take only the admin cookie."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.app import Application
from monitor.core.domain import UserError
from monitor.web import forms
from monitor.web.forms import Form, FormRejected
from monitor.web.pages import Pages

COOKIE = "ctm_admin"


class Admin:
    def __init__(self, app: Application, pages: Pages) -> None:
        self.app, self.pages = app, pages
        self.secure = app.settings.web.base_url.startswith("https://")

    def _off(self) -> Response | None:
        if self.app.admin_enabled():
            return None
        return self.pages.render("error.html.j2", status_code=404, message="No such page.", title="Not found")

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        key = self.app.signing_key()
        return forms.form_page(self.pages, request, key, name, status, secure=self.secure, **context)

    def _signed_in(self, request: Request) -> bool:
        return self.app.admin_session_valid(request.cookies.get(COOKIE, ""))

    def login(self, request: Request, form: Form) -> Response:
        if (off := self._off()) is not None:
            return off
        if request.method != "POST":
            return self._page(request, "admin_login.html.j2", title="Sign in")
        forms.check_csrf(request, form, self.app.signing_key())
        result = self.app.admin_login(
            forms.one(form, "password"), client=request.client.host if request.client else ""
        )
        if not result.ok:
            return self._page(
                request,
                "admin_login.html.j2",
                429 if result.wait_seconds > 1 else 401,
                wait=result.wait_seconds,
                failed=True,
                title="Sign in",
            )
        response = RedirectResponse("/admin", status_code=303)
        response.set_cookie(
            COOKIE,
            result.session,
            max_age=self.app.settings.web.admin_session_hours * 3600,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/admin",
        )
        return response

    def logout(self, request: Request, form: Form) -> Response:
        if (off := self._off()) is not None:
            return off
        forms.check_csrf(request, form, self.app.signing_key())
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(COOKIE, path="/admin")
        return response

    def home(self, request: Request, form: Form) -> Response:
        """GET: the curator's page. POST: pin a label or release held events (then the page)."""
        if (off := self._off()) is not None:
            return off
        if not self._signed_in(request):
            if request.method == "POST":
                raise FormRejected("sign in first", 403)
            return RedirectResponse("/admin/login", status_code=303)
        if request.method != "POST":
            return self._page(request, "admin.html.j2", v=self.app.curator_view(), title="Curator")
        forms.check_csrf(request, form, self.app.signing_key())
        action = forms.one(form, "action")
        if action == "pin":
            try:
                v = self.app.pin_label(
                    forms.one(form, "nct"),
                    forms.one(form, "label"),
                    forms.one(form, "value"),
                    forms.one(form, "reason"),
                )
            except UserError as exc:
                v = self.app.curator_view()
                return self._page(request, "admin.html.j2", 400, v=v, error=str(exc), title="Curator")
        elif action == "release":
            run = forms.one(form, "run")
            released = self.app.release(run_id=int(run) if run.isdigit() else None)
            v = self.app.curator_view(f"{released.text().capitalize()}: the next digests include them.")
        else:
            raise FormRejected(f"action: {action!r}; valid: pin, release", 400)
        return self._page(request, "admin.html.j2", v=v, title="Curator")

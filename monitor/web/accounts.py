"""The subscriber's pages: sign up (/subscribe), confirm (/confirm/<token>), their own page
(/manage/<token>) and leave (/unsubscribe/<token>). No password anywhere: a signed link
is the credential, and it only ever opens its own holder's subscription.

A GET never changes anything (mail scanners and link previews follow links); every
change is a POST from a form carrying the CSRF token, except the one-click unsubscribe
of RFC 8058, whose mail client cannot hold a form token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from monitor.app import Application
from monitor.core.describe import KIND_LABELS, PHASE_LABELS, STATUS_LABELS
from monitor.core.domain import UserError
from monitor.core.filters import MODALITIES
from monitor.core.registrations import REGISTRIES
from monitor.web import forms
from monitor.web.forms import Form
from monitor.web.pages import Pages

IMPORTANCE = [(1, "everything, details included"), (2, "what is worth knowing"), (3, "only what to act on")]


def preferences_from(form: Form) -> dict[str, Any]:
    """The sign-up and manage forms' fields as a subscriber's preferences."""
    raw = forms.one(form, "importance", "1")
    if not raw.isdigit():
        raise UserError(f"importance: {raw!r} is not 1, 2 or 3")
    return {
        "modalities": forms.values(form, "modality"),
        "targets": forms.values(form, "target"),
        "indications": forms.values(form, "indication"),
        "statuses": forms.values(form, "status"),
        "phases": forms.values(form, "phase"),
        "sponsors": forms.values(form, "sponsor"),
        "countries": forms.values(form, "country"),
        "products": forms.product_values(form, "product"),
        "registries": forms.values(form, "registry"),
        "nct_ids": [x.upper() for x in forms.values(form, "nct")],
        "min_importance": int(raw),
        "include_out_of_scope": forms.one(form, "all") == "1",
        "publications": forms.one(form, "nopubs") != "1",
    }


class Accounts:
    def __init__(self, app: Application, pages: Pages) -> None:
        self.app, self.pages = app, pages
        self.secure = app.settings.web.base_url.startswith("https://")

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        key = self.app.signing_key()
        return forms.form_page(self.pages, request, key, name, status, secure=self.secure, **context)

    def _choices(self) -> dict[str, list[str]]:
        vocab = self.app.classifier.vocabulary
        return {
            "modality": list(MODALITIES),
            "target": list(vocab.target_order),
            "indication": list(vocab.indication_order),
            "status": list(STATUS_LABELS),
            "phase": list(PHASE_LABELS),
            "registry": [r.key for r in REGISTRIES],
            "kind": list(KIND_LABELS),
        }

    def _form_page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("title", "Your digest")
        return self._page(request, name, status, choices=self._choices(), importance=IMPORTANCE, **context)

    # -- sign-up ----------------------------------------------------------------------------

    def subscribe(self, request: Request, form: Form) -> Response:
        web = self.app.settings.web
        if not web.signup or not web.base_url:
            return self.pages.render(
                "error.html.j2",
                status_code=404,
                title="Sign-up is off",
                message="Sign-up is not open on this monitor: ask the person who runs it to add you.",
            )
        if request.method != "POST":
            # "Follow NCT…" from a study this monitor does not follow yet
            wanted = [x.strip().upper() for x in request.query_params.getlist("nct") if x.strip()]
            sel = {"nct": wanted[:20]} if wanted else {}
            return self._form_page(request, "subscribe.html.j2", sel=sel, email="", title="Subscribe")
        forms.check_csrf(request, form, self.app.signing_key())
        email = forms.one(form, "email")
        try:
            prefs = preferences_from(form)
            if forms.one(form, "action") == "preview":  # nothing saved, nothing sent
                n = self.app.preview(prefs)
                return self._form_page(
                    request, "subscribe.html.j2", sel=_echo(form), email=email, preview=n, title="Subscribe"
                )
            result = self.app.sign_up(email, prefs, client=request.client.host if request.client else "")
        except UserError as exc:
            return self._form_page(
                request,
                "subscribe.html.j2",
                400,
                sel=_echo(form),
                email=email,
                error=str(exc),
                title="Subscribe",
            )
        status = {"sent": 200, "limited": 429, "mail-failed": 503, "closed": 404}[result.outcome]
        return self.pages.render(
            "subscribe_sent.html.j2", status_code=status, outcome=result.outcome, title="Check your mail"
        )

    def confirm(self, request: Request, form: Form) -> Response:
        return self._one_button(
            request,
            form,
            "confirm.html.j2",
            (self.app.confirming, "Confirm"),
            (self.app.confirm, "Subscribed"),
        )

    # -- the subscriber's page --------------------------------------------------------------

    def manage(self, request: Request, form: Form) -> Response:
        token = request.path_params["token"]
        if request.method != "POST":
            v = self.app.manage(token)
            return self._form_page(request, "manage.html.j2", v=v, sel=_selected(v.preferences), token=token)
        forms.check_csrf(request, form, self.app.signing_key())
        action = forms.one(form, "action")
        upto = forms.one(form, "upto")
        try:
            v = self.app.manage_action(
                token,
                action,
                preferences=preferences_from(form) if action == "save" else None,
                upto=int(upto) if upto.isdigit() else None,
                address=forms.one(form, "email") if action == "address" else None,
            )
        except UserError as exc:
            if "link is not valid" in str(exc):
                raise
            v = self.app.manage(token)
            return self._form_page(
                request, "manage.html.j2", 400, v=v, sel=_echo(form), token=token, error=str(exc)
            )
        return self._form_page(request, "manage.html.j2", v=v, sel=_selected(v.preferences), token=token)

    def address(self, request: Request, form: Form) -> Response:
        """A new address, confirmed from the mail sent to it."""
        title = "Your new address"
        return self._one_button(
            request,
            form,
            "address.html.j2",
            (self.app.address_confirming, title),
            (self.app.change_address, title),
        )

    def _one_button(
        self,
        request: Request,
        form: Form,
        name: str,
        show: tuple[Callable[[str], Any], str],
        act: tuple[Callable[[str], Any], str],
    ) -> Response:
        """A signed link's page: GET shows what its button does (mail scanners follow links
        and must change nothing), POST with the form's token does it."""
        token = request.path_params["token"]
        use, title = show
        if request.method == "POST":
            forms.check_csrf(request, form, self.app.signing_key())
            use, title = act
        return self._page(request, name, r=use(token), token=token, title=title)

    def leave(self, request: Request, form: Form) -> Response:
        """GET shows whose subscription the link ends, with one button; POST ends it. The
        POST is also what a mail client sends for List-Unsubscribe-Post (RFC 8058): no
        session, no form token, idempotent; the signed link itself is the credential."""
        token = request.path_params["token"]
        result = self.app.unsubscribe(token) if request.method == "POST" else self.app.leaving(token)
        response = self.pages.render("unsubscribe.html.j2", r=result, token=token, title="Unsubscribe")
        response.headers["cache-control"] = "no-store"
        return response


def _echo(form: Form) -> dict[str, list[str]]:
    """What the reader typed, to fill the form again after an error."""
    return {k: forms.values(form, k) for k in form if k not in (forms.FIELD, "email")}


def _selected(prefs: dict[str, Any]) -> dict[str, list[str]]:
    """Stored preferences as the form's fields."""
    return {
        "modality": list(prefs.get("modalities", [])),
        "target": list(prefs.get("targets", [])),
        "indication": list(prefs.get("indications", [])),
        "status": list(prefs.get("statuses", [])),
        "phase": list(prefs.get("phases", [])),
        "sponsor": list(prefs.get("sponsors", [])),
        "country": list(prefs.get("countries", [])),
        "product": list(prefs.get("products", [])),
        "registry": list(prefs.get("registries", [])),
        "nct": list(prefs.get("nct_ids", [])),
        "importance": [str(prefs.get("min_importance", 1))],
        "all": ["1"] if prefs.get("include_out_of_scope") else [],
        "nopubs": [] if prefs.get("publications", True) else ["1"],
    }

"""The routes of `ctmonitor serve`: HTML pages, downloads, feeds, health and the JSON API.

Every route but the subscriber's pages (web/accounts.py) is a GET that reads; no GET
changes anything; every page's whole state is in its query string. Handlers are plain
functions, which Starlette runs in its thread pool, so a slow database read never
blocks the event loop; each opens its own session through the application, so several
workers may serve one PostgreSQL database.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from monitor.app import Application, NotTracked
from monitor.app.browse import KINDS, public_row
from monitor.app.errors import NotFound
from monitor.core.describe import KIND_LABELS, PHASE_LABELS, STATUS_LABELS
from monitor.core.domain import UserError
from monitor.core.filters import MODALITIES
from monitor.core.landscape import LIST_PARAMS, SORT_KEYS, LandscapeQuery
from monitor.core.registrations import REGISTRIES, check_study_id
from monitor.web import downloads
from monitor.web import params as P
from monitor.web.accounts import Accounts
from monitor.web.admin import Admin
from monitor.web.forms import Form, FormRejected, read_form
from monitor.web.openapi import openapi
from monitor.web.pages import Pages, json_default, json_response, registry_url
from monitor.web.pictures import landscape_charts, study_timeline
from monitor.web.programmes import ProgrammePages
from monitor.web.security import SecurityHeaders

log = logging.getLogger(__name__)
STYLESHEET = "style.css"


# What newsletters, social sites and ad platforms add to a shared link: ignored, so the
# link still opens the view it was shared as (any other unknown parameter is a 400).
TRACKING = frozenset({"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid"})
TRACKING |= {"igshid", "mc_cid", "mc_eid", "_ga", "_gl", "li_fat_id", "ttclid", "s_kwcid", "ref_src"}


def is_tracking(key: str) -> bool:
    return key.lower() in TRACKING or key.lower().startswith(("utm_", "pk_", "mtm_"))


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        if not is_tracking(k):
            out.setdefault(k, []).append(v)
    return out


def _nct(raw: str) -> str:
    try:
        return check_study_id(raw)
    except UserError:
        raise NotTracked(f"{raw!r} is not a study id") from None


class Web:
    """The handlers, bound to one Application and its page renderer."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.pages = Pages(app.settings)
        self.base_url = app.settings.web.base_url

    def absolute(self, request: Request, path: str) -> str:
        return (self.base_url or str(request.base_url).rstrip("/")) + path

    # -- the landscape ------------------------------------------------------------------------

    def _download(self, q: LandscapeQuery, fmt: str) -> Response:
        """Every row of a view as a file, streamed as the database gives it (a spreadsheet
        has no column for review marks; the JSON keeps them)."""
        parts = self.app.landscape_export(q, marks=fmt == "json")
        total = next(parts)
        batches = (b for b in parts if not isinstance(b, int))
        if fmt == "json":
            return StreamingResponse(
                downloads.json_chunks(total, batches, public_row, json_default), media_type="application/json"
            )
        if fmt == "csv":
            return StreamingResponse(
                downloads.csv_chunks(batches),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="ctmonitor-studies.csv"'},
            )
        return StreamingResponse(
            downloads.file_chunks(downloads.xlsx_file(r for b in batches for r in b)),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="ctmonitor-studies.xlsx"'},
        )

    def landscape(self, request: Request) -> Response:
        params = _params(request)
        fmt = P.one(params, "format", "html")
        params.pop("format", None)
        q = LandscapeQuery.from_params(params)
        if fmt in ("csv", "json", "xlsx"):
            return self._download(
                LandscapeQuery.from_params({**params, "page": ["1"], "per_page": ["500"]}), fmt
            )
        if fmt != "html":
            raise UserError(f"format: {fmt!r}; valid: html, csv, json, xlsx")
        v = self.app.landscape(q)
        vocab = self.app.classifier.vocabulary
        choices = {
            "modality": list(MODALITIES),
            "target": list(vocab.target_order),
            "indication": list(vocab.indication_order),
            "status": list(STATUS_LABELS),
            "phase": list(PHASE_LABELS),
            "source": ["autologous", "allogeneic", "in vivo"],
            "registry": [r.key for r in REGISTRIES],
        }
        q = v.query  # as resolved: aliases (lupus, CART, active) as the labels they stand for
        names = {"modality": "Modality", "target": "Target", "indication": "Indication", "status": "Status"}
        names |= {"phase": "Phase", "source": "Cell source", "sponsor": "Sponsor", "country": "Country"}
        names["product"] = "Product"
        names["registry"] = "Registry"
        active = [(n, label, x) for n, label in names.items() for x in getattr(q, LIST_PARAMS[n])]

        def drop(name: str, value: str) -> str:
            dest = LIST_PARAMS[name]
            kept = tuple(x for x in getattr(q, dest) if x != value)
            return "/?" + urlencode(q.to_params(**{dest: kept, "page": 1}))

        return self.pages.render(
            "landscape.html.j2",
            registry_names={r.key: r.name for r in REGISTRIES},
            charts=landscape_charts(v),
            view=v,
            q=q,
            active=active,
            drop=drop,
            choices=choices,
            sort_keys=SORT_KEYS,
            list_params=LIST_PARAMS,
            url=lambda **ch: "/?" + urlencode(q.to_params(**ch)),
            download=lambda fmt: "/?" + urlencode([*q.to_params(page=1), ("format", fmt)]),
            title="Landscape",
        )

    # -- one study ------------------------------------------------------------------------------

    def study(self, request: Request) -> Response:
        nct = _nct(request.path_params["nct"])
        if request.path_params["nct"] != nct:
            return RedirectResponse(f"/studies/{nct}", status_code=301)
        page = self.app.study_page(nct)
        return self.pages.render(
            "study.html.j2",
            p=page,
            timeline_svg=study_timeline(page, self.app.now().date().isoformat()),
            title=f"{nct} · {page.row['title'] or ''}",
        )

    def compare(self, request: Request) -> Response:
        nct = _nct(request.path_params["nct"])
        params = _params(request)
        P.check_keys(params, {"from", "to"})
        result = self.app.compare(
            nct, from_ref=P.one(params, "from") or None, to_ref=P.one(params, "to") or None
        )
        page = self.app.study_page(nct)
        return self.pages.render(
            "compare.html.j2", p=page, c=result, title=f"{nct} · {result.old.label} → {result.new.label}"
        )

    # -- the change stream, reports, feeds ---------------------------------------------------------

    def changes(self, request: Request) -> Response:
        params = _params(request)
        q = P.changes_query(params)
        v = self.app.changes(q)
        feed = "/feeds/changes.xml?" + urlencode(
            [(k, x) for k, vals in params.items() if k in P.FILTER_PARAMS or k == "kind" for x in vals]
        )
        kept = [(k, x) for k, vals in params.items() if k != "cursor" for x in vals]
        older = f"/changes?{urlencode([*kept, ('cursor', str(v.next_cursor))])}" if v.next_cursor else ""
        newest = f"/changes?{urlencode(kept)}" if q.before is not None else ""
        return self.pages.render(
            "changes.html.j2",
            v=v,
            older=older,
            newest=newest,
            baseline_url="/changes?" + urlencode([*kept, ("baseline", "1")]),
            params=params,
            kinds=KINDS,
            kind_labels=KIND_LABELS,
            feed=feed,
            api="/api/events?" + urlencode([(k, x) for k, vals in params.items() for x in vals]),
            title="Changes",
        )

    def report(self, request: Request) -> Response:
        params = _params(request)
        P.check_keys(params, set(P.FILTER_PARAMS) | P.REPORT_PARAMS)
        flt = self.app.check_filter(P.study_filter(params))
        fmt = P.one(params, "format", "html")
        if fmt not in ("html", "md", "csv", "json"):
            raise UserError(f"format: {fmt!r}; valid: html, md, csv, json")
        since, until = P.day(params, "since"), P.day(params, "until")
        kept = [(k, x) for k, vals in params.items() if k != "format" for x in vals]
        result = self.app.report(
            flt,
            fmt=fmt,
            since=since,
            until=until,
            record=False,  # viewing a report is not sending one: the next report's baseline stays
            kinds=P.multi(params, "kind"),
            web={
                "params": params,
                "signup_open": self.pages.env.globals["signup_open"],
                "download": lambda f: urlencode([*kept, ("format", f)]),
            },
        )
        media = {
            "html": "text/html; charset=utf-8",
            "md": "text/markdown; charset=utf-8",
            "csv": "text/csv; charset=utf-8",
            "json": "application/json",
        }[fmt]
        headers = {}
        if fmt != "html":
            headers["Content-Disposition"] = f'attachment; filename="ctmonitor-report.{fmt}"'
        # The report is one self-contained file with its own inline style (it is mailed and
        # printed too); only its styles are allowed inline, never a script.
        headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'"
        )
        return Response(result.document, media_type=media, headers=headers)

    def feed(self, request: Request) -> Response:
        params = _params(request)
        P.check_keys(params, set(P.FILTER_PARAMS) | {"kind", "limit"})
        flt = self.app.check_filter(P.study_filter(params))
        kinds = P.multi(params, "kind")
        for k in kinds:
            if k not in KINDS:
                raise UserError(f"kind: unknown value {k!r}; valid: {', '.join(KINDS)}")
        limit = P.one(params, "limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= 1000:
            raise UserError(f"limit: {limit!r} is not a number from 1 to 1000")
        self_url = self.absolute(
            request, request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        result = self.app.feed(flt, kinds=kinds, limit=int(limit), self_url=self_url)
        return Response(result.document, media_type="application/atom+xml; charset=utf-8")

    # -- a subscriber's own link ----------------------------------------------------------------------

    # -- status -------------------------------------------------------------------------------------

    def status(self, request: Request) -> Response:
        health = self.app.health()
        status = self.app.status(runs=10)
        return self.pages.render(
            "status.html.j2", h=health.to_json(self.app.now()), s=status.to_json(), title="Status"
        )

    def health(self, request: Request) -> Response:
        data = self.app.health().to_json(self.app.now())
        return json_response(data, status=200 if data["ok"] else 503)

    # -- the JSON API -------------------------------------------------------------------------------

    def api_studies(self, request: Request) -> Response:
        q = LandscapeQuery.from_params(_params(request))
        v = self.app.landscape(q, counts=False)
        nxt = None
        if v.next_cursor:
            nxt = request.url.path + "?" + urlencode(v.query.to_params(cursor=v.next_cursor, page=1))
        return json_response(
            {
                "total": v.total,
                "page": None if q.cursor else q.page,
                "per_page": q.per_page,
                "pages": v.pages,
                "next_cursor": v.next_cursor,
                "next": nxt,
                "studies": [public_row(r) for r in v.rows],
            }
        )

    def api_study(self, request: Request) -> Response:
        nct = _nct(request.path_params["nct"])
        return json_response(self.app.study_page(nct).to_json())

    def api_versions(self, request: Request) -> Response:
        nct = _nct(request.path_params["nct"])
        return json_response(self.app.history([nct]).studies[0]["versions"])

    def api_compare(self, request: Request) -> Response:
        nct = _nct(request.path_params["nct"])
        params = _params(request)
        P.check_keys(params, {"from", "to"})
        return json_response(
            self.app.compare(
                nct, from_ref=P.one(params, "from") or None, to_ref=P.one(params, "to") or None
            ).to_json()
        )

    def api_events(self, request: Request) -> Response:
        params = _params(request)
        q = P.changes_query(params)
        v = self.app.changes(q)
        data = v.to_json()
        data["next"] = None
        if v.next_cursor is not None:
            kept = [(k, x) for k, vals in params.items() if k != "cursor" for x in vals]
            data["next"] = request.url.path + "?" + urlencode([*kept, ("cursor", str(v.next_cursor))])
        return json_response(data)

    def api_openapi(self, request: Request) -> Response:
        return json_response(openapi())

    def favicon(self, request: Request) -> Response:
        svg = (Path(self.pages.folder) / "favicon.svg").read_bytes()
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    def stylesheet(self, request: Request) -> Response:
        css = (Path(self.pages.folder) / STYLESHEET).read_text(encoding="utf-8")
        return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


def _handle(fn: Callable[[Request], Response], pages: Pages) -> Callable[[Request], Response]:
    """One-line errors: 404 for an unknown or invalid study, 400 for a bad parameter, 403
    for a form without its CSRF token."""

    def endpoint(request: Request) -> Response:
        api = request.url.path.startswith("/api/") or request.url.path == "/health"
        nct = None
        try:
            return fn(request)
        except NotTracked as exc:
            # a reader is told what this monitor follows, never where its database is
            status, nct = 404, exc.nct
            message = f"This monitor does not follow {nct}." if nct else str(exc)
        except NotFound as exc:
            status, message = 404, str(exc)
        except UserError as exc:
            status, message = 400, str(exc)
        except FormRejected as exc:
            status, message = exc.status, str(exc)
        if api:
            body = {"error": message} | ({"registry_url": registry_url(nct)} if nct else {})
            return JSONResponse(body, status_code=status)
        return pages.render(
            "error.html.j2",
            status_code=status,
            message=message,
            nct=nct,
            title={404: "Not found", 403: "Refused"}.get(status, "Bad request"),
        )

    return endpoint


def _form_route(fn: Callable[[Request, Form], Response], pages: Pages) -> Callable[[Request], Any]:
    """A page that takes a posted form: the body is read here (bounded), the handler runs in
    the thread pool like every other, with the same one-line errors."""

    async def endpoint(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormRejected as exc:
            return pages.render("error.html.j2", status_code=exc.status, message=str(exc), title="Refused")
        return await run_in_threadpool(_handle(lambda r: fn(r, form), pages), request)

    return endpoint


def tune_collector() -> None:
    """For the long-running web server, once its application is built: the objects alive
    then (modules, compiled templates, the vocabulary) are frozen out of every later
    collection, and collections start after more allocations. A landscape page builds a
    row for every tracked study; with the defaults, the collector's full passes over those
    long-lived objects took about a third of its server time (bench/web.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


# how often `ctmonitor serve` looks whether a poll moved what the landing pages count
WARM_SECONDS = 10.0


def _warming(app: Application, every: float) -> Callable[[Starlette], Any]:
    from contextlib import asynccontextmanager

    from monitor.app.warming import Warmer

    @asynccontextmanager
    async def lifespan(_: Starlette) -> Any:
        warmer = Warmer(app, every)
        warmer.start()
        try:
            yield
        finally:
            await run_in_threadpool(warmer.stop)

    return lifespan


def create_app(app: Application, *, warm_every: float | None = None) -> Starlette:
    """The ASGI application over one ctmonitor Application (the caller owns and closes it).
    With `warm_every` (seconds), a thread keeps the landing pages' counts ready while it
    serves (app.warming)."""
    web = Web(app)
    accounts = Accounts(app, web.pages)
    admin = Admin(app, web.pages)
    programmes = ProgrammePages(app, web.pages, _params)
    forms = [
        ("/admin", admin.home),
        ("/admin/login", admin.login),
        ("/admin/logout", admin.logout),
        ("/subscribe", accounts.subscribe),
        ("/confirm/{token}", accounts.confirm),
        ("/manage/{token}", accounts.manage),
        ("/unsubscribe/{token}", accounts.leave),
        ("/address/{token}", accounts.address),
    ]
    routes = [
        ("/", web.landscape),
        ("/studies/{nct}", web.study),
        ("/studies/{nct}/compare", web.compare),
        ("/products", programmes.pipeline),
        ("/products/{slug}", programmes.product),
        ("/sponsors/{slug}", programmes.sponsor),
        ("/changes", web.changes),
        ("/report", web.report),
        ("/feeds/changes.xml", web.feed),
        ("/status", web.status),
        ("/health", web.health),
        ("/api/studies", web.api_studies),
        ("/api/studies/{nct}", web.api_study),
        ("/api/studies/{nct}/versions", web.api_versions),
        ("/api/studies/{nct}/compare", web.api_compare),
        ("/api/events", web.api_events),
        ("/api/products", programmes.api_pipeline),
        ("/api/products/{slug}", programmes.api_product),
        ("/api/sponsors/{slug}", programmes.api_sponsor),
        ("/api/openapi.json", web.api_openapi),
        ("/static/style.css", web.stylesheet),
        ("/favicon.ico", web.favicon),
        ("/static/favicon.svg", web.favicon),
    ]
    asgi = Starlette(
        routes=[
            *(Route(path, _handle(fn, web.pages), methods=["GET", "HEAD"]) for path, fn in routes),
            *(Route(path, _form_route(fn, web.pages), methods=["GET", "HEAD", "POST"]) for path, fn in forms),
        ],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=_warming(app, warm_every) if warm_every else None,
        exception_handlers={
            404: lambda request, exc: web.pages.render(
                "error.html.j2", status_code=404, message="No such page.", title="Not found"
            ),
            405: lambda request, exc: PlainTextResponse("Method not allowed", status_code=405),
        },
    )
    return asgi

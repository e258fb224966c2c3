"""The programme pages: /products (the pipeline: products × indications for the
landscape's filters, downloadable), /products/<slug> and /sponsors/<slug>, each with a
JSON twin under /api/. Read-only, like every GET."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.app import Application
from monitor.app.programmes import PipelineView, Redirect
from monitor.core.describe import phases_label, status_label
from monitor.core.domain import UserError
from monitor.core.landscape import LandscapeQuery
from monitor.core.pipeline import NO_INDICATION
from monitor.web.downloads import spreadsheet_safe
from monitor.web.pages import Pages, json_response

FORMATS = ("html", "csv", "xlsx", "json")


def _table(v: PipelineView) -> list[list[Any]]:
    """The pipeline as rows of cells (what CSV and XLSX hold): one row per product."""
    p = v.pipeline
    head = ["Product", "Modality", "Targets", "Lead sponsors", "Studies", "Furthest phase", "Status"]
    rows: list[list[Any]] = [head + p.indications]
    for prog in p.programmes:
        rows.append(
            [
                prog.name,
                prog.modality or "",
                "; ".join(prog.targets),
                "; ".join(prog.sponsors),
                len(prog.studies),
                phases_label(prog.furthest.phases),
                status_label(prog.furthest.status),
                *(prog.cells[g].label if g in prog.cells else "" for g in p.indications),
            ]
        )
    return rows


def to_csv(v: PipelineView) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in _table(v):
        writer.writerow([spreadsheet_safe(x) if isinstance(x, str) else x for x in row])
    return out.getvalue()


def to_xlsx(v: PipelineView) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook(write_only=False)
    ws = wb.active
    ws.title = "Pipeline"
    for row in _table(v):
        ws.append([spreadsheet_safe(x) if isinstance(x, str) else x for x in row])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "B2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell_query(query: list[tuple[str, str]], product: str, group: str) -> list[tuple[str, str]]:
    """The landscape of one pipeline cell: the view's filters, the product, the indication."""
    pairs = [*query, ("product", product)]
    if group != NO_INDICATION:
        pairs.append(("indication", group))
    return pairs


def _only_filters(params: dict[str, list[str]]) -> dict[str, list[str]]:
    """The landscape's filters of a query string: a pipeline has one order (furthest
    first) and one page, so its sort and paging parameters are not read."""
    return {k: v for k, v in params.items() if k not in ("sort", "order", "page", "per_page", "cursor")}


class ProgrammePages:
    def __init__(
        self, app: Application, pages: Pages, params: Callable[[Request], dict[str, list[str]]]
    ) -> None:
        self.app, self.pages, self._params = app, pages, params

    def pipeline(self, request: Request) -> Response:
        params = self._params(request)
        fmt = (params.pop("format", None) or ["html"])[-1]
        if fmt not in FORMATS:
            raise UserError(f"format: {fmt!r}; valid: {', '.join(FORMATS)}")
        q = LandscapeQuery.from_params(_only_filters(params))
        v = self.app.pipeline(q)
        if fmt == "json":
            return json_response(v.to_json())
        attach = {"Content-Disposition": f'attachment; filename="ctmonitor-pipeline.{fmt}"'}
        if fmt == "csv":
            return Response(to_csv(v), media_type="text/csv; charset=utf-8", headers=attach)
        if fmt == "xlsx":
            kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            return Response(to_xlsx(v), media_type=kind, headers=attach)
        query = v.query.to_params()
        return self.pages.render(
            "pipeline.html.j2",
            v=v,
            landscape="/?" + urlencode(query),
            download=lambda f: "/products?" + urlencode([*query, ("format", f)]),
            cell_link=lambda prog, group: "/?" + urlencode(_cell_query(query, prog.name, group)),
            title="Products",
        )

    def api_pipeline(self, request: Request) -> Response:
        params = self._params(request)
        params.pop("format", None)
        return json_response(self.app.pipeline(LandscapeQuery.from_params(_only_filters(params))).to_json())

    def product(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        try:
            page = self.app.product_page(slug)
        except Redirect as r:
            return RedirectResponse(r.location, status_code=301)
        name = page.entry.name
        return self.pages.render(
            "product.html.j2",
            p=page,
            landscape="/?" + urlencode([("product", name)]),
            changes="/changes?" + urlencode([("product", name)]),
            feed="/feeds/changes.xml?" + urlencode([("product", name)]),
            api=f"/api/products/{page.entry.slug}",
            out_of_scope="/?" + urlencode([("product", name), ("all", "1")]),
            title=name,
        )

    def sponsor(self, request: Request) -> Response:
        page = self.app.sponsor_page(request.path_params["slug"])
        return self.pages.render(
            "sponsor.html.j2",
            p=page,
            landscape="/?" + urlencode([("sponsor", page.name)]),
            changes="/changes?" + urlencode([("sponsor", page.name)]),
            api=f"/api/sponsors/{page.slug}",
            title=page.name,
        )

    def api_product(self, request: Request) -> Response:
        try:
            page = self.app.product_page(request.path_params["slug"])
        except Redirect as r:
            return RedirectResponse("/api" + r.location, status_code=301)
        return json_response(page.to_json())

    def api_sponsor(self, request: Request) -> Response:
        return json_response(self.app.sponsor_page(request.path_params["slug"]).to_json())

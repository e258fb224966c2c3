"""The page renderer: Jinja2 with autoescaping (registry text is always escaped), the
templates in templates/web, and the filters the pages share."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, Response

from monitor.config import Settings
from monitor.core.describe import (
    KIND_LABELS,
    change_edits,
    change_lead,
    change_parts,
    design_label,
    phases_label,
    status_label,
    targets_label,
)
from monitor.core.products import slugify
from monitor.core.registrations import registration_url, registry_name
from monitor.core.worddiff import pieces
from monitor.paths import resource_dir

# Status words carry the meaning; the colour class only adds to it.
STATUS_CLASS = {
    "RECRUITING": "go",
    "NOT_YET_RECRUITING": "soon",
    "ENROLLING_BY_INVITATION": "go",
    "ACTIVE_NOT_RECRUITING": "active",
    "COMPLETED": "done",
    "SUSPENDED": "stop",
    "TERMINATED": "stop",
    "WITHDRAWN": "stop",
}


def site_groups(changes: Any) -> list[tuple[str, str, list[Any]]]:
    """A comparison's site changes per country, the largest first: (country, "2 added;
    1 now Completed", the changes), so 96 site rows read as a few lines with the detail
    folded under each."""
    from monitor.core.describe import site_country, site_counts

    per: dict[str, list[Any]] = {}
    for ch in changes:
        per.setdefault(site_country(ch.key, ch.before, ch.after), []).append(ch)
    said = dict(site_counts((ch.kind.value, ch.key, ch.before, ch.after) for ch in changes))
    return [(country, said.get(country, ""), per[country]) for country in said if country in per]


def when(value: Any) -> str:
    """A time as every page writes it: "2026-11-19 09:00 UTC", always with its zone (the
    database keeps UTC without one; the schedule's times carry theirs)."""
    if not hasattr(value, "strftime"):
        return value or ""
    return f"{value:%Y-%m-%d %H:%M} {value.tzname() or 'UTC'}"


def json_default(o: Any) -> Any:
    """Dates and times in JSON: ISO 8601."""
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    raise TypeError(type(o).__name__)


def json_response(data: Any, status: int = 200) -> Response:
    """JSON as the API gives it: UTF-8 as written, dates in ISO 8601."""
    body = json.dumps(data, ensure_ascii=False, default=json_default, indent=1)
    return Response(body, status_code=status, media_type="application/json")


def registry_url(nct: str) -> str:
    return registration_url(nct)


def registry_compare_url(nct: str, a: int | None, b: int | None) -> str | None:
    """The registry's own comparison of two of its version numbers (its history tab)."""
    if a is None or b is None:
        return None
    return f"https://clinicaltrials.gov/study/{nct}?tab=history&a={a}&b={b}#version-content-panel"


class Pages:
    def __init__(self, settings: Settings) -> None:
        self.folder = resource_dir("templates") / "web"
        self.env = Environment(
            loader=FileSystemLoader(str(self.folder)),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            status=status_label,
            phases=phases_label,
            targets=lambda t: targets_label(t, "target undisclosed"),
            kind=lambda k: KIND_LABELS.get(k, k),
            day=lambda v: v.strftime("%Y-%m-%d") if hasattr(v, "strftime") else (v or ""),
            when=when,
            status_class=lambda s: STATUS_CLASS.get(s or "", "other"),
            qs=lambda pairs: urlencode(list(pairs)),
            slug=slugify,
            registry_name=registry_name,
        )
        self.env.globals.update(
            registry_url=registry_url,
            registry_compare_url=registry_compare_url,
            change_parts=change_parts,
            site_groups=site_groups,
            change_edits=change_edits,
            change_lead=change_lead,
            design_label=design_label,
            status_label=status_label,
            phase_label=lambda p: phases_label([p]),
            registry_label=registry_name,
            pieces=pieces,
            base_url=settings.web.base_url,
            signup_open=settings.web.signup and bool(settings.web.base_url),
        )

    def html(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(self.html(name, **context), status_code=status_code)

"""The JSON API's OpenAPI description: the same parameters as the pages, and how to page."""

from __future__ import annotations

from typing import Any

from monitor.app.browse import KINDS, MAX_PAGE
from monitor.core.landscape import LIST_PARAMS, SORT_KEYS
from monitor.web import params as P


def openapi() -> dict[str, Any]:
    """A short OpenAPI description of the JSON API (the same parameters as the pages)."""

    def param(name: str, desc: str, repeat: bool = False) -> dict[str, Any]:
        schema: dict[str, Any] = (
            {"type": "array", "items": {"type": "string"}} if repeat else {"type": "string"}
        )
        return {"name": name, "in": "query", "description": desc, "schema": schema, "explode": True}

    landscape = [param(k, f"only studies with this {k} (repeatable: any of)", True) for k in LIST_PARAMS] + [
        param("q", "free text: NCT id, title, any name of a product, sponsor"),
        param("all", "1: include studies out of scope (with their reason)"),
        param("review", "1: only studies that need a curator's review"),
        param("sort", "column: " + ", ".join(SORT_KEYS)),
        param("order", "asc or desc"),
        param("page", "page number, from 1 (or use cursor)"),
        param("per_page", "studies per page (at most 500)"),
        param(
            "cursor",
            "continue after the last study of a previous answer: give its next_cursor (or follow "
            "its next link) until next_cursor is null; stable while studies are added or removed",
        ),
    ]
    changes = [param(k, f"only studies with this {k} (repeatable)", True) for k in P.FILTER_PARAMS] + [
        param("kind", "event kind (repeatable): " + ", ".join(KINDS), True),
        param("importance", "minimum importance: 1 detail, 2 worth knowing, 3 act on it"),
        param("since", "first day, YYYY-MM-DD (included)"),
        param("until", "last day, YYYY-MM-DD (included whole)"),
        param("by", "the period's date: detected (our poll) or registry (the registry's update)"),
        param("backfill", "1: include changes taken from the registry's own history"),
        param("baseline", "1: include the studies the first poll reached (the starting picture)"),
        param("limit", f"changes per answer (default 500, at most {MAX_PAGE})"),
        param(
            "cursor",
            "continue with the changes older than a previous answer's: give its next_cursor (or "
            "follow its next link) until next_cursor is null; every change comes once, and changes "
            "recorded meanwhile do not shift the pages",
        ),
    ]
    nct = {
        "name": "nct",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^NCT\\d{8}$"},
    }
    slug = {
        "name": "slug",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "as in the page's address: lower-case words joined by hyphens (caba-201)",
    }
    ok = {
        "200": {"description": "JSON"},
        "400": {"description": "a bad parameter, named with the valid values"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ctmonitor",
            "version": "1",
            "description": "The tracked studies and every change.",
        },
        "paths": {
            "/api/studies": {
                "get": {
                    "summary": "The landscape, filtered and paged",
                    "parameters": landscape,
                    "responses": ok,
                }
            },
            "/api/studies/{nct}": {
                "get": {
                    "summary": (
                        "One study: labels, evidence, registrations, sites, posted results, "
                        "publications (with where each link came from), timeline, changes"
                    ),
                    "parameters": [nct],
                    "responses": {**ok, "404": {"description": "not tracked"}},
                }
            },
            "/api/studies/{nct}/versions": {
                "get": {"summary": "A study's stored versions", "parameters": [nct], "responses": ok}
            },
            "/api/studies/{nct}/compare": {
                "get": {
                    "summary": "Two versions compared",
                    "parameters": [
                        nct,
                        param("from", "a version: latest, first, rN, #N or a date"),
                        param("to", "as from"),
                    ],
                    "responses": ok,
                }
            },
            "/api/events": {
                "get": {
                    "summary": "The change stream, newest first, grouped by study: the same changes "
                    "as the web's change list, the feeds, reports and digests for these filters. "
                    "total counts every page; count this answer's changes",
                    "parameters": changes,
                    "responses": ok,
                }
            },
            "/api/products": {
                "get": {
                    "summary": "Products × indications for the landscape's filters: each product with "
                    "its studies, lead sponsors, countries, the furthest phase and status it reaches, and "
                    "the same in each indication group",
                    "parameters": landscape[: len(LIST_PARAMS) + 3],
                    "responses": ok,
                }
            },
            "/api/products/{slug}": {
                "get": {
                    "summary": "One product: its names (codes, INNs, brands), developer, studies in "
                    "scope, timeline and latest changes; an alias redirects (301) to the canonical slug",
                    "parameters": [slug],
                    "responses": {
                        **ok,
                        "301": {"description": "an alias"},
                        "404": {"description": "unknown"},
                    },
                }
            },
            "/api/sponsors/{slug}": {
                "get": {
                    "summary": "One lead sponsor: its programmes, studies in scope and latest changes",
                    "parameters": [slug],
                    "responses": {**ok, "404": {"description": "unknown"}},
                }
            },
            "/health": {
                "get": {
                    "summary": "ok (200) or the problems (503)",
                    "responses": {"200": {"description": "healthy"}, "503": {"description": "a problem"}},
                }
            },
        },
    }

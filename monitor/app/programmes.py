"""Programmes: a page per product and per sponsor, and the pipeline (products ×
indications). Read from the same landscape rows and the same change selection as every
other surface, so a product's page counts what `?product=` on the landscape lists and
shows the changes /changes?product= shows.

Mixed into Application (database, classifier, landscape, check_filter, changes).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor import store
from monitor.app.errors import NotFound
from monitor.app.overview import summary_dict
from monitor.core.filters import StudyFilter
from monitor.core.landscape import LandscapeQuery
from monitor.core.pipeline import Pipeline, Programme, furthest_first, pipeline, programmes
from monitor.core.products import Entry, slugify

RECENT = 20  # changes a product or sponsor page lists (the rest: /changes with its filter)


@dataclass(frozen=True)
class Redirect(Exception):
    """The page lives at another address (an alias of a product: /products/rese-cel)."""

    location: str


@dataclass(frozen=True)
class ProductPage:
    entry: Entry
    programme: Programme | None  # None: no tracked study in scope gives it (yet)
    studies: list[dict[str, Any]]  # landscape rows, furthest first
    out_of_scope: int  # its studies judged out of scope (oncology twins...)
    timeline: list[dict[str, Any]]  # registrations and status changes, oldest first
    changes: list[dict[str, Any]]  # the newest changes of its studies
    change_total: int
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.entry.to_dict(),
            "summary": self.programme.to_dict() if self.programme else None,
            "studies": self.studies,
            "studies_out_of_scope": self.out_of_scope,
            "timeline": self.timeline,
            "changes": self.changes,
            "change_total": self.change_total,
        }


@dataclass(frozen=True)
class SponsorPage:
    name: str
    slug: str
    programmes: list[Programme]
    studies: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    change_total: int
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "sponsor": self.name,
            "slug": self.slug,
            "programmes": [p.to_dict() for p in self.programmes],
            "studies": self.studies,
            "changes": self.changes,
            "change_total": self.change_total,
        }


@dataclass(frozen=True)
class PipelineView:
    query: LandscapeQuery
    pipeline: Pipeline
    total: int  # studies in the view
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"studies": self.total, **self.pipeline.to_dict()}


def _day(change: dict[str, Any]) -> str:
    """The day a change happened: the registry's date where it gives one, else when seen."""
    if change.get("registry_date"):
        return str(change["registry_date"])[:10]
    seen = change.get("detected_at")
    return seen.date().isoformat() if hasattr(seen, "date") else str(seen or "")[:10]


class ProgrammeUseCases:
    """Mixed into Application."""

    database: Any
    classifier: Any

    def pipeline(self, query: LandscapeQuery) -> PipelineView:
        """Products × indications for a landscape view (its filters; every page of it),
        built once per version of the studies' index (browse.per_version)."""
        from monitor.app import browse

        query = self._resolved(dataclasses.replace(query, page=1, cursor=""))  # type: ignore[attr-defined]

        def make() -> tuple[Any, int]:
            v = browse.landscape(s, query, complete=True, counts=False, marks=False)
            rows = [{k: x for k, x in r.items() if k != "search"} for r in v.matching]
            vocab = self.classifier.vocabulary
            return pipeline(rows, vocab.indication_order, self.classifier.catalogue), v.total

        with self.database.session() as s:
            built, total = browse.per_version(s, ("pipeline", browse.view_key(query)), make, heavy=True)
        return PipelineView(query, built, total)

    def _rows(self, facet: str, slugs: Sequence[str]) -> list[dict[str, Any]]:
        """The current studies at these addresses (a product's or sponsor's, by the index's
        slug terms), in the landscape's stored order (newest update first)."""
        with self.database.session() as s:
            return [summary_dict(r) for r in store.studies_with_terms(s, facet, slugs)]

    def _recent(self, flt: StudyFilter) -> tuple[list[dict[str, Any]], int, list[dict[str, Any]]]:
        """(newest changes, how many in all, status changes oldest first) of a filter."""
        from monitor.app.browse import ChangesQuery, recent_and_moves

        q = ChangesQuery(filter=self.check_filter(flt))  # type: ignore[attr-defined]
        with self.database.session() as s:
            return recent_and_moves(s, q, RECENT)

    def product_page(self, slug: str) -> ProductPage:
        """A product's studies, timeline and changes; an alias's address redirects to the
        canonical one (/products/rese-cel → /products/caba-201)."""
        catalogue = self.classifier.catalogue
        rows = self._rows("product_slug", [slug])
        names = {slugify(n): n for r in rows for n in r["products"]}
        names.update({e.slug: e.name for e in catalogue.entries.values()})
        name = names.get(slug)
        if name is None:
            known = catalogue.resolve(slug)
            if known is not None:
                raise Redirect(f"/products/{known.slug}")
            raise NotFound(f"No product called {slug!r} is followed here.")
        entry = catalogue.entry(name)
        if entry.slug != slug:
            raise Redirect(f"/products/{entry.slug}")
        # by address, not by exact name: two spellings of one unnamed product's sponsor
        # ("Zhejiang University", "Zhejiang University.") are one page
        mine = [r for r in rows if any(slugify(n) == entry.slug for n in r["products"])]
        in_scope = [r for r in mine if r["in_scope"]]
        progs = programmes(in_scope, catalogue)
        flt = StudyFilter(products=(name,))
        recent, total, moves = self._recent(flt)
        timeline = [
            {"date": r["first_posted"], "study": r["nct_id"], "what": "registered", "title": r["title"]}
            for r in in_scope
            if r["first_posted"]
        ]
        timeline += [{"date": _day(c), "study": c["study"], "what": c["text"], "title": ""} for c in moves]
        timeline.sort(key=lambda t: (t["date"] or "", t["study"]))
        return ProductPage(
            entry=entry,
            programme=progs[0] if progs else None,
            studies=furthest_first(in_scope),
            out_of_scope=len(mine) - len(in_scope),
            timeline=timeline,
            changes=recent,
            change_total=total,
        )

    def sponsor_page(self, slug: str) -> SponsorPage:
        """A lead sponsor's programmes and studies (in scope), and their changes."""
        rows = [r for r in self._rows("sponsor_slug", [slug]) if r["in_scope"] and r["sponsor"]]
        names = Counter(r["sponsor"] for r in rows if slugify(r["sponsor"]) == slug)
        if not names:
            raise NotFound(f"No sponsor called {slug!r} leads a study followed here.")
        name = names.most_common(1)[0][0]
        mine = [r for r in rows if slugify(r["sponsor"]) == slug]
        recent, total, _ = self._recent(StudyFilter(nct_ids=tuple(r["nct_id"] for r in mine)))
        return SponsorPage(
            name=name,
            slug=slug,
            programmes=programmes(mine, self.classifier.catalogue),
            studies=furthest_first(mine),
            changes=recent,
            change_total=total,
        )

"""Programmes at a glance: each product's studies gathered, and the pipeline of products ×
indications with the furthest phase reached in each. Pure: reads landscape rows
(`app.overview.summary_dict`, with their `products`), as the landscape filters them, so
the pipeline of a view counts what the view lists. Named products come before unnamed
ones ("unnamed CD19 CAR-T, <sponsor>"), each furthest first.

"Furthest" is the highest phase any study of the product registers for the indication
(a phase 1/2 study counts as phase 2); among studies at that phase, the one furthest
along in recruitment speaks for the cell (recruiting before not yet recruiting before
completed, stopped last), so a cell reads "Phase 2 · Recruiting".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.core.describe import phases_label, status_label
from monitor.core.products import Catalogue, slugify

PHASE_RANK = {"NA": 0, "EARLY_PHASE1": 1, "PHASE1": 2, "PHASE2": 3, "PHASE3": 4, "PHASE4": 5}
# Which study speaks for a cell when several reach the same phase: the liveliest.
STATUS_RANK = {
    "RECRUITING": 8,
    "ENROLLING_BY_INVITATION": 7,
    "ACTIVE_NOT_RECRUITING": 6,
    "NOT_YET_RECRUITING": 5,
    "COMPLETED": 4,
    "UNKNOWN": 3,
    "SUSPENDED": 2,
    "TERMINATED": 1,
    "WITHDRAWN": 0,
}
NO_INDICATION = "indication not named"


def phase_rank(phases: Iterable[str]) -> tuple[int, int]:
    """How far a study's phases reach: its highest phase, then its lowest (phase 2 alone is
    further than phase 1/2); no phase at all comes last."""
    ranks = [PHASE_RANK.get(p, 0) for p in phases]
    return (max(ranks), min(ranks)) if ranks else (-1, -1)


def standing(r: Mapping[str, Any]) -> tuple[Any, ...]:
    """How a study ranks in its programme: furthest phase, then liveliest status, then
    newest registration (then its id, so the order is total)."""
    return (
        phase_rank(r["phases"]),
        STATUS_RANK.get(r["status"] or "", 3),
        r.get("first_posted") or "",
        r["nct_id"],
    )


def furthest_first(rows: Iterable[Mapping[str, Any]]) -> list[Any]:
    return sorted(rows, key=standing, reverse=True)


def _lead(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The study that speaks for a group: the first by `standing`."""
    return max(rows, key=standing)


@dataclass(frozen=True)
class Cell:
    """One product in one indication: its studies and the furthest among them."""

    phases: tuple[str, ...]
    status: str | None
    nct_ids: tuple[str, ...]
    lead: str = ""  # the study that speaks for the cell

    @property
    def label(self) -> str:
        return f"{phases_label(self.phases)} · {status_label(self.status)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "furthest_phase": phases_label(self.phases),
            "phases": list(self.phases),
            "status": self.status,
            "status_label": status_label(self.status),
            "studies": list(self.nct_ids),
            "lead_study": self.lead,
        }


def _cell(rows: Sequence[Mapping[str, Any]]) -> Cell:
    lead = _lead(rows)
    ids = tuple(sorted(r["nct_id"] for r in rows))
    return Cell(tuple(lead["phases"]), lead["status"], ids, lead["nct_id"])


@dataclass(frozen=True)
class Programme:
    """A product and its studies in the view: who runs them, where, how far."""

    name: str
    slug: str
    modality: str | None
    targets: tuple[str, ...]
    sponsors: tuple[str, ...]  # lead sponsors of its studies, most studies first
    studies: tuple[str, ...]
    furthest: Cell
    cells: dict[str, Cell] = field(default_factory=dict)  # indication group -> cell
    countries: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "slug": self.slug,
            "modality": self.modality,
            "targets": list(self.targets),
            "sponsors": list(self.sponsors),
            "studies": list(self.studies),
            "countries": list(self.countries),
            "furthest": self.furthest.to_dict(),
            "indications": {k: c.to_dict() for k, c in self.cells.items()},
        }


def programmes(rows: Iterable[Mapping[str, Any]], catalogue: Catalogue | None = None) -> list[Programme]:
    """Every product the rows give, with its studies: named products before unnamed ones,
    each furthest first (then by name). A product the catalogue knows keeps its own
    modality and target (a CAR-T given in a CAAR-T study's sub-study is still a CAR-T)."""
    by_product: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        for name in r.get("products") or ([r["product"]] if r.get("product") else []):
            by_product.setdefault(name, []).append(r)
    out = []
    for name, studies in by_product.items():
        by_indication: dict[str, list[Mapping[str, Any]]] = {}
        for r in studies:
            for group in r["indications"] or [NO_INDICATION]:
                by_indication.setdefault(group, []).append(r)
        sponsors = Counter(r["sponsor"] for r in studies if r["sponsor"])
        countries = Counter(c for r in studies for c in r["countries"] or [])
        modality = Counter(r["modality"] for r in studies if r["modality"]).most_common(1)
        targets = Counter(t for r in studies for t in r["targets"] or []).most_common(1)
        known = catalogue.entries.get(name) if catalogue else None
        if known is not None:
            modality = [(known.modality, 0)]
            targets = [("/".join(known.targets), 0)] if known.targets else targets
        out.append(
            Programme(
                name=name,
                slug=slugify(name),
                modality=modality[0][0] if modality else None,
                targets=(targets[0][0],) if targets else (),
                sponsors=tuple(s for s, _ in sorted(sponsors.items(), key=lambda kv: (-kv[1], kv[0]))),
                studies=tuple(sorted(r["nct_id"] for r in studies)),
                furthest=_cell(studies),
                cells={g: _cell(rs) for g, rs in by_indication.items()},
                countries=tuple(c for c, _ in sorted(countries.items(), key=lambda kv: (-kv[1], kv[0]))),
            )
        )
    out.sort(
        key=lambda p: (
            p.name.startswith("unnamed "),
            tuple(-x for x in phase_rank(p.furthest.phases)),
            -STATUS_RANK.get(p.furthest.status or "", 3),
            p.name.casefold(),
        )
    )
    return out


@dataclass(frozen=True)
class Pipeline:
    """Products × indications: the rows and the columns a pipeline table draws."""

    programmes: list[Programme]
    indications: list[str]  # columns, most products first

    def to_dict(self) -> dict[str, Any]:
        return {"indications": self.indications, "products": [p.to_dict() for p in self.programmes]}


def pipeline(
    rows: Iterable[Mapping[str, Any]], order: Sequence[str] = (), catalogue: Catalogue | None = None
) -> Pipeline:
    """The pipeline of the rows; columns by how many products reach them, then `order`
    (the vocabulary's), "indication not named" last."""
    progs = programmes(rows, catalogue)
    count = Counter(g for p in progs for g in p.cells)
    rank = {g: i for i, g in enumerate(order)}
    columns = sorted(count, key=lambda g: (g == NO_INDICATION, -count[g], rank.get(g, len(rank)), g))
    return Pipeline(progs, columns)

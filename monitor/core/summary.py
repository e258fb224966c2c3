"""A tracked study's summary as every reading surface shows it (the landscape's row, the
API's study, a download's line), and what the database indexes of it so the landscape is
filtered, searched, sorted and counted there (`IndexEntry`). Pure.

The index entry is derived from the very summary the page shows, with the landscape's
own comparisons (`core.landscape`: case-folded labels, a target's antigens, a product's
names as letters and digits, the search text), so a filter in SQL answers exactly what
the same filter answered in Python: one truth on every surface.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core import products as product_names
from monitor.core.registrations import Registration, parse_stored


def _split(labels: Any) -> list[str]:
    return list(labels or ())


def registrations_of(m: Mapping[str, Any]) -> list[Registration]:
    """A row's registrations: its own first, then the rest of its trial's (or, alone, those
    its record names)."""
    own = Registration(m["registered_on"] or "ctgov", m["nct_id"])
    stored = m["trial_registrations"] or m["registrations"] or ()
    return [own, *(x for x in parse_stored(stored) if x != own)]


def summary(m: Mapping[str, Any]) -> dict[str, Any]:
    """The summary of a studies row given its columns by name (store.SUMMARY_COLUMNS)."""
    product = m["product"]
    return {
        "nct_id": m["nct_id"],
        "title": m["brief_title"],
        "status": m["overall_status"],
        # the registry's own words, where they are not the reader's (CTIS, ICTRP's registers)
        "registry_status": m["registry_status"],
        "phases": _split(m["phases"]),
        "sponsor": m["lead_sponsor"],
        "countries": _split(m["countries"]),
        "in_scope": m["in_scope"],
        "scope_reason": m["scope_reason"],
        "modality": m["modality"],
        "targets": _split(m["targets"]),
        "cell_source": m["cell_source"],
        "product": product,
        "products": _split(m["products"]) or ([product] if product else []),
        "indications": _split(m["indications"]),
        "needs_review": m["needs_review"],
        "review": [],  # the classifier's review reasons and curators' marks: filled by a
        "curated": [],  # caller that reads the classification
        "last_update_post_date": m["last_update_post_date"],
        # the numbers analysts compare (the landscape's columns and downloads)
        "enrollment": m["enrollment_count"],
        "start": m["start_date"],
        "primary_completion": m["primary_completion_date"],
        "first_posted": m["first_post_date"],
        "sites": m["site_count"],
        # its own registration first, then its trial's others (core.trials): those tracked
        # and those the records name (core.registrations)
        "registrations": [x.to_dict() for x in registrations_of(m)],
        # the registration standing for its trial (the row the landscape shows)
        "trial_id": m["trial_id"] or m["nct_id"],
    }


# the landscape's list filters: facet -> the summary key it reads
FACETS = {
    "modality": "modality",
    "indication": "indications",
    "status": "status",
    "phase": "phases",
    "country": "countries",
    "source": "cell_source",
}
NOT_STATED = "not stated"  # a chart's modality when none is known
NO_INDICATION = "none"


@dataclass(frozen=True)
class IndexEntry:
    """What the database keeps of one summary to answer the landscape's questions.

    `terms` are (facet, term, label): the term is what a filter compares (folded as the
    landscape folds), the label what a count shows (as the registry or classifier wrote
    it). `sort` holds one key per sortable column (None: empty, which sorts last either
    way). `compact` is what free-text search reads: the row's text as letters and digits
    only. A search word is in the folded text only if its letters and digits are in that
    (folding and compacting both work character by character), so the landscape's "the
    word, or its letters and digits" is one substring test of the compact text."""

    terms: tuple[tuple[str, str, str], ...]
    sort: dict[str, str | None]
    compact: str


def index_entry(row: Mapping[str, Any]) -> IndexEntry:
    """The index entry of a summary (`summary`, plus its stored search text as "search")."""
    from monitor.core.landscape import SORT_KEYS, antigens, fold, haystack, sort_value

    terms: dict[tuple[str, str], str] = {}

    def add(facet: str, label: str | None, term: str | None = None) -> None:
        if label:
            key = (facet, fold(label) if term is None else term)
            if key[1]:
                terms.setdefault(key, label)

    for facet, key in FACETS.items():
        value = row.get(key)
        for label in value if isinstance(value, list) else [value]:
            add(facet, label)
    targets = row["targets"] or []
    for label in [*targets, *sorted(antigens(targets) - set(targets))]:
        add("target", label)
    # a subscriber's filter reads a dual target's antigens at "/" only (core.filters)
    for label in targets:
        for piece in label.split("/"):
            add("target_part", piece)
    add("sponsor", row["sponsor"])
    if row["sponsor"]:  # a sponsor's page is at its name's address
        add("sponsor_slug", row["sponsor"], product_names.slugify(row["sponsor"]))
    for name in row["products"] or [row["product"] or ""]:
        for part in sorted(product_names.name_parts(name)):
            add("product", part, part)
    for name in row["products"]:  # and a product's at its own
        add("product_slug", name, product_names.slugify(name))
    on = sorted({r["registry"] for r in row["registrations"] or []})
    for key in on:
        add("registry", key, key)
    if len(on) > 1:
        add("several", "1", "1")
    # what the charts count: the year first posted, and each (modality, indication) pair
    posted = str(row.get("first_posted") or "")[:4]
    add("year", posted, posted)
    modality = row["modality"] or NOT_STATED
    for indication in row["indications"] or [NO_INDICATION]:
        add("pair", f"{modality}\x1f{indication}", f"{modality}\x1f{indication}")
    _, compact = haystack(row)
    sort = {k: (sort_value(row, k) or None) for k in SORT_KEYS}
    return IndexEntry(tuple((f, t, label) for (f, t), label in terms.items()), sort, compact)

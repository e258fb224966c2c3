"""Publications found in the literature by a trial's registry numbers. Pure.

Most papers and abstracts about these trials are never added to the registry record; the
literature services index the registry numbers a paper cites (PubMed's secondary-source
"databank" list, Europe PMC's text-mined accession numbers). A `Publication` is one paper
as one service describes it; its `key` (PMID, else DOI, else the service's own id) joins
the same paper from several services and from the record's own references. Titles,
authors and abstracts are text from elsewhere: kept whole, never rewritten, escaped by
every surface that shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from monitor.core.domain import EventKind, FieldChange, Study
from monitor.core.registrations import recognise, registrations

# The literature services searched (an event's origin names the one that found a paper).
SERVICES = ("pubmed", "europepmc")
SOURCES = {"pubmed": "PubMed", "europepmc": "Europe PMC", "registry": "the registry record"}
PUBMED_URL = "https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
DOI_URL = "https://doi.org/{doi}"
EUROPEPMC_URL = "https://europepmc.org/article/{source}/{id}"
# The registries whose numbers the literature services index and papers cite.
SEARCHED = ("ctgov", "ctis", "eudract", "chictr", "jrct", "isrctn", "anzctr", "drks")


@dataclass(frozen=True, slots=True)
class Publication:
    """One paper, preprint or abstract as one literature service describes it."""

    source: str  # pubmed | europepmc: the service this description came from
    source_id: str  # the PMID, or Europe PMC's id (PPR… for a preprint)
    title: str | None = None
    authors: tuple[str, ...] = ()  # as the service writes them ("Müller F")
    journal: str | None = None  # the abbreviation where given (N Engl J Med)
    year: str | None = None
    date: str | None = None  # YYYY, YYYY-MM or YYYY-MM-DD: when it was published
    pmid: str | None = None
    pmcid: str | None = None
    doi: str | None = None
    abstract: str | None = None
    kind: str | None = None  # "Journal Article", "Preprint", "Review", ...
    mentions: tuple[str, ...] = ()  # registry numbers its record names (databank list, text)
    epmc_source: str | None = None  # Europe PMC's source code (MED, PMC, PPR, AGR...)

    @property
    def key(self) -> str:
        """One paper's identity across services: its PMID, else its DOI, else the service's id."""
        if self.pmid:
            return f"pmid:{self.pmid}"
        if self.doi:
            return f"doi:{self.doi.lower()}"
        return f"{self.source}:{self.source_id}"

    def to_row(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "pmid": self.pmid,
            "pmcid": self.pmcid,
            "doi": self.doi,
            "title": self.title,
            "authors": list(self.authors),
            "journal": self.journal,
            "year": self.year,
            "pub_date": self.date,
            "abstract": self.abstract,
            "kind": self.kind,
            "europepmc_id": f"{self.epmc_source}/{self.source_id}" if self.source == "europepmc" else None,
        }


def search_terms(study: Study) -> tuple[str, ...]:
    """The registry numbers to search the literature for: the study's own, and the other
    registries' numbers its record names (an EU CT or ChiCTR number of the same trial)."""
    return tuple(r.id for r in registrations(study) if r.registry in SEARCHED)


def mentioned(texts: Iterable[str | None]) -> tuple[str, ...]:
    """Every registry number named in these texts, each once."""
    out: dict[str, None] = {}
    for text in texts:
        if text:
            for r in recognise(text):
                out[r.id] = None
    return tuple(out)


_INITIALS = re.compile(r"^(?P<name>.+?)\s+[A-Z][A-Z-]{0,3}$")


def surname(author: str) -> str:
    """ "Müller F" -> "Müller"; a group's name is kept whole."""
    m = _INITIALS.match(author.strip())
    return m.group("name") if m else author.strip()


def short_citation(authors: Iterable[str], journal: str | None, year: str | None) -> str:
    """ "Müller et al., N Engl J Med 2024", as a reader cites a paper."""
    names = [surname(a) for a in authors if a and a.strip()]
    if not names:
        who = ""
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    where = " ".join(x for x in (journal, year) if x)
    return ", ".join(x for x in (who, where) if x)


def links(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, address) of a publication: its DOI, PubMed and Europe PMC pages."""
    out: list[tuple[str, str]] = []
    if row.get("doi"):
        out.append(("DOI", DOI_URL.format(doi=row["doi"])))
    if row.get("pmid"):
        out.append(("PubMed", PUBMED_URL.format(pmid=row["pmid"])))
    if row.get("europepmc_id"):
        source, _, ident = str(row["europepmc_id"]).partition("/")
        out.append(("Europe PMC", EUROPEPMC_URL.format(source=source, id=ident)))
    elif row.get("pmid"):
        out.append(("Europe PMC", EUROPEPMC_URL.format(source="MED", id=row["pmid"])))
    return out


def found_change(row: dict[str, Any], sources: Iterable[str], *, first: bool, cites: str) -> FieldChange:
    """The event of a publication newly linked to a study: who wrote it, where, what it is
    called, its identifiers, which registry number it cites and which service found it."""
    after = {
        "first": first,
        "citation": short_citation(row.get("authors") or (), row.get("journal"), row.get("year")),
        "title": row.get("title"),
        "journal": row.get("journal"),
        "year": row.get("year"),
        "date": row.get("pub_date"),
        "kind": row.get("kind"),
        "pmid": row.get("pmid"),
        "pmcid": row.get("pmcid"),
        "doi": row.get("doi"),
        "europepmc_id": row.get("europepmc_id"),
        "sources": sorted(set(sources)),
        "cites": cites,
    }
    return FieldChange(EventKind.PUBLICATION_FOUND, "publications", row["key"], None, after)


def found_text(after: dict[str, Any]) -> str:
    """ "First publication: Müller et al., N Engl J Med 2024, ‘CD19 CAR T-cell therapy…’
    (doi:10.1056/…), found in PubMed"."""
    head = "First publication" if after.get("first") else "New publication"
    parts = [x for x in (after.get("citation"), f"‘{after['title']}’" if after.get("title") else None) if x]
    ident = f"doi:{after['doi']}" if after.get("doi") else ""
    ident = ident or (f"PMID {after['pmid']}" if after.get("pmid") else "")
    where = " and ".join(SOURCES.get(s, s) for s in after.get("sources") or ())
    text = f"{head}: " + ", ".join(parts or ["(untitled)"])
    if ident:
        text += f" ({ident})"
    if (kind := after.get("kind")) and kind.lower() in ("preprint", "conference abstract", "abstract"):
        text += f", {kind.lower()}"
    return text + (f"; found in {where}" if where else "")


def merged(found: Iterable[dict[str, Any]], references: Iterable[Any]) -> list[dict[str, Any]]:
    """Every publication of a study for its page: those the services linked (`found`, from
    the store) and the record's own references (`Reference`), one entry per paper with
    every source that names it ("registry", "pubmed", "europepmc") and its links; newest first,
    the record's references without a date after them."""
    out: list[dict[str, Any]] = []
    by_pmid: dict[str, dict[str, Any]] = {}
    for row in found:
        entry = {
            **row,
            "citation": short_citation(row.get("authors") or (), row.get("journal"), row.get("year")),
            "links": links(row),
            "reference_type": None,
            "registry_citation": None,
        }
        out.append(entry)
        if row.get("pmid"):
            by_pmid[row["pmid"]] = entry
    for ref in references:
        entry = by_pmid.get(ref.pmid or "")
        if entry is not None:
            entry["sources"] = ["registry", *[s for s in entry["sources"] if s != "registry"]]
            entry["reference_type"], entry["registry_citation"] = ref.type, ref.citation
            continue
        row = {"pmid": ref.pmid}
        out.append(
            {
                "key": f"pmid:{ref.pmid}" if ref.pmid else f"ref:{ref.key}",
                "title": None,
                "citation": None,
                "pmid": ref.pmid,
                "doi": None,
                "pub_date": None,
                "abstract": None,
                "kind": None,
                "sources": ["registry"],
                "cites": [],
                "links": links(row),
                "reference_type": ref.type,
                "registry_citation": ref.citation,
            }
        )
    out.sort(key=lambda e: e.get("pub_date") or "", reverse=True)
    return out

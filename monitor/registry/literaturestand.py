"""A local stand-in for PubMed's E-utilities and Europe PMC's REST search, on 127.0.0.1.

For tests and the demo: it answers `esearch.fcgi` (JSON: count, idlist; `term` as an OR of
`"number"[si]` and `"number"[tiab]`; `datetype`/`mindate`/`maxdate`; `retstart`/`retmax`;
an `ERROR` for a term it cannot read, as ESearch does), `efetch.fcgi` (PubMed XML, text
escaped as XML) and Europe PMC's `search` (`ACCESSION_ID:"n" OR "n"` with an optional
`FIRST_IDATE:[a TO b]`, `resultType=core`, `cursorMark` pages, abstracts with the HTML
markup Europe PMC sends) from a list of papers. Europe PMC also matches a number written
only in a paper's full text, which the paper's metadata does not show, as the real
service does. Faults are queued as for the registry stand-in (monitor.registry.localserver).
The clients under test are the real ones: nothing here is imported by them.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from monitor.registry.localserver import LocalApiServer, RequestRecord, _ApiError

ESEARCH = "/entrez/eutils/esearch.fcgi"
EFETCH = "/entrez/eutils/efetch.fcgi"
EPMC_SEARCH = "/europepmc/webservices/rest/search"
_PUBMED_TERM = re.compile(r'"([^"]+)"\[(si|tiab)\]')
_EPMC_TERM = re.compile(r'(?:ACCESSION_ID:)?"([^"]+)"')
_EPMC_DATES = re.compile(r"\s+AND\s+FIRST_IDATE:\[(\d{4}-\d{2}-\d{2}) TO (\d{4}-\d{2}-\d{2})\]$")


@dataclass
class Paper:
    """One paper as both services would describe it."""

    title: str
    authors: list[str]  # "Müller F"
    journal: str = ""  # the ISO abbreviation
    date: str = ""  # published, YYYY-MM-DD
    indexed: str = ""  # first indexed (Entrez date, Europe PMC's first index date)
    modified: str = ""  # last changed (PubMed's mdat); defaults to `indexed`
    pmid: str = ""
    pmcid: str = ""
    doi: str = ""
    preprint_id: str = ""  # Europe PMC's PPR id, for a preprint only it holds
    server: str = ""  # a preprint's server (medRxiv)
    abstract: str = ""
    databank: list[str] = field(default_factory=list)  # registry numbers MEDLINE indexed
    full_text: str = ""  # words only Europe PMC reads (an open-access full text)
    types: list[str] = field(default_factory=lambda: ["Journal Article"])

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Paper:
        return cls(**d)

    @property
    def in_pubmed(self) -> bool:
        return bool(self.pmid)

    def cites(self, number: str, where: str) -> bool:
        if where == "si":
            return number in self.databank
        if where == "tiab":
            return number in self.title or number in self.abstract
        return number in self.databank or any(
            number in t for t in (self.title, self.abstract, self.full_text)
        )


class LiteratureStandIn(LocalApiServer):
    """Runs both stand-ins on one port (their paths differ, as their hosts do)."""

    def __init__(self, papers: list[Paper] | None = None, *, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(None, port=port, host=host)
        self.papers: list[Paper] = list(papers or [])

    def handle(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.log.append(RequestRecord(path, params))
            try:
                if path == ESEARCH:
                    return (
                        200,
                        {"Content-Type": "application/json"},
                        json.dumps(self._esearch(params)).encode(),
                    )
                if path == EFETCH:
                    return 200, {"Content-Type": "text/xml; charset=UTF-8"}, self._efetch(params)
                if path == EPMC_SEARCH:
                    body = json.dumps(self._epmc(params), ensure_ascii=False).encode()
                    return 200, {"Content-Type": "application/json;charset=UTF-8"}, body
                raise _ApiError(404, "Not found")
            except _ApiError as exc:
                return exc.status, {"Content-Type": "text/plain", **exc.headers}, exc.text.encode()

    # -- E-utilities -----------------------------------------------------------------

    def _esearch(self, params: dict[str, str]) -> dict[str, Any]:
        if params.get("db") != "pubmed":
            raise _ApiError(400, "Invalid db name specified")
        term = params.get("term", "")
        wanted = _PUBMED_TERM.findall(term)
        if not wanted or _PUBMED_TERM.sub("", term).replace(" OR ", "").strip():
            return {"esearchresult": {"ERROR": f"Invalid query: {term[:60]}"}}
        lo, hi = params.get("mindate"), params.get("maxdate")
        if bool(lo) != bool(hi):
            return {"esearchresult": {"ERROR": "mindate and maxdate must be given together"}}
        on = "modified" if params.get("datetype") == "mdat" else "indexed"
        hits = []
        for p in self.papers:
            if not p.in_pubmed or not any(p.cites(n, where) for n, where in wanted):
                continue
            day = (getattr(p, on) or p.indexed).replace("-", "/")
            if lo and hi and not (lo <= day <= hi):
                continue
            hits.append(p.pmid)
        start, size = int(params.get("retstart", 0)), int(params.get("retmax", 20))
        return {
            "header": {"type": "esearch", "version": "0.3"},
            "esearchresult": {
                "count": str(len(hits)),
                "retmax": str(len(hits[start : start + size])),
                "retstart": str(start),
                "idlist": hits[start : start + size],
                "translationset": [],
                "querytranslation": term,
            },
        }

    def _efetch(self, params: dict[str, str]) -> bytes:
        ids = [i for i in params.get("id", "").split(",") if i]
        root = ET.Element("PubmedArticleSet")
        for p in self.papers:
            if p.pmid in ids:
                root.append(_pubmed_xml(p))
        return b'<?xml version="1.0" ?>\n' + ET.tostring(root, encoding="utf-8")

    # -- Europe PMC ------------------------------------------------------------------

    def _epmc(self, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("query", "")
        dates = _EPMC_DATES.search(query)
        terms_part = query[: dates.start()] if dates else query
        numbers = _EPMC_TERM.findall(terms_part)
        if not numbers:
            raise _ApiError(400, "Invalid query")
        size = min(int(params.get("pageSize", 25)), 1000)
        cursor = params.get("cursorMark", "*")
        start = 0 if cursor == "*" else int(base64.urlsafe_b64decode(cursor.encode()).decode())
        hits = [
            p
            for p in self.papers
            if any(p.cites(n, "any") for n in numbers)
            and (not dates or dates.group(1) <= p.indexed <= dates.group(2))
        ]
        page = hits[start : start + size]
        following = base64.urlsafe_b64encode(str(start + len(page)).encode()).decode() if page else cursor
        return {
            "version": "6.9",
            "hitCount": len(hits),
            "nextCursorMark": following,
            "request": {
                "queryString": query,
                "resultType": params.get("resultType", "lite"),
                "pageSize": size,
            },
            "resultList": {"result": [_epmc_json(p) for p in page]},
        }


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _pubmed_xml(p: Paper) -> ET.Element:
    node = ET.Element("PubmedArticle")
    cit = _sub(node, "MedlineCitation", Status="MEDLINE", Owner="NLM")
    _sub(cit, "PMID", p.pmid, Version="1")
    art = _sub(cit, "Article", PubModel="Print-Electronic")
    journal = _sub(art, "Journal")
    issue = _sub(journal, "JournalIssue", CitedMedium="Internet")
    pub = _sub(issue, "PubDate")
    y, m, _ = (p.date + "--").split("-", 2)
    _sub(pub, "Year", y)
    if m:
        _sub(
            pub,
            "Month",
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][int(m) - 1],
        )
    _sub(journal, "ISOAbbreviation", p.journal)
    _sub(art, "ArticleTitle", p.title)
    if p.abstract:
        abstract = _sub(art, "Abstract")
        for part in p.abstract.split("\n\n"):
            label, sep, text = part.partition(": ")
            if sep and label.isupper():
                _sub(abstract, "AbstractText", text, Label=label)
            else:
                _sub(abstract, "AbstractText", part)
    authors = _sub(art, "AuthorList", CompleteYN="Y")
    for a in p.authors:
        last, _, initials = a.rpartition(" ")
        author = _sub(authors, "Author", ValidYN="Y")
        if not last:
            _sub(author, "CollectiveName", a)
        else:
            _sub(author, "LastName", last)
            _sub(author, "Initials", initials)
    if p.databank:
        bank = _sub(_sub(art, "DataBankList", CompleteYN="Y"), "DataBank")
        _sub(bank, "DataBankName", "ClinicalTrials.gov")
        numbers = _sub(bank, "AccessionNumberList")
        for n in p.databank:
            _sub(numbers, "AccessionNumber", n)
    types = _sub(art, "PublicationTypeList")
    for t in p.types:
        _sub(types, "PublicationType", t)
    if p.date.count("-") == 2:
        ad = _sub(art, "ArticleDate", DateType="Electronic")
        y, m, d = p.date.split("-")
        _sub(ad, "Year", y), _sub(ad, "Month", m), _sub(ad, "Day", d)
    data = _sub(node, "PubmedData")
    ids = _sub(data, "ArticleIdList")
    _sub(ids, "ArticleId", p.pmid, IdType="pubmed")
    if p.doi:
        _sub(ids, "ArticleId", p.doi, IdType="doi")
    if p.pmcid:
        _sub(ids, "ArticleId", p.pmcid, IdType="pmc")
    return node


def _epmc_json(p: Paper) -> dict[str, Any]:
    preprint = not p.pmid
    out: dict[str, Any] = {
        "id": p.preprint_id if preprint else p.pmid,
        "source": "PPR" if preprint else "MED",
        "title": p.title,
        "authorString": ", ".join(p.authors) + ".",
        "authorList": {"author": [_epmc_author(a) for a in p.authors]},
        "pubYear": p.date[:4],
        "firstPublicationDate": p.date,
        "firstIndexDate": p.indexed,
        "pubTypeList": {"pubType": ["Preprint"] if preprint else p.types},
    }
    if p.abstract:
        # Europe PMC marks an abstract's sections up in HTML
        out["abstractText"] = "".join(
            f"<h4>{part.partition(': ')[0].title()}</h4>{part.partition(': ')[2]}"
            if part.partition(": ")[0].isupper()
            else part
            for part in p.abstract.split("\n\n")
        )
    if not preprint:
        out["pmid"] = p.pmid
        out["journalInfo"] = {"journal": {"isoabbreviation": p.journal, "title": p.journal}}
    else:
        out["bookOrReportDetails"] = {"publisher": p.server or "medRxiv"}
    if p.doi:
        out["doi"] = p.doi
    if p.pmcid:
        out["pmcid"] = p.pmcid
    return out


def _epmc_author(a: str) -> dict[str, str]:
    last, _, initials = a.rpartition(" ")
    if not last:
        return {"collectiveName": a}
    return {"fullName": a, "lastName": last, "initials": initials}

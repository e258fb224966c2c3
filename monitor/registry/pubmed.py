"""PubMed through NCBI's E-utilities: papers that cite a trial's registry numbers.

ESearch finds the PMIDs (`"NCT06347718"[si]`: the secondary-source "databank" list
MEDLINE indexes; `[tiab]`: the number written in the title or abstract), limited to
records created or changed in a window (`datetype=mdat`, so a databank number added to
an older record is found too); EFetch reads them as PubMed XML in batches. Requests are
paced as NCBI asks: three a second without an API key, ten with one (`api_key`, read
from the environment by the caller). Retries and faults as every paced client
(monitor.registry.paced).
"""

from __future__ import annotations

import random
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

import httpx

from monitor.core.literature import Publication, mentioned
from monitor.literature_config import LiteratureSettings
from monitor.registry.answers import ApiError, MalformedResponse, parse_json
from monitor.registry.paced import PacedClient

ESEARCH = "/entrez/eutils/esearch.fcgi"
EFETCH = "/entrez/eutils/efetch.fcgi"
PAGE = 500  # PMIDs per ESearch answer
FETCH = 200  # PMIDs per EFetch request (NCBI suggests at most 200 by GET)
MAX_HITS = 9_999  # ESearch pages no further than this into a result set
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


class PubMedClient(PacedClient):
    """Finds PubMed records by registry numbers; never touches the database."""

    name = "pubmed"

    def __init__(
        self,
        settings: LiteratureSettings,
        *,
        api_key: str = "",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        interval = settings.pubmed_interval_with_key_seconds if api_key else settings.pubmed_interval_seconds
        super().__init__(
            settings,
            base_url=settings.pubmed_url,
            headers={},
            transport=transport,
            sleep=sleep,
            clock=clock,
            rng=rng,
            min_interval=interval,
        )
        self._common = {"db": "pubmed", "tool": "ctmonitor"}
        if settings.email:
            self._common["email"] = settings.email
        if api_key:
            self._common["api_key"] = api_key

    def __enter__(self) -> PubMedClient:
        return self

    @staticmethod
    def term(numbers: Iterable[str]) -> str:
        """The ESearch term for these registry numbers: each as a databank number or in the text."""
        return " OR ".join(f'"{n}"[si] OR "{n}"[tiab]' for n in numbers)

    def search(self, numbers: Sequence[str], since: date | None, until: date) -> list[str]:
        """Every PMID citing any of `numbers`, created or changed from `since` (None: ever) to `until`."""
        params = {**self._common, "term": self.term(numbers), "retmode": "json", "retmax": str(PAGE)}
        if since is not None:
            params |= {"datetype": "mdat", "mindate": f"{since:%Y/%m/%d}", "maxdate": f"{until:%Y/%m/%d}"}
        out: list[str] = []
        start = 0
        while True:
            data = self._request_json(ESEARCH, {**params, "retstart": str(start)})
            count, ids = _esearch(data)
            if count > MAX_HITS:
                raise ApiError(
                    f"PubMed found {count} records for one request, more than it pages through "
                    f"({MAX_HITS}); lower literature.terms_per_request"
                )
            out += [i for i in ids if i not in out]
            start += PAGE
            if not ids or start >= count:
                return out

    def fetch(self, pmids: Sequence[str]) -> list[Publication]:
        """The records of these PMIDs, read from PubMed XML."""
        out: list[Publication] = []
        for i in range(0, len(pmids), FETCH):
            chunk = ",".join(pmids[i : i + FETCH])
            params = {**self._common, "id": chunk, "retmode": "xml", "rettype": "abstract"}
            out += self._request_json(EFETCH, params, decode=parse_articles, expect="xml")
        return out

    def find(self, numbers: Sequence[str], since: date | None, until: date) -> list[Publication]:
        pmids = self.search(numbers, since, until)
        return self.fetch(pmids) if pmids else []


def _esearch(data: Any) -> tuple[int, list[str]]:
    result = data.get("esearchresult") if isinstance(data, dict) else None
    if not isinstance(result, dict):
        raise MalformedResponse(f"{ESEARCH}: no esearchresult in the answer")
    if error := result.get("ERROR") or (data.get("error") if isinstance(data, dict) else None):
        raise ApiError(f"PubMed refused the search: {error}")
    try:
        count = int(result.get("count", 0))
    except (TypeError, ValueError):
        raise MalformedResponse(f"{ESEARCH}: count {result.get('count')!r} is not a number") from None
    ids = result.get("idlist") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) and i.isdigit() for i in ids):
        raise MalformedResponse(f"{ESEARCH}: idlist is not a list of PMIDs")
    return count, ids


def parse_esearch(body: bytes) -> tuple[int, list[str]]:
    """(count, PMIDs) of an ESearch JSON answer (for tests and tools)."""
    return _esearch(parse_json(body))


# -- PubMed XML ------------------------------------------------------------------------


def _text(el: ET.Element | None) -> str | None:
    """An element's whole text, inline markup (<i>, <sup>) included as its words."""
    if el is None:
        return None
    text = " ".join("".join(el.itertext()).split())
    return text or None


def _date(el: ET.Element | None) -> str | None:
    """A PubMed date element (Year, Month as 02 or Feb, Day) as YYYY[-MM[-DD]]."""
    if el is None:
        return None
    year = (el.findtext("Year") or "").strip()
    if not year:
        medline = el.findtext("MedlineDate") or ""
        m = re.match(r"\d{4}", medline)
        return m.group(0) if m else None
    month_text = (el.findtext("Month") or "").strip().lower()
    month = int(month_text) if month_text.isdigit() else _MONTHS.get(month_text[:3])
    day = (el.findtext("Day") or "").strip()
    if not month:
        return year
    if not day.isdigit():
        return f"{year}-{month:02d}"
    return f"{year}-{month:02d}-{int(day):02d}"


_KINDS = ("Preprint", "Randomized Controlled Trial", "Clinical Trial", "Case Reports", "Review", "Letter")


def _article(node: ET.Element) -> Publication | None:
    cit = node.find("MedlineCitation")
    art = cit.find("Article") if cit is not None else None
    pmid = (cit.findtext("PMID") or "").strip() if cit is not None else ""
    if art is None or not pmid.isdigit():
        return None
    title = _text(art.find("ArticleTitle"))
    sections = []
    for part in art.findall("Abstract/AbstractText"):
        text = _text(part)
        if text:
            label = part.get("Label")
            sections.append(f"{label}: {text}" if label else text)
    abstract = "\n\n".join(sections) or None
    authors = []
    for a in art.findall("AuthorList/Author"):
        group = _text(a.find("CollectiveName"))
        last = (a.findtext("LastName") or "").strip()
        initials = (a.findtext("Initials") or "").strip()
        name = group or " ".join(x for x in (last, initials) if x)
        if name:
            authors.append(name)
    journal = art.find("Journal")
    abbrev = (
        (journal.findtext("ISOAbbreviation") or journal.findtext("Title")) if journal is not None else None
    )
    published = _date(art.find("ArticleDate")) or _date(art.find("Journal/JournalIssue/PubDate"))
    ids = {
        i.get("IdType"): (i.text or "").strip() for i in node.findall("PubmedData/ArticleIdList/ArticleId")
    }
    doi = ids.get("doi") or next(
        ((e.text or "").strip() for e in art.findall("ELocationID") if e.get("EIdType") == "doi"), None
    )
    types = [(t.text or "").strip() for t in art.findall("PublicationTypeList/PublicationType")]
    kind = next((k for k in _KINDS if k in types), types[0] if types else None)
    databank = [
        (n.text or "").strip()
        for n in art.findall("DataBankList/DataBank/AccessionNumberList/AccessionNumber")
    ]
    return Publication(
        source="pubmed",
        source_id=pmid,
        title=title,
        authors=tuple(authors),
        journal=abbrev.strip() if abbrev else None,
        year=published[:4] if published else None,
        date=published,
        pmid=pmid,
        pmcid=ids.get("pmc") or None,
        doi=doi or None,
        abstract=abstract,
        kind=kind,
        mentions=mentioned([*databank, title, abstract]),
    )


def parse_articles(body: bytes) -> list[Publication]:
    """The papers of an EFetch PubMed XML answer. Text is kept whole; nothing in it is
    executed or resolved (no external entities)."""
    root = ET.fromstring(body)
    if root.tag != "PubmedArticleSet":
        raise ValueError(f"expected a PubmedArticleSet, got <{root.tag}>")
    return [p for node in root.findall("PubmedArticle") if (p := _article(node)) is not None]

"""Europe PMC's REST search: papers, preprints and abstracts that name a trial's registry numbers.

One search per batch of numbers (`ACCESSION_ID:"NCT06347718" OR "NCT06347718"`: the
accession numbers Europe PMC text-mines from full texts, and the number anywhere it
indexes), limited to records first indexed in a window (`FIRST_IDATE`), `resultType=core`
so each hit carries its abstract and identifiers, pages followed by `cursorMark` until it
stops moving. Abstracts arrive with HTML markup; the markup is removed where it is markup
and every other character kept (monitor.core.text). Retries and faults as every paced
client (monitor.registry.paced).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import httpx

from monitor.core.literature import Publication, mentioned
from monitor.core.text import clean_cached
from monitor.literature_config import LiteratureSettings
from monitor.registry.answers import MalformedResponse
from monitor.registry.paced import PacedClient

SEARCH = "/europepmc/webservices/rest/search"
PAGE = 1000  # the service's largest page


class EuropePmcClient(PacedClient):
    """Finds Europe PMC records by registry numbers; never touches the database."""

    name = "europepmc"

    def __init__(
        self,
        settings: LiteratureSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            settings,
            base_url=settings.europepmc_url,
            headers={"Accept": "application/json"},
            transport=transport,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )

    def __enter__(self) -> EuropePmcClient:
        return self

    @staticmethod
    def query(numbers: Sequence[str], since: date | None, until: date) -> str:
        terms = " OR ".join(f'ACCESSION_ID:"{n}" OR "{n}"' for n in numbers)
        if since is None:
            return f"({terms})"
        return f"({terms}) AND FIRST_IDATE:[{since:%Y-%m-%d} TO {until:%Y-%m-%d}]"

    def find(self, numbers: Sequence[str], since: date | None, until: date) -> list[Publication]:
        """Every record naming any of `numbers`, first indexed from `since` (None: ever) to `until`."""
        params = {
            "query": self.query(numbers, since, until),
            "format": "json",
            "resultType": "core",
            "pageSize": str(PAGE),
            "synonym": "false",
        }
        cursor = "*"
        out: dict[str, Publication] = {}
        while True:
            data = self._request_json(SEARCH, {**params, "cursorMark": cursor})
            results, following = _page(data)
            for r in results:
                if (p := _publication(r)) is not None:
                    out.setdefault(p.source_id, p)
            if not results or not following or following == cursor:
                return list(out.values())
            cursor = following


def _page(data: Any) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(data, dict) or not isinstance(data.get("resultList"), dict):
        raise MalformedResponse(f"{SEARCH}: no resultList in the answer")
    results = data["resultList"].get("result") or []
    if not isinstance(results, list):
        raise MalformedResponse(f"{SEARCH}: resultList.result is not a list")
    following = data.get("nextCursorMark")
    return [r for r in results if isinstance(r, dict)], following if isinstance(following, str) else None


def _clean(value: Any) -> str | None:
    return clean_cached(str(value)) or None if value else None


def _authors(r: dict[str, Any]) -> tuple[str, ...]:
    listed = (r.get("authorList") or {}).get("author") if isinstance(r.get("authorList"), dict) else None
    out: list[str] = []
    for a in listed or ():
        if not isinstance(a, dict):
            continue
        name = a.get("collectiveName") or " ".join(
            x for x in (a.get("lastName"), a.get("initials")) if isinstance(x, str) and x
        )
        name = name or a.get("fullName")
        if isinstance(name, str) and name.strip():
            out.append(name.strip())
    if not out and isinstance(r.get("authorString"), str):
        out = [a.strip().rstrip(".") for a in r["authorString"].split(",") if a.strip()]
    return tuple(out)


def _publication(r: dict[str, Any]) -> Publication | None:
    ident, source = r.get("id"), r.get("source")
    if not isinstance(ident, str) or not isinstance(source, str):
        return None
    info = r.get("journalInfo") if isinstance(r.get("journalInfo"), dict) else {}
    journal = info.get("journal") if isinstance(info.get("journal"), dict) else {}
    name = journal.get("isoabbreviation") or journal.get("medlineAbbreviation") or journal.get("title")
    if not name and isinstance(r.get("bookOrReportDetails"), dict):
        name = r["bookOrReportDetails"].get("publisher")  # a preprint's server (medRxiv)
    types = (r.get("pubTypeList") or {}).get("pubType") if isinstance(r.get("pubTypeList"), dict) else None
    types = [types] if isinstance(types, str) else [t for t in types or () if isinstance(t, str)]
    kind = "Preprint" if source == "PPR" else next((t for t in types if t.lower() != "journal article"), None)
    kind = kind or (types[0].title() if types else None)
    title, abstract = _clean(r.get("title")), _clean(r.get("abstractText"))
    published = r.get("firstPublicationDate") or r.get("electronicPublicationDate")
    year = str(r.get("pubYear") or "")[:4] or (str(published)[:4] if published else None)
    pmid = r.get("pmid") if isinstance(r.get("pmid"), str) and r["pmid"].isdigit() else None
    return Publication(
        source="europepmc",
        source_id=ident,
        title=title.rstrip() if title else None,
        authors=_authors(r),
        journal=str(name).strip() if name else None,
        year=year or None,
        date=str(published)[:10] if published else None,
        pmid=pmid,
        pmcid=r.get("pmcid") if isinstance(r.get("pmcid"), str) else None,
        doi=r.get("doi") if isinstance(r.get("doi"), str) else None,
        abstract=abstract,
        kind=kind,
        mentions=mentioned([title, abstract]),
        epmc_source=source,
    )

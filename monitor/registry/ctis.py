"""The EU CTIS public API client (euclinicaltrials.eu/ctis-public-api), on the paced loop.

Its traps, handled here (docs/REGISTRIES.md; shared notes CTIS.md):
- search is a POST (a GET answers 403); pages count from 1 (page 0 answers an empty
  register); at most 100 trials a page; the number of pages is read from each answer;
- a search never returns more than 10,000 trials and says nothing of it: pages past the
  cap come back empty while `totalRecords` stays true. A search over the cap is read from
  both ends (descending, then ascending, duplicates dropped), which reaches twice the cap;
  beyond that, or when the pages still come up short, `IncompleteSearch` says so and the
  poll fails rather than take a truncated result for the whole;
- `/retrieve/{ctNumber}` answers 404 for some transitioned trials (`TrialUnavailable`);
  a number not in the CTIS format is never sent.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from monitor.core.ctis import CTIS_NUMBER, iso_date
from monitor.ctis_config import CtisSettings
from monitor.registry.answers import ApiError, ApiNotFound, MalformedResponse, Record, parse_json
from monitor.registry.paced import PacedClient

SEARCH = "/ctis-public-api/search"
RETRIEVE = "/ctis-public-api/retrieve/"


class IncompleteSearch(ApiError):
    """CTIS returned fewer trials than it counted for a search: never taken for the whole."""


class TrialUnavailable(ApiError):
    """CTIS does not give this trial's record (some transitioned trials answer 404)."""


@dataclass(frozen=True, slots=True)
class Overview:
    """One trial as a search page lists it: its number and its two update dates (ISO)."""

    number: str
    last_updated: str | None
    last_publication: str | None

    @property
    def newest(self) -> str:
        return max(d for d in (self.last_updated, self.last_publication, "") if d is not None)


@dataclass(frozen=True, slots=True)
class SearchPage:
    number: int
    total_records: int
    total_pages: int
    trials: tuple[Overview, ...]


def _page(data: Any, number: int) -> SearchPage:
    if not isinstance(data, dict) or not isinstance(data.get("pagination"), dict):
        raise MalformedResponse(f"{SEARCH} page {number}: no pagination in the answer")
    pag, rows = data["pagination"], data.get("data")
    if not isinstance(rows, list):
        raise MalformedResponse(f"{SEARCH} page {number}: data is not a list")
    trials = []
    for row in rows:
        n = row.get("ctNumber") if isinstance(row, dict) else None
        if isinstance(n, str) and CTIS_NUMBER.match(n.strip()):
            trials.append(
                Overview(
                    n.strip(), iso_date(row.get("lastUpdated")), iso_date(row.get("lastPublicationUpdate"))
                )
            )
    try:
        total, pages = int(pag.get("totalRecords") or 0), int(pag.get("totalPages") or 0)
    except (TypeError, ValueError):
        raise MalformedResponse(f"{SEARCH} page {number}: totals are not numbers") from None
    return SearchPage(number, total, pages, tuple(trials))


def _whole_record(body: bytes) -> bytes:
    """The record's bytes, once they parse as one JSON object (a body cut short is retried)."""
    if not isinstance(parse_json(body), dict):
        raise ValueError("a CTIS record must be a JSON object")
    return body


class CtisClient(PacedClient):
    """Talks to `{base_url}/ctis-public-api`; never touches the database."""

    name = "ctis"

    def __init__(
        self,
        settings: CtisSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            settings,
            base_url=settings.base_url,
            headers={"Accept": "application/json"},
            transport=transport,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )
        self.settings = settings

    def __enter__(self) -> CtisClient:
        return self

    def _search_page(self, criteria: dict[str, Any], page: int, direction: str) -> SearchPage:
        body = {
            "pagination": {"page": page, "size": self.settings.page_size},
            "sort": {"property": "lastPublicationUpdate", "direction": direction},
            "searchCriteria": criteria,
        }
        return self._request_json(SEARCH, body=body, decode=lambda b: _page(parse_json(b), page))

    def search(self, criteria: dict[str, Any]) -> Iterator[SearchPage]:
        """Every page of one search, newest publication first; then, for a search over the
        cap, the oldest first until the two ends meet (duplicates dropped by the caller)."""
        first = self._search_page(criteria, 1, "DESC")
        yield first
        total, cap = first.total_records, self.settings.result_cap
        if total > 2 * cap:
            raise IncompleteSearch(
                f"CTIS counts {total} trials for the search {criteria}, more than it returns from both "
                f"ends ({2 * cap}); narrow the search (ctis.searches)"
            )
        seen = len(first.trials)
        reachable = min(total, cap)
        page = 1
        while seen < reachable and page < first.total_pages:
            page += 1
            p = self._search_page(criteria, page, "DESC")
            if not p.trials:
                break
            seen += len(p.trials)
            yield p
        rest = total - seen
        page = 0
        while rest > 0:
            page += 1
            p = self._search_page(criteria, page, "ASC")
            if not p.trials:
                break
            rest -= len(p.trials)
            yield p
        if seen < reachable or rest > 0:
            raise IncompleteSearch(
                f"CTIS counted {total} trials for the search {criteria} but its pages held {seen}; "
                "the poll is not taken as complete"
            )

    def retrieve(self, number: str) -> Record:
        """One trial's full record, its bytes as sent."""
        if not CTIS_NUMBER.match(number):
            raise ValueError(f"not a CTIS trial number: {number!r}")
        try:
            raw = self._request_json(f"{RETRIEVE}{number}", decode=_whole_record)
        except ApiNotFound:
            raise TrialUnavailable(f"CTIS gives no record for {number} (404)") from None
        return Record(raw, number)

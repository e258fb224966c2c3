"""The ClinicalTrials.gov data API v2 client (httpx), the same code for the registry and the local server.

One retry rule for every request: transport errors, timeouts, 429 (honouring
Retry-After, capped), 5xx, and bodies that are not the JSON they claim to be are retried
with exponential backoff and full jitter inside a total time budget; every other 4xx
fails at once. A client-side minimum interval between requests keeps us polite
(the registry's robots.txt asks for one second). Sleep and clock are injectable so
tests count calls without ever sleeping.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from monitor.config import ApiSettings
from monitor.core.normalize import RecordError, nct_id_of
from monitor.registry.answers import (
    ApiError,
    ApiForbidden,
    ApiHTTPError,
    ApiNotFound,
    HistoryUnavailable,
    MalformedResponse,
    Page,
    Record,
    RegistryVersion,
    RetriesExhausted,
    VersionInfo,
    WebPageAnswer,
    decode_page,
    parse_history_index,
    parse_json,
    parse_retry_after,
)
from monitor.registry.paced import PacedClient, RateLimiter

# The answers' types are re-exported: callers import the client and what it raises from here.
__all__ = [
    "MAX_EMPTY_PAGES",
    "ApiError",
    "ApiForbidden",
    "ApiHTTPError",
    "ApiNotFound",
    "CtGovClient",
    "HistoryUnavailable",
    "MalformedResponse",
    "Page",
    "RateLimiter",
    "Record",
    "RegistryVersion",
    "RetriesExhausted",
    "VersionInfo",
    "WebPageAnswer",
    "decode_page",
    "parse_history_index",
    "parse_json",
    "parse_retry_after",
]

STUDIES = "/api/v2/studies"
VERSION = "/api/v2/version"
# The registry's own record history: undocumented, unversioned endpoints of its web UI.
INT_STUDIES = "/api/int/studies"


# Empty continuation pages followed in a row before a search is taken to have ended
# (short of its totalCount, which the sync then reports as an incomplete result).
MAX_EMPTY_PAGES = 3


def _refusal(exc: ApiHTTPError) -> str:
    return str(exc) if isinstance(exc, WebPageAnswer) else f"HTTP {exc.status}"


class CtGovClient(PacedClient):
    """Talks to `{base_url}/api/v2`; yields raw study dicts, never touches the database."""

    def __init__(
        self,
        settings: ApiSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        if settings.user_agent:
            headers["User-Agent"] = settings.user_agent
        super().__init__(
            settings,
            base_url=settings.base_url,
            headers=headers,
            transport=transport,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )
        self.settings = settings

    def __enter__(self) -> CtGovClient:
        return self

    # -- endpoints ---------------------------------------------------------------

    def version(self) -> VersionInfo:
        data = self._request_json(VERSION)
        if not isinstance(data, dict):
            raise MalformedResponse(f"{VERSION} did not return an object")
        ts = data.get("dataTimestamp")
        return VersionInfo(api_version=data.get("apiVersion"), data_timestamp=str(ts) if ts else None)

    def iter_pages(
        self,
        params: dict[str, str],
        *,
        count_total: bool = True,
        page_size: int | None = None,
        fields: list[str] | None = None,
    ) -> Iterator[Page]:
        """Every page of a /studies search, following `nextPageToken`.

        The registry can hand out a token after a page that exactly exhausted the
        results; the page it leads to is empty. So the search ends at a page without a
        token, or at an empty page once the first page's totalCount is reached; an empty
        page with a token before that is followed (at most MAX_EMPTY_PAGES in a row), since
        the registry has answered empty continuation pages mid-search. Later pages repeat
        the first page's parameters, as the API requires.
        """
        base = dict(params)
        base["pageSize"] = str(page_size or self.settings.page_size)
        if fields := fields or self.settings.fields:
            base["fields"] = "|".join(fields)
        token: str | None = None
        number = 0
        total: int | None = None
        seen = empty_run = 0
        while True:
            number += 1
            query = dict(base)
            if number == 1 and count_total:
                query["countTotal"] = "true"
            if token:
                query["pageToken"] = token
            page = self._request_json(STUDIES, query, decode=lambda body, n=number: decode_page(body, n))
            if number == 1:
                total = page.total_count
            seen += len(page.records)
            if page.records or number == 1:
                yield page
            if not page.next_token:
                return
            if not page.records:
                empty_run += 1
                if total is None or seen >= total or empty_run > MAX_EMPTY_PAGES:
                    return  # the false token after an exactly filled last page, or a run of them
            else:
                empty_run = 0
            token = page.next_token

    def get_study(self, nct_id: str) -> dict[str, Any]:
        """One study by id. An id that became an alias answers 301; httpx follows it, and
        the record returned carries the study's current id."""
        params = {"fields": "|".join(self.settings.fields)} if self.settings.fields else None
        data = self._request_json(f"{STUDIES}/{nct_id}", params)
        try:
            nct_id_of(data)
        except RecordError as exc:
            raise MalformedResponse(f"{STUDIES}/{nct_id}: {exc}") from None
        return data

    # -- the record history (undocumented; see docs/ARCHITECTURE.md) ----------------------

    def history_index(self, nct_id: str) -> list[RegistryVersion]:
        """Every version of a study's record: number, date, status, changed modules. One request.

        Asks `/api/int/studies/{id}/history`, falling back to `/api/int/studies/{id}?history=true`
        (the same list inside the UI's study answer) when that path is refused or gone; if both
        are, HistoryUnavailable names both answers (the backfill skips that study).
        """
        path = f"{INT_STUDIES}/{nct_id}/history"
        try:
            return parse_history_index(self._request_json(path, web=True), path)
        except (ApiNotFound, ApiForbidden) as first:
            fallback = f"{INT_STUDIES}/{nct_id}"
            try:
                data = self._request_json(fallback, {"history": "true"}, web=True)
            except (ApiNotFound, ApiForbidden) as second:
                raise HistoryUnavailable(
                    f"the registry refused the record history of {nct_id} on both endpoints "
                    f"({path}: {_refusal(first)}; {fallback}?history=true: {_refusal(second)}); "
                    "these are undocumented endpoints of its web site"
                ) from None
            history = data.get("history") if isinstance(data, dict) else None
            return parse_history_index(history, f"{fallback}?history=true")

    def history_version(self, nct_id: str, version: int) -> dict[str, Any]:
        """The record as it stood at one registry version (HTML markup in text, no derivedSection).

        Version bodies never change once published, so each is fetched once and stored.
        """
        path = f"{INT_STUDIES}/{nct_id}/history/{version}"
        data = self._request_json(path, web=True)
        study = data.get("study") if isinstance(data, dict) else None
        if not isinstance(study, dict):
            raise MalformedResponse(f"{path}: no 'study' object")
        number = data.get("studyVersion")
        if number is not None and number != version:
            raise MalformedResponse(f"{path}: answered version {number!r}")
        try:
            nct_id_of(study)
        except RecordError as exc:
            raise MalformedResponse(f"{path}: {exc}") from None
        return study

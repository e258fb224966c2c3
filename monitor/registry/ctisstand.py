"""A local stand-in for the EU CTIS public API, on 127.0.0.1, for tests and the demo.

It answers as the notes describe CTIS (shared notes CTIS.md), traps included: POST
`/ctis-public-api/search` (a GET answers 403) with `pagination.page` from 1 (page 0
answers 200 with nothing), at most 100 trials a page, `sort` by `lastPublicationUpdate`
either way, `searchCriteria.containAny` / `containAll` over titles, conditions and
products, overview records with `ctStatus` as an int and every date `DD/MM/YYYY`, and the
silent result cap (pages past it come back empty while `totalRecords` stays true);
GET `/ctis-public-api/retrieve/{ctNumber}` with the full record as stored (404 for an
unknown or unavailable trial, 400 for a number not in the CTIS format). Faults queue as for
the registry stand-in (monitor.registry.localserver), for POST and GET alike.
The client under test is the real one: nothing here is imported by it.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from monitor.registry.localserver import LocalApiServer, RequestRecord, _ApiError

SEARCH = "/ctis-public-api/search"
RETRIEVE = "/ctis-public-api/retrieve/"
_NUMBER = re.compile(r"^\d{4}-\d{6}-\d{2}-\d{2}$")
STATUS_WORDS = {
    1: "Under evaluation",
    2: "Authorised, recruitment pending",
    3: "Authorised, recruiting",
    4: "Ongoing, recruiting",
    5: "Ongoing, recruitment ended",
    6: "Temporarily halted",
    7: "Suspended",
    8: "Ended",
}


def _dmy(iso: str | None) -> str | None:
    """An ISO date (or timestamp) as CTIS's overview writes it: DD/MM/YYYY."""
    if not iso or not re.match(r"\d{4}-\d{2}-\d{2}", iso):
        return None
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"


def overview(rec: dict[str, Any]) -> dict[str, Any]:
    """The search page's view of a full record (the portal's overview fields)."""
    app = rec.get("authorizedApplication") or {}
    p1 = app.get("authorizedPartI") or {}
    info = (p1.get("trialDetails") or {}).get("trialInformation") or {}
    ids = (p1.get("trialDetails") or {}).get("clinicalTrialIdentifiers") or {}
    conditions = [
        c.get("medicalCondition") for c in p1.get("medicalConditions") or [] if c.get("medicalCondition")
    ]
    products = []
    for p in p1.get("products") or []:
        products += [x for x in (p.get("productName"), p.get("jsonActiveSubstanceNames")) if x]
    sponsors = p1.get("sponsors") or [{}]
    org = ((sponsors[0].get("publicContacts") or [{}])[0].get("organisation")) or {}
    states = app.get("memberStatesConcerned") or []
    published = rec.get("publishDate")
    return {
        "ctNumber": rec.get("ctNumber"),
        "ctStatus": rec.get("ctPublicStatusCode"),
        "ctTitle": ids.get("fullTitle"),
        "shortTitle": ids.get("shortTitle"),
        "conditions": ", ".join(conditions),
        "trialCountries": [f"{m.get('mscName')}:{m.get('mscPublicStatusCode')}" for m in states],
        "sponsor": org.get("name"),
        "trialPhase": (info.get("trialCategory") or {}).get("trialPhase"),
        "product": ", ".join(products),
        "startDateEU": rec.get("startDateEU"),
        "lastUpdated": _dmy(rec.get("lastUpdated") or published),
        "lastPublicationUpdate": _dmy(published),
    }


class CtisStandIn(LocalApiServer):
    """CTIS's public API from a set of full records (`records`: number -> record)."""

    def __init__(
        self,
        records: list[dict[str, Any]] | None = None,
        *,
        cap: int = 10_000,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(None, port=port, host=host)
        self.records: dict[str, dict[str, Any]] = {r["ctNumber"]: r for r in records or []}
        self.cap = cap
        self.unavailable: set[str] = set()  # numbers /retrieve answers 404 for (transitioned trials)

    def put(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.records[record["ctNumber"]] = record

    def handle(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.log.append(RequestRecord(path, params))
            try:
                if path == SEARCH:
                    raise _ApiError(403, "Forbidden")  # CTIS's search is a POST
                if path.startswith(RETRIEVE):
                    number = path.removeprefix(RETRIEVE)
                    if not _NUMBER.match(number):
                        raise _ApiError(400, "Bad Request")
                    if number not in self.records or number in self.unavailable:
                        raise _ApiError(404, "Not Found")
                    body = json.dumps(self.records[number], ensure_ascii=False).encode()
                    return 200, {"Content-Type": "application/json"}, body
                raise _ApiError(404, "Not Found")
            except _ApiError as exc:
                return exc.status, {"Content-Type": "text/plain", **exc.headers}, exc.text.encode()

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        pag = body.get("pagination") or {}
        page, size = int(pag.get("page", 0)), min(int(pag.get("size", 20)), 100)
        criteria = body.get("searchCriteria") or {}
        direction = ((body.get("sort") or {}).get("direction") or "DESC").upper()
        rows = [overview(r) for r in self.records.values()]
        rows = [r for r in rows if _matches(r, criteria)]
        rows.sort(
            key=lambda r: (_ymd(r["lastPublicationUpdate"]), r["ctNumber"]), reverse=direction == "DESC"
        )
        total = len(rows)
        pages = -(-total // size) if size else 0
        if page < 1:
            return _envelope([], 0, 0, 0)  # page 0: an empty register, as CTIS answers it
        start = (page - 1) * size
        visible = rows[: self.cap]  # the silent cap: past it, pages are empty
        return _envelope(visible[start : start + size], total, page, pages)

    def _handler_class(self) -> Any:
        base = super()._handler_class()
        server = self

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fault = server._take_fault(self.path)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.drop:
                    self.close_connection = True
                    return
                with server._lock:
                    server.log.append(RequestRecord(self.path, {"body": raw.decode("utf-8", "replace")}))
                if fault and fault.status:
                    headers = {"Content-Type": fault.content_type}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = fault.retry_after
                    self._send(fault.status, headers, (fault.body or f"fault {fault.status}").encode())
                    return
                if self.path != SEARCH:
                    self._send(404, {"Content-Type": "text/plain"}, b"Not Found")
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"Content-Type": "text/plain"}, b"Bad Request")
                    return
                with server._lock:
                    answer = json.dumps(server.search(body), ensure_ascii=False).encode()
                if fault and fault.truncate:
                    answer = answer[: max(1, len(answer) // 2)]
                self._send(200, {"Content-Type": "application/json"}, answer)

        return Handler


def _ymd(dmy: str | None) -> str:
    return f"{dmy[6:]}-{dmy[3:5]}-{dmy[:2]}" if dmy else ""


def _envelope(rows: list[dict[str, Any]], total: int, page: int, pages: int) -> dict[str, Any]:
    return {
        "showWarning": False,
        "pagination": {
            "totalRecords": total,
            "currentPage": page,
            "totalPages": pages,
            "nextPage": page < pages,
            "prevPage": page > 1,
        },
        "data": rows,
    }


def _matches(row: dict[str, Any], criteria: dict[str, Any]) -> bool:
    text = " ".join(str(row.get(k) or "") for k in ("ctTitle", "shortTitle", "conditions", "product")).lower()
    any_of = str(criteria.get("containAny") or "").lower().split()
    if any_of and not any(w in text for w in any_of):
        return False
    if all_of := criteria.get("containAll"):
        return all(w.lower() in text for w in str(all_of).split())
    return True

"""A local stand-in for the ClinicalTrials.gov API v2, on 127.0.0.1, for tests, the demo and benchmarks.

It speaks the parts of the API ctmonitor uses, the way the registry does: `/api/v2/studies`
with `pageSize` (default 10, capped at 1000), opaque `pageToken`s tied to the data
version, `countTotal`, `fields`, `filter.ids` (aliases included), `filter.overallStatus`,
`query.*` and `filter.advanced` in Essie syntax (see `essie.py`), 400 for unknown
parameters; `/api/v2/studies/{id}` with 301 for aliases and 404 for unknown ids;
`/api/v2/version`; and the registry's undocumented record-history endpoints
(`/api/int/studies/{id}/history`, `.../history/{version}`, `/api/int/studies/{id}?history=true`)
from recorded histories, which can be switched off to play a registry that withdrew them.
It reproduces the registry's false last `nextPageToken` (a page
exactly filled by the last records still carries a token that leads to an empty page).

Faults can be queued (429 with Retry-After, 5xx, slow answers, dropped connections,
truncated JSON, HTML error pages) to test that the client and the sync survive them.
The client under test is the real one: nothing here is imported by it.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.core import essie

STATUSES = {
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
}
STUDIES_PARAMS = {
    "format",
    "markupFormat",
    "query.cond",
    "query.term",
    "query.locn",
    "query.titles",
    "query.intr",
    "query.outc",
    "query.spons",
    "query.lead",
    "query.id",
    "query.patient",
    "filter.overallStatus",
    "filter.geo",
    "filter.ids",
    "filter.advanced",
    "filter.synonyms",
    "postFilter.overallStatus",
    "postFilter.geo",
    "postFilter.ids",
    "postFilter.advanced",
    "postFilter.synonyms",
    "aggFilters",
    "geoDecay",
    "fields",
    "sort",
    "countTotal",
    "pageSize",
    "pageToken",
}
QUERY_AREAS = {
    "query.cond": "ConditionSearch",
    "query.intr": "InterventionSearch",
    "query.term": "BasicSearch",
    "query.titles": "TitleSearch",
    "query.spons": "SponsorSearch",
    "query.lead": "LeadSponsorName",
    "query.id": "IdSearch",
    "query.locn": "LocationSearch",
}
NCT_PATTERN = re.compile(r"^[Nn][Cc][Tt]0*[1-9]\d{0,7}$")


def _g(obj: Any, *path: str) -> Any:
    for p in path:
        obj = obj.get(p) if isinstance(obj, dict) else None
    return obj


def _ls(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _strs(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values if v not in (None, "")]


def _pieces(raw: dict[str, Any]) -> dict[str, list[str]]:
    """The searchable pieces of one record, by the registry's piece names (lower-cased)."""
    ps = raw.get("protocolSection") or {}
    ident, status = ps.get("identificationModule") or {}, ps.get("statusModule") or {}
    cond, design = ps.get("conditionsModule") or {}, ps.get("designModule") or {}
    arms, spons = ps.get("armsInterventionsModule") or {}, ps.get("sponsorCollaboratorsModule") or {}
    desc, locs = ps.get("descriptionModule") or {}, _ls(_g(ps, "contactsLocationsModule", "locations"))
    derived = raw.get("derivedSection") or {}
    ivs, ags = _ls(arms.get("interventions")), _ls(arms.get("armGroups"))

    def mesh(module: str, kind: str) -> list[str]:
        return _strs(m.get("term") for m in _ls(_g(derived, module, kind)) if isinstance(m, dict))

    p = {
        "NCTId": _strs([ident.get("nctId")]),
        "NCTIdAlias": _strs(_ls(ident.get("nctIdAliases"))),
        "OrgStudyId": _strs([_g(ident, "orgStudyIdInfo", "id")]),
        "SecondaryId": _strs(s.get("id") for s in _ls(ident.get("secondaryIdInfos")) if isinstance(s, dict)),
        "Acronym": _strs([ident.get("acronym")]),
        "BriefTitle": _strs([ident.get("briefTitle")]),
        "OfficialTitle": _strs([ident.get("officialTitle")]),
        "OrgFullName": _strs([_g(ident, "organization", "fullName")]),
        "Condition": _strs(_ls(cond.get("conditions"))),
        "Keyword": _strs(_ls(cond.get("keywords"))),
        "ConditionMeshTerm": mesh("conditionBrowseModule", "meshes"),
        "ConditionAncestorTerm": mesh("conditionBrowseModule", "ancestors"),
        "InterventionMeshTerm": mesh("interventionBrowseModule", "meshes"),
        "InterventionAncestorTerm": mesh("interventionBrowseModule", "ancestors"),
        "InterventionName": _strs(i.get("name") for i in ivs if isinstance(i, dict)),
        "InterventionType": _strs(i.get("type") for i in ivs if isinstance(i, dict)),
        "InterventionOtherName": _strs(
            n for i in ivs if isinstance(i, dict) for n in _ls(i.get("otherNames"))
        ),
        "InterventionDescription": _strs(i.get("description") for i in ivs if isinstance(i, dict)),
        "ArmGroupLabel": _strs(a.get("label") for a in ags if isinstance(a, dict)),
        "ArmGroupType": _strs(a.get("type") for a in ags if isinstance(a, dict)),
        "ArmGroupDescription": _strs(a.get("description") for a in ags if isinstance(a, dict)),
        "BriefSummary": _strs([desc.get("briefSummary")]),
        "DetailedDescription": _strs([desc.get("detailedDescription")]),
        "LeadSponsorName": _strs([_g(spons, "leadSponsor", "name")]),
        "CollaboratorName": _strs(
            c.get("name") for c in _ls(spons.get("collaborators")) if isinstance(c, dict)
        ),
        "OverallStatus": _strs([status.get("overallStatus")]),
        "Phase": _strs(_ls(design.get("phases"))),
        "StudyType": _strs([design.get("studyType")]),
        "EnrollmentCount": _strs([_g(design, "enrollmentInfo", "count")]),
        "LastUpdatePostDate": _strs([_g(status, "lastUpdatePostDateStruct", "date")]),
        "StudyFirstPostDate": _strs([_g(status, "studyFirstPostDateStruct", "date")]),
        "StartDate": _strs([_g(status, "startDateStruct", "date")]),
        "LocationFacility": _strs(loc.get("facility") for loc in locs if isinstance(loc, dict)),
        "LocationCity": _strs(loc.get("city") for loc in locs if isinstance(loc, dict)),
        "LocationCountry": _strs(loc.get("country") for loc in locs if isinstance(loc, dict)),
        "LocationStatus": _strs(loc.get("status") for loc in locs if isinstance(loc, dict)),
        "LocationState": _strs(loc.get("state") for loc in locs if isinstance(loc, dict)),
        "StdAge": _strs(_ls(_g(ps, "eligibilityModule", "stdAges"))),
        "EligibilityCriteria": _strs([_g(ps, "eligibilityModule", "eligibilityCriteria")]),
        **{
            f"{kind.capitalize()}Outcome{part}": _strs(
                o.get(key) for o in _ls(_g(ps, "outcomesModule", f"{kind}Outcomes")) if isinstance(o, dict)
            )
            for kind in ("primary", "secondary", "other")
            for part, key in (("Measure", "measure"), ("Description", "description"))
        },
        "OverallOfficialName": _strs(
            o.get("name")
            for o in _ls(_g(ps, "contactsLocationsModule", "overallOfficials"))
            if isinstance(o, dict)
        ),
        "OverallOfficialAffiliation": _strs(
            o.get("affiliation")
            for o in _ls(_g(ps, "contactsLocationsModule", "overallOfficials"))
            if isinstance(o, dict)
        ),
    }
    areas = {
        "ConditionSearch": [
            "Condition",
            "BriefTitle",
            "OfficialTitle",
            "ConditionMeshTerm",
            "ConditionAncestorTerm",
            "Keyword",
            "NCTId",
        ],
        "InterventionSearch": [
            "InterventionName",
            "InterventionType",
            "ArmGroupType",
            "InterventionOtherName",
            "BriefTitle",
            "OfficialTitle",
            "ArmGroupLabel",
            "InterventionMeshTerm",
            "Keyword",
            "InterventionAncestorTerm",
            "InterventionDescription",
            "ArmGroupDescription",
        ],
        "TitleSearch": ["Acronym", "BriefTitle", "OfficialTitle"],
        "SponsorSearch": ["LeadSponsorName", "CollaboratorName", "OrgFullName"],
        "IdSearch": ["NCTId", "NCTIdAlias", "Acronym", "OrgStudyId", "SecondaryId"],
        "LocationSearch": ["LocationCity", "LocationCountry", "LocationFacility"],
    }
    out = {k.lower(): v for k, v in p.items()}
    for area, members in areas.items():
        out[area.lower()] = [t for m in members for t in p[m]]
    out["basicsearch"] = [t for k in BASIC_SEARCH if k in p for t in p[k]]
    return out


# The registry's BasicSearch area (query.term), from its "Search Areas" page: 57 fields,
# of which these are the ones a record here can carry. Not in it: DetailedDescription,
# EligibilityCriteria, the dates and counts. A term only there is found with AREA[...].
BASIC_SEARCH = [
    "NCTId",
    "Acronym",
    "BriefTitle",
    "OfficialTitle",
    "Condition",
    "InterventionName",
    "InterventionOtherName",
    "Phase",
    "StdAge",
    "PrimaryOutcomeMeasure",
    "Keyword",
    "BriefSummary",
    "ArmGroupLabel",
    "SecondaryOutcomeMeasure",
    "InterventionDescription",
    "ArmGroupDescription",
    "PrimaryOutcomeDescription",
    "LeadSponsorName",
    "OrgStudyId",
    "SecondaryId",
    "NCTIdAlias",
    "InterventionType",
    "ArmGroupType",
    "SecondaryOutcomeDescription",
    "LocationFacility",
    "LocationState",
    "LocationCountry",
    "LocationCity",
    "LocationStatus",
    "OverallOfficialAffiliation",
    "OverallOfficialName",
    "ConditionMeshTerm",
    "InterventionMeshTerm",
    "StudyType",
    "ConditionAncestorTerm",
    "InterventionAncestorTerm",
    "CollaboratorName",
    "OtherOutcomeMeasure",
    "OtherOutcomeDescription",
]


@dataclass
class Fault:
    """A scripted misbehaviour for the next matching request(s).

    status: answer with this HTTP status (and `body`, `content_type`, `retry_after`).
    delay: seconds to wait before answering (a slow server; with a client timeout, a timeout).
    drop: close the connection without an answer.
    truncate: answer 200 with the real JSON cut in half (Content-Length matching the cut).
    """

    path: str = "/api/v2/studies"
    status: int | None = None
    retry_after: str | None = None
    body: str | None = None
    content_type: str = "text/plain"
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    times: int = 1
    skip: int = 0  # let this many matching requests through first


@dataclass
class RequestRecord:
    path: str
    params: dict[str, str]


@dataclass
class Registry:
    """The data the server serves, swappable while it runs (to move the registry forward in time)."""

    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_timestamp: str = "2026-11-02T09:00:05"
    api_version: str = "2.0.5"
    generation: int = 0
    # Recorded record histories: nct -> {"index": /history answer, "versions": {n: /history/{n} answer}}.
    histories: dict[str, dict[str, Any]] = field(default_factory=dict)
    history_available: bool = True
    _pieces_cache: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def replace(self, records: Iterable[dict[str, Any]], data_timestamp: str | None = None) -> None:
        self.studies = {}
        self._pieces_cache = {}
        for r in records:
            self.studies[str(_g(r, "protocolSection", "identificationModule", "nctId")).upper()] = r
        self.generation += 1
        if data_timestamp:
            self.data_timestamp = data_timestamp

    def put(self, record: dict[str, Any]) -> None:
        nct = str(_g(record, "protocolSection", "identificationModule", "nctId")).upper()
        self.studies[nct] = record
        self._pieces_cache.pop(nct, None)
        self.generation += 1

    def remove(self, nct_id: str) -> None:
        self.studies.pop(nct_id, None)
        self._pieces_cache.pop(nct_id, None)
        self.generation += 1

    def pieces(self, nct: str) -> dict[str, list[str]]:
        if nct not in self._pieces_cache:
            self._pieces_cache[nct] = _pieces(self.studies[nct])
        return self._pieces_cache[nct]

    def canonical(self, nct_id: str) -> str | None:
        nct = nct_id.upper()
        if nct in self.studies:
            return nct
        for key in self.studies:
            if nct in self.pieces(key)["nctidalias"]:
                return key
        return None


def load_histories(path: str | Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Recorded histories from a folder of study folders (index.json, v{N}.json, current.json).

    Returns (histories for `Registry.histories`, the current records found beside them).
    """
    histories: dict[str, dict[str, Any]] = {}
    current: list[dict[str, Any]] = []
    for folder in sorted(p for p in Path(path).iterdir() if p.is_dir()):
        index = folder / "index.json"
        if not index.exists():
            continue
        versions = {
            int(f.stem[1:]): json.loads(f.read_text(encoding="utf-8"))
            for f in folder.glob("v*.json")
            if f.stem[1:].isdigit()
        }
        histories[folder.name.upper()] = {
            "index": json.loads(index.read_text(encoding="utf-8")),
            "versions": versions,
        }
        if (folder / "current.json").exists():
            current.append(json.loads((folder / "current.json").read_text(encoding="utf-8")))
    return histories, current


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Study records from a file or folder: single-study JSON, `/studies` pages, or JSON lines."""
    p = Path(path)
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    out: list[dict[str, Any]] = []
    for f in files:
        if f.suffix == ".jsonl":
            out += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif f.suffix == ".json":
            data = json.loads(f.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("studies"), list):
                out += data["studies"]
            elif isinstance(data, dict) and "protocolSection" in data:
                out.append(data)
    return out


def _project(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in fields:
        parts = path.split(".")
        src: Any = record
        for part in parts:
            src = src.get(part) if isinstance(src, dict) else None
        if src is None:
            continue
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = src
    return out


_KNOWN_ROOTS = {
    "protocolSection",
    "derivedSection",
    "resultsSection",
    "annotationSection",
    "documentSection",
    "hasResults",
}


class _ApiError(Exception):
    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or {}


class LocalApiServer:
    """Runs the stand-in API on 127.0.0.1 in a background thread.

    >>> with LocalApiServer(Registry()) as server:
    ...     server.base_url  # 'http://127.0.0.1:<port>'
    """

    def __init__(self, registry: Registry | None = None, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self.registry = registry or Registry()
        self.faults: list[Fault] = []
        self.log: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalApiServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve loop that must have started
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [r for r in self.log if r.path == path]

    # -- request handling ----------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if path.startswith(f.path):
                    if f.skip > 0:
                        f.skip -= 1
                        return None
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                    return f
        return None

    def handle(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.log.append(RequestRecord(path, params))
            reg = self.registry
            try:
                if path == "/api/v2/version":
                    body = {"apiVersion": reg.api_version, "dataTimestamp": reg.data_timestamp}
                    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
                if path == "/api/v2/studies":
                    return (
                        200,
                        {"Content-Type": "application/json"},
                        json.dumps(self._studies(params)).encode(),
                    )
                if path.startswith("/api/v2/studies/"):
                    return self._one_study(path.rsplit("/", 1)[1], params)
                if path.startswith("/api/int/studies/"):
                    return self._history(path.removeprefix("/api/int/studies/").split("/"), params)
                raise _ApiError(404, "Not found")
            except _ApiError as exc:
                return exc.status, {"Content-Type": "text/plain", **exc.headers}, exc.text.encode()

    def _studies(self, params: dict[str, str]) -> dict[str, Any]:
        reg = self.registry
        for name in params:
            if name not in STUDIES_PARAMS:
                raise _ApiError(400, f"Unknown parameter: {name}")
        size_text = params.get("pageSize", "10")
        if not size_text.isdigit():
            raise _ApiError(400, f"Invalid value in parameter `pageSize`: `{size_text}`")
        size = min(int(size_text) or 10, 1000)
        fields = [f for f in re.split(r"[,|]", params.get("fields", "")) if f]
        for f in fields:
            if f.split(".")[0] not in _KNOWN_ROOTS:
                raise _ApiError(400, f"Parameter `fields` contains invalid field name: '{f}'")

        selected = list(reg.studies)
        if ids := params.get("filter.ids"):
            wanted = {i.strip().upper() for i in re.split(r"[,|]", ids) if i.strip()}
            for i in wanted:
                if not NCT_PATTERN.match(i):
                    raise _ApiError(400, f"Invalid value in parameter `filter.ids`: `{i}`")
            selected = [n for n in selected if n in wanted or wanted & set(reg.pieces(n)["nctidalias"])]
        if statuses := params.get("filter.overallStatus"):
            wanted = {s.strip().upper() for s in re.split(r"[,|]", statuses) if s.strip()}
            if bad := wanted - STATUSES:
                raise _ApiError(400, f"Invalid value in parameter `overallStatus`: `{sorted(bad)[0]}`")
            selected = [
                n
                for n in selected
                if reg.studies[n].get("protocolSection", {}).get("statusModule", {}).get("overallStatus")
                in wanted
            ]
        searches = [(QUERY_AREAS[k], v) for k, v in params.items() if k in QUERY_AREAS]
        if adv := params.get("filter.advanced"):
            searches.append(("BasicSearch", adv))
        for area, expression in searches:
            try:
                node = essie.parse(expression)
            except essie.EssieSyntaxError as exc:
                raise _ApiError(400, f"Invalid search expression: {exc}") from None
            selected = [
                n
                for n in selected
                if essie.matches(node, lambda a, n=n: reg.pieces(n).get(a.lower(), []), area)
            ]
        if sort := params.get("sort"):
            key, _, direction = sort.partition(":")
            if key != "LastUpdatePostDate":
                raise _ApiError(400, f"Invalid value in parameter `sort`: `{sort}`")
            selected.sort(
                key=lambda n: reg.pieces(n)["lastupdatepostdate"] or [""], reverse=direction != "asc"
            )

        offset = 0
        if token := params.get("pageToken"):
            try:
                gen, off = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
                if int(gen) != reg.generation:
                    raise ValueError
                offset = int(off)
            except ValueError:
                raise _ApiError(400, "The page token is invalid or has expired") from None
        page = selected[offset : offset + size]
        body: dict[str, Any] = {
            "studies": [_project(reg.studies[n], fields) if fields else reg.studies[n] for n in page]
        }
        # Like the registry: a token whenever this page is full, even if nothing follows it.
        if page and offset + size <= len(selected) and len(page) == size:
            body["nextPageToken"] = (
                base64.urlsafe_b64encode(f"{reg.generation}:{offset + size}".encode()).decode().rstrip("=")
            )
        if params.get("countTotal", "").lower() == "true":
            body["totalCount"] = len(selected)
        return body

    def _one_study(self, nct: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if not NCT_PATTERN.match(nct):
            raise _ApiError(400, f"Invalid NCT number: {nct}")
        canonical = self.registry.canonical(nct)
        if canonical is None:
            raise _ApiError(404, f"Study not found: {nct}")
        if canonical != nct.upper():
            return 301, {"Location": f"/api/v2/studies/{canonical}", "Content-Type": "text/plain"}, b""
        fields = [f for f in re.split(r"[,|]", params.get("fields", "")) if f]
        record = self.registry.studies[canonical]
        return (
            200,
            {"Content-Type": "application/json"},
            json.dumps(_project(record, fields) if fields else record).encode(),
        )

    def _history(self, parts: list[str], params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """The UI's internal history API: the version list, one version, or the record with its history.

        Studies the registry holds but no history was recorded for answer an empty list,
        as the registry does for records whose history it does not expose.
        """
        reg = self.registry
        if not reg.history_available:
            raise _ApiError(404, "Not Found")
        nct = parts[0].upper()
        if not NCT_PATTERN.match(nct) or len(parts) > 3 or (len(parts) >= 2 and parts[1] != "history"):
            raise _ApiError(404, "Not Found")
        canonical = reg.canonical(nct)
        if canonical is None or canonical != nct:
            raise _ApiError(404, f"Study not found: {parts[0]}")
        recorded = reg.histories.get(canonical, {"index": {"changes": []}, "versions": {}})
        if len(parts) == 1:
            if params.get("history") != "true":
                raise _ApiError(400, "history=true is required on this path")
            body: Any = {"study": reg.studies[canonical], "topics": [], "history": recorded["index"]}
        elif len(parts) == 2:
            body = recorded["index"]
        else:
            if not parts[2].isdigit() or int(parts[2]) not in recorded["versions"]:
                raise _ApiError(404, f"Version not found: {parts[2]}")
            body = recorded["versions"][int(parts[2])]
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                fault = server._take_fault(split.path)
                if fault and fault.delay:
                    time.sleep(fault.delay)
                if fault and fault.drop:
                    self.close_connection = True
                    return
                if fault and fault.status:
                    headers = {"Content-Type": fault.content_type}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = fault.retry_after
                    with server._lock:
                        server.log.append(RequestRecord(split.path, params))
                    self._send(fault.status, headers, (fault.body or f"fault {fault.status}").encode())
                    return
                status, headers, body = server.handle(split.path, params)
                if fault and fault.truncate:
                    body = body[: max(1, len(body) // 2)]
                self._send(status, headers, body)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

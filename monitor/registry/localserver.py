"""A local stand-in for the ClinicalTrials.gov API v2, on 127.0.0.1, for tests, the demo and benchmarks.

It speaks the parts of the API ctmonitor uses, the way the registry does: `/api/v2/studies`
with `pageSize` (default 10, capped at 1000), opaque `pageToken`s tied to the data
version, `countTotal`, `fields`, `filter.ids` (aliases included), `filter.overallStatus`,
`query.*` and `filter.advanced` in Essie syntax (see `monitor.core.essie`), 400 for unknown
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
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.core import essie
from monitor.registry.localdata import (
    _KNOWN_ROOTS,
    NCT_PATTERN,
    QUERY_AREAS,
    STATUSES,
    STUDIES_PARAMS,
    Registry,
    _project,
)


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


class _ApiError(Exception):
    def __init__(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or {}


class _Server(ThreadingHTTPServer):
    """A client that hangs up before its answer is written (it timed out, as the tests of
    faults make it do) is no error of the server's: not printed as a traceback, which
    would land in whatever the process prints next."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


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
        self._httpd = _Server((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalApiServer:
        # a short poll interval: stop() waits for the serve loop to look (0.5 s by default)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="local-api", daemon=True
        )
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
            disable_nagle_algorithm = True  # headers and body leave at once, not 40 ms apart

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

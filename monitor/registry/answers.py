"""What the registry answers, read: its errors as exceptions (each says what went wrong in
one line), a page of studies, the data version, a record's version list; and the parsing
of bodies that claim to be JSON (truncated, malformed or HTML error pages included).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import orjson

from monitor.core.domain import NCT_RE
from monitor.core.normalize import RecordError, nct_id_of
from monitor.gc_relax import gc_relaxed

_TAG = re.compile(r"<[^>]+>")
_SURROGATE = re.compile("[\ud800-\udfff]")


class ApiError(Exception):
    """The registry answered, or failed to, in a way that ends this request."""


class ApiHTTPError(ApiError):
    def __init__(self, status: int, url: str, detail: str) -> None:
        self.status, self.url, self.detail = status, url, detail
        super().__init__(f"HTTP {status} from {url}: {detail}" if detail else f"HTTP {status} from {url}")


class ApiForbidden(ApiHTTPError):
    """403 from the registry's edge: seen when a Python client sends a custom User-Agent."""

    def __str__(self) -> str:
        return (
            f"HTTP 403 (forbidden) from {self.url}: the registry's edge has rejected Python clients "
            "that send a custom User-Agent; leave api.user_agent empty (httpx's default) or try again later"
        )


class WebPageAnswer(ApiForbidden):
    """200 with an HTML page where the registry's web site should answer data: a refusal."""

    def __str__(self) -> str:
        return f"{self.url} answered a web page, not data ({self.detail or 'no text'}): refused"


class ApiNotFound(ApiHTTPError):
    pass


class MalformedResponse(ApiError):
    """A 200 whose body is not the JSON shape the API documents."""


class RetriesExhausted(ApiError):
    pass


class HistoryUnavailable(ApiError):
    """The registry no longer offers a study's record history where, and as, ctmonitor knows it."""


class _Retryable(Exception):
    """Internal: a failure worth another try; `retry_after` in seconds when the server said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Record:
    """One study record as the registry sent it: its bytes exactly (hashed and stored as
    they are, never re-serialized), its NCT id, and the parsed record on first use, so a
    record whose bytes did not change since the last poll is never parsed at all."""

    __slots__ = ("_data", "nct_id", "raw")

    def __init__(self, raw: bytes, nct_id: str, data: dict[str, Any] | None = None) -> None:
        self.raw, self.nct_id, self._data = raw, nct_id, data

    @classmethod
    def of(cls, data: dict[str, Any]) -> Record:
        """A record that reached us parsed (one study by id, a history version): its bytes
        are its compact JSON in the registry's key order."""
        nct = nct_id_of(data)
        return cls(orjson.dumps(data), nct, data)

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = parse_json(self.raw)
        return self._data


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Record]
    total_count: int | None
    next_token: str | None
    number: int

    @property
    def studies(self) -> list[dict[str, Any]]:
        """The records parsed (for callers that read every field of every record)."""
        return [r.data for r in self.records]


# What a /studies page is, declared once: msgspec checks the shape while it splits the page
# into each study's own bytes (msgspec.Raw: not parsed), and reads each study's NCT id.
class _PageShape(msgspec.Struct):
    studies: list[msgspec.Raw]
    totalCount: int | None = None
    nextPageToken: str | None = None


class _Identification(msgspec.Struct):
    nctId: str


class _Protocol(msgspec.Struct):
    identificationModule: _Identification


class _Head(msgspec.Struct):
    protocolSection: _Protocol


_PAGE = msgspec.json.Decoder(_PageShape)
_HEAD = msgspec.json.Decoder(_Head)


def decode_page(body: bytes, number: int) -> Page:
    """A /studies page: each study kept as the bytes the registry sent.

    Malformed or truncated JSON raises ValueError (the client retries it); a page of the
    wrong shape (no `studies` list, a record without an NCT id, a totalCount that is not
    a number) raises MalformedResponse naming what is wrong. msgspec refuses a lone UTF-16
    surrogate escape, which the registry has sent: such a page is read by parse_json
    instead (which replaces it), and its records' bytes are then their compact JSON.
    """
    where = f"page {number} of /studies"
    with gc_relaxed():
        try:
            shape = _PAGE.decode(body)
        except msgspec.ValidationError as exc:
            raise MalformedResponse(f"{where}: {exc}") from None
        except msgspec.DecodeError:
            return _decode_page_slowly(body, number)
        records = []
        for raw in shape.studies:
            try:
                head = _HEAD.decode(raw)
            except msgspec.ValidationError as exc:
                raise MalformedResponse(f"{where}: a study record without a valid nctId ({exc})") from None
            nct = head.protocolSection.identificationModule.nctId.strip().upper()
            if not NCT_RE.match(nct):
                raise MalformedResponse(f"{where}: study record without a valid nctId: {nct[:40]!r}")
            records.append(Record(bytes(raw), nct))
    token = shape.nextPageToken
    return Page(records, shape.totalCount, str(token) if token else None, number)


def _decode_page_slowly(body: bytes, number: int) -> Page:
    where = f"page {number} of /studies"
    data = parse_json(body)  # ValueError when truly malformed
    if not isinstance(data, dict) or not isinstance(data.get("studies"), list):
        raise MalformedResponse(f"{where} has no 'studies' list")
    records = []
    for item in data["studies"]:
        try:
            records.append(Record.of(item))
        except RecordError as exc:
            raise MalformedResponse(f"{where}: {exc}") from None
    total = data.get("totalCount")
    if total is not None and not isinstance(total, int):
        raise MalformedResponse(f"{where}: totalCount is not a number")
    token = data.get("nextPageToken")
    return Page(records, total, str(token) if token else None, number)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    api_version: str | None
    data_timestamp: str | None


@dataclass(frozen=True, slots=True)
class RegistryVersion:
    """One entry of a study's record history: the registry's version number (from 0), its date
    (the day it was submitted), the overall status it carried and the modules it changed."""

    version: int
    date: str | None
    status: str | None
    module_labels: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "date": self.date,
            "status": self.status,
            "moduleLabels": list(self.module_labels),
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> RegistryVersion:
        return cls(
            version=int(item["version"]),
            date=str(item["date"])[:10] if item.get("date") else None,
            status=str(item["status"]).upper() if item.get("status") else None,
            module_labels=tuple(str(m) for m in item.get("moduleLabels") or () if m),
        )


def parse_history_index(data: Any, where: str) -> list[RegistryVersion]:
    """The `changes` list of a history answer, checked: versions numbered 0..n-1 in order.

    Tolerant of what the shape has gained over time (studyType, lastUpdateSubmitQcDate,
    reviewNotPassed...): only version, date, status and moduleLabels are read.
    """
    changes = data.get("changes") if isinstance(data, dict) else None
    if not isinstance(changes, list):
        raise HistoryUnavailable(
            f"{where} answered without a 'changes' list: the endpoint's shape has changed"
        )
    out: list[RegistryVersion] = []
    for n, item in enumerate(changes):
        if not isinstance(item, dict) or not isinstance(item.get("version"), int):
            raise MalformedResponse(f"{where}: entry {n} has no version number")
        out.append(RegistryVersion.from_json(item))
    if [v.version for v in out] != list(range(len(out))):
        raise MalformedResponse(f"{where}: versions are not numbered 0..{len(out) - 1}")
    return out


def parse_json(content: bytes) -> Any:
    """A response body as Python objects.

    A page holds a thousand records: orjson parses it in about half the standard
    library's time, with the garbage collector relaxed (see monitor.gc_relax). orjson
    refuses what the standard library accepts: a lone surrogate escape (a record with
    one would otherwise fail every poll) is read by the standard parser and replaced
    with U+FFFD, so that the record can be stored as UTF-8.
    """
    with gc_relaxed():
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            data = json.loads(content)  # truly malformed: ValueError, handled by the caller
        return _without_surrogates(data)


def _without_surrogates(value: Any) -> Any:
    """What orjson would have made of the standard parser's result, minus the surrogates."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if type(value) is int and not -(2**63) <= value < 2**64:
        return float(value)  # as orjson reads it; it cannot write such an int back
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _error_detail(response: httpx.Response) -> str:
    """The first readable line of an error body, whether text/plain, JSON or an HTML page."""
    ctype = response.headers.get("content-type", "")
    try:
        text = response.text
    except Exception:  # an undecodable body says nothing useful
        return ""
    if "html" in ctype or text.lstrip().startswith("<"):
        text = _TAG.sub(" ", text)
    text = " ".join(text.split())
    return text[:200]

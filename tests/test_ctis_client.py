"""The CTIS client over loopback HTTP against a stand-in that answers as CTIS does: searches
by POST from page 1, its silent 10,000 cap (read from both ends, and never taken for the
whole), records by number, the faults of every registry."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.core import ctis
from monitor.ctis_config import CtisSettings
from monitor.registry.ctis import CtisClient, IncompleteSearch, TrialUnavailable
from monitor.registry.ctisstand import CtisStandIn, overview
from monitor.registry.localserver import Fault
from tests.conftest import DATA

SAMPLES = DATA / "registries"


def records() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("ctis-retrieve-*.json"))]


def many(n: int) -> list[dict[str, Any]]:
    """n trials shaped like the first sample, numbered apart, published a day apart."""
    base = records()[0]
    out = []
    for i in range(n):
        r = copy.deepcopy(base)
        r["ctNumber"] = f"2099-5{i:05d}-11-00"
        r["publishDate"] = f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}T03:00:00.123456789"
        out.append(r)
    return out


def settings(base: str, **kw: Any) -> CtisSettings:
    values = {
        "base_url": base,
        "min_interval_seconds": 0,
        "backoff_base_seconds": 0,
        "backoff_max_seconds": 0,
    }
    return CtisSettings(**(values | kw))


@pytest.fixture
def stand() -> Iterator[CtisStandIn]:
    with CtisStandIn(records()) as server:
        yield server


def bodies(server: CtisStandIn) -> list[dict[str, Any]]:
    return [json.loads(r.params["body"]) for r in server.requests_to("/ctis-public-api/search")]


def test_a_search_is_posted_from_page_one_with_its_sort(stand: CtisStandIn) -> None:
    with CtisClient(settings(stand.base_url, page_size=1)) as client:
        pages = list(client.search({"containAll": "lupus"}))
    numbers = [t.number for p in pages for t in p.trials]
    lupus = [r["ctNumber"] for r in records() if "lupus" in json.dumps(overview(r)).lower()]
    assert len(lupus) >= 2 and sorted(numbers) == sorted(lupus)
    sent = bodies(stand)
    assert [b["pagination"]["page"] for b in sent] == list(range(1, len(lupus) + 1))  # never page 0
    assert all(b["pagination"]["size"] == 1 for b in sent)
    assert sent[0]["sort"] == {"property": "lastPublicationUpdate", "direction": "DESC"}
    # overview dates are DD/MM/YYYY; read as ISO
    first = pages[0].trials[0]
    assert first.last_publication is not None and first.last_publication[4] == "-"


def test_a_search_over_the_cap_is_read_from_both_ends(stand: CtisStandIn) -> None:
    stand.records = {r["ctNumber"]: r for r in many(15)}
    stand.cap = 10
    with CtisClient(settings(stand.base_url, page_size=5, result_cap=10)) as client:
        pages = list(client.search({}))
    numbers = [t.number for p in pages for t in p.trials]
    assert len(set(numbers)) == 15  # the newest 10, then the oldest 5
    directions = [(b["sort"]["direction"], b["pagination"]["page"]) for b in bodies(stand)]
    assert directions == [("DESC", 1), ("DESC", 2), ("ASC", 1)]


def test_a_search_beyond_twice_the_cap_fails_loudly(stand: CtisStandIn) -> None:
    stand.records = {r["ctNumber"]: r for r in many(25)}
    stand.cap = 10
    client = CtisClient(settings(stand.base_url, page_size=5, result_cap=10))
    with client, pytest.raises(IncompleteSearch, match="narrow the search"):
        list(client.search({}))


def test_a_truncated_result_is_never_taken_for_the_whole(stand: CtisStandIn) -> None:
    stand.records = {r["ctNumber"]: r for r in many(12)}
    stand.cap = 8  # CTIS cuts at 8, ctmonitor believes the cap is 10
    client = CtisClient(settings(stand.base_url, page_size=4, result_cap=10))
    with client, pytest.raises(IncompleteSearch, match="counted 12"):
        list(client.search({}))


def test_a_record_is_read_whole_by_its_number(stand: CtisStandIn) -> None:
    with CtisClient(settings(stand.base_url)) as client:
        rec = client.retrieve("2099-500404-45-00")
        assert ctis.from_bytes(rec.raw).nct_id == rec.nct_id == "2099-500404-45-00"
        stand.unavailable.add("2099-500101-12-00")
        with pytest.raises(TrialUnavailable, match="2099-500101-12-00"):
            client.retrieve("2099-500101-12-00")
        with pytest.raises(ValueError, match="not a CTIS trial number"):
            client.retrieve("2019-001588-63")


@pytest.mark.parametrize(
    "fault",
    [
        Fault(path="/ctis-public-api/search", status=429, retry_after="0"),
        Fault(path="/ctis-public-api/search", status=503),
        Fault(path="/ctis-public-api/search", truncate=True),
        Fault(path="/ctis-public-api/search", drop=True),
        Fault(path="/ctis-public-api/retrieve/", status=502),
        Fault(path="/ctis-public-api/retrieve/", truncate=True),
        Fault(path="/ctis-public-api/retrieve/", drop=True),
    ],
    ids=[
        "search-429",
        "search-503",
        "search-truncated",
        "search-reset",
        "record-502",
        "record-truncated",
        "record-reset",
    ],
)
def test_faults_are_retried(stand: CtisStandIn, fault: Fault) -> None:
    stand.add_fault(fault)
    with CtisClient(settings(stand.base_url), sleep=lambda _: None) as client:
        assert sum(len(p.trials) for p in client.search({"containAll": "systemic"})) >= 1
        assert client.retrieve("2099-500202-23-00").nct_id == "2099-500202-23-00"

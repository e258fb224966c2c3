"""The API client against mocked HTTP (respx): paging, the retry rule and its limits. Nothing sleeps."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from monitor.config import ApiSettings
from monitor.registry.client import (
    MAX_EMPTY_PAGES,
    ApiForbidden,
    ApiHTTPError,
    ApiNotFound,
    CtGovClient,
    MalformedResponse,
    RetriesExhausted,
    parse_json,
    parse_retry_after,
)
from tests.conftest import load_json, record

BASE = "https://registry.test"
STUDIES = f"{BASE}/api/v2/studies"


class Sleeps:
    """Records the waits the client asked for instead of waiting; advances a fake clock."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def client(sleeps: Sleeps, **overrides: Any) -> CtGovClient:
    values: dict[str, Any] = {"base_url": BASE, "min_interval_seconds": 0, "page_size": 2}
    values.update(overrides)
    return CtGovClient(ApiSettings(**values), sleep=sleeps.sleep, clock=sleeps.clock)


def page(studies: list[dict[str, Any]], token: str | None = None, total: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"studies": studies}
    if token:
        body["nextPageToken"] = token
    if total is not None:
        body["totalCount"] = total
    return httpx.Response(200, json=body)


def ids(pages: list[Any]) -> list[str]:
    return [s["protocolSection"]["identificationModule"]["nctId"] for p in pages for s in p.studies]


@respx.mock
def test_pages_follow_the_token_and_repeat_the_first_pages_parameters() -> None:
    a, b, c = record("NCT00973089"), record("NCT03475563"), record("NCT06171568")
    route = respx.get(STUDIES).mock(side_effect=[page([a, b], "tok1", total=3), page([c])])
    sleeps = Sleeps()
    with client(sleeps) as api:
        pages = list(api.iter_pages({"query.cond": "lupus"}))
    assert ids(pages) == ["NCT00973089", "NCT03475563", "NCT06171568"]
    assert pages[0].total_count == 3
    first, second = (call.request.url.params for call in route.calls)
    assert first["countTotal"] == "true" and "pageToken" not in first and first["pageSize"] == "2"
    assert second["pageToken"] == "tok1" and "countTotal" not in second
    assert first["query.cond"] == second["query.cond"] == "lupus"
    assert first["fields"] == second["fields"]
    assert api.requests == 2


@respx.mock
def test_a_token_after_the_last_full_page_leads_to_an_empty_page_that_ends_paging() -> None:
    a, b = record("NCT00973089"), record("NCT03475563")
    route = respx.get(STUDIES).mock(side_effect=[page([a, b], "false-token", total=2), page([])])
    with client(Sleeps()) as api:
        pages = list(api.iter_pages({}))
    assert ids(pages) == ["NCT00973089", "NCT03475563"]
    assert route.call_count == 2


@respx.mock
def test_an_empty_page_with_a_token_before_the_total_is_reached_is_followed() -> None:
    """The registry has answered an empty continuation page mid-search: not the end."""
    a, b, c = record("NCT00973089"), record("NCT03475563"), record("NCT06171568")
    route = respx.get(STUDIES).mock(
        side_effect=[page([a, b], "t1", total=3), page([], "t2"), page([], "t3"), page([c])]
    )
    with client(Sleeps()) as api:
        pages = list(api.iter_pages({}))
    assert ids(pages) == ["NCT00973089", "NCT03475563", "NCT06171568"]
    assert route.call_count == 4
    tokens = [call.request.url.params.get("pageToken") for call in route.calls]
    assert tokens == [None, "t1", "t2", "t3"]


@respx.mock
def test_empty_pages_with_tokens_are_followed_only_so_far() -> None:
    a, b = record("NCT00973089"), record("NCT03475563")
    endless = [page([], f"t{n}") for n in range(2, 20)]
    route = respx.get(STUDIES).mock(side_effect=[page([a, b], "t1", total=5), *endless])
    with client(Sleeps()) as api:
        pages = list(api.iter_pages({}))
    assert ids(pages) == ["NCT00973089", "NCT03475563"]  # the sync then reports 2 of 5 as incomplete
    assert route.call_count == 1 + MAX_EMPTY_PAGES + 1


@respx.mock
def test_real_recorded_page_parses() -> None:
    body = load_json("registry/page_studies_2025-06-17T11-16-37.cyanheads.json")
    respx.get(STUDIES).mock(side_effect=[httpx.Response(200, json=body), page([])])
    with client(Sleeps()) as api:
        pages = list(api.iter_pages({}))
    assert ids(pages) == ["NCT00184067", "NCT03934567"]
    assert pages[0].next_token == "NF0g5JCG"


@respx.mock
def test_429_is_retried_after_the_servers_retry_after() -> None:
    route = respx.get(f"{BASE}/api/v2/version").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
            httpx.Response(200, json={"apiVersion": "2.0.5", "dataTimestamp": "2026-11-02T09:00:05"}),
        ]
    )
    sleeps = Sleeps()
    with client(sleeps) as api:
        info = api.version()
    assert info.data_timestamp == "2026-11-02T09:00:05"
    assert route.call_count == 2
    assert sleeps.calls == [7.0]


@respx.mock
def test_retry_after_is_capped() -> None:
    respx.get(f"{BASE}/api/v2/version").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "86400"}),
            httpx.Response(200, json={"apiVersion": "2.0.5"}),
        ]
    )
    sleeps = Sleeps()
    with client(sleeps, max_retry_after_seconds=30) as api:
        api.version()
    assert sleeps.calls == [30.0]


@respx.mock
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried_with_growing_backoff_then_succeeds(status: int) -> None:
    route = respx.get(f"{BASE}/api/v2/version").mock(
        side_effect=[
            httpx.Response(status, text="oops"),
            httpx.Response(status, text="oops"),
            httpx.Response(200, json={"apiVersion": "2.0.5"}),
        ]
    )
    sleeps = Sleeps()
    with client(sleeps, backoff_base_seconds=1, backoff_max_seconds=60) as api:
        api.version()
    assert route.call_count == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 1 and 0 <= sleeps.calls[1] <= 2  # full jitter under 1s, then 2s


@respx.mock
def test_transport_errors_and_timeouts_are_retried() -> None:
    route = respx.get(f"{BASE}/api/v2/version").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json={"apiVersion": "2.0.5"}),
        ]
    )
    with client(Sleeps()) as api:
        api.version()
    assert route.call_count == 3


@respx.mock
def test_attempts_are_bounded() -> None:
    route = respx.get(f"{BASE}/api/v2/version").mock(return_value=httpx.Response(503, text="down"))
    with client(Sleeps(), max_attempts=4) as api, pytest.raises(RetriesExhausted, match="4 attempt"):
        api.version()
    assert route.call_count == 4


@respx.mock
def test_total_time_budget_stops_retrying_early() -> None:
    route = respx.get(f"{BASE}/api/v2/version").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "50"})
    )
    sleeps = Sleeps()
    with client(sleeps, max_attempts=20, retry_budget_seconds=120) as api, pytest.raises(RetriesExhausted):
        api.version()
    assert route.call_count == 3  # waits of 50 + 50; a third wait would pass 120 s
    assert sum(sleeps.calls) <= 120


@respx.mock
@pytest.mark.parametrize(
    "status,exc", [(400, ApiHTTPError), (404, ApiNotFound), (403, ApiForbidden), (410, ApiHTTPError)]
)
def test_other_4xx_fail_at_once(status: int, exc: type) -> None:
    route = respx.get(STUDIES).mock(
        return_value=httpx.Response(
            status,
            text="Invalid value in parameter `overallStatus`: `FOO`",
            headers={"content-type": "text/plain"},
        )
    )
    with client(Sleeps()) as api, pytest.raises(exc):
        list(api.iter_pages({"filter.overallStatus": "FOO"}))
    assert route.call_count == 1


@respx.mock
def test_400_message_carries_the_registrys_text() -> None:
    respx.get(STUDIES).mock(
        return_value=httpx.Response(
            400,
            text="Invalid value in parameter `overallStatus`: `FOO`",
            headers={"content-type": "text/plain"},
        )
    )
    with client(Sleeps()) as api, pytest.raises(ApiHTTPError) as info:
        list(api.iter_pages({}))
    assert "Invalid value in parameter `overallStatus`: `FOO`" in str(info.value)


@respx.mock
def test_403_says_what_to_do() -> None:
    respx.get(f"{BASE}/api/v2/version").mock(return_value=httpx.Response(403, text="<html>denied</html>"))
    with client(Sleeps()) as api, pytest.raises(ApiForbidden) as info:
        api.version()
    assert "User-Agent" in str(info.value) and "api.user_agent" in str(info.value)


@respx.mock
def test_html_error_page_is_reduced_to_text() -> None:
    respx.get(STUDIES).mock(
        return_value=httpx.Response(
            400,
            text="<html><body><h1>Bad request</h1><p>nope</p></body></html>",
            headers={"content-type": "text/html"},
        )
    )
    with client(Sleeps()) as api, pytest.raises(ApiHTTPError) as info:
        list(api.iter_pages({}))
    assert "Bad request nope" in str(info.value) and "<h1>" not in str(info.value)


@respx.mock
def test_malformed_json_is_retried_then_reported() -> None:
    good = json.dumps({"studies": [record("NCT00973089")], "totalCount": 1})
    route = respx.get(STUDIES).mock(
        side_effect=[
            httpx.Response(
                200, content=good[: len(good) // 2].encode(), headers={"content-type": "application/json"}
            ),
            httpx.Response(200, content=good.encode(), headers={"content-type": "application/json"}),
        ]
    )
    with client(Sleeps()) as api:
        assert ids(list(api.iter_pages({}))) == ["NCT00973089"]
    assert route.call_count == 2


@respx.mock
def test_html_with_status_200_is_not_parsed_as_json() -> None:
    route = respx.get(STUDIES).mock(
        return_value=httpx.Response(
            200, text="<html>maintenance</html>", headers={"content-type": "text/html"}
        )
    )
    with client(Sleeps(), max_attempts=2) as api, pytest.raises(RetriesExhausted, match="expected JSON"):
        list(api.iter_pages({}))
    assert route.call_count == 2


@respx.mock
def test_page_without_a_studies_list_is_malformed() -> None:
    respx.get(STUDIES).mock(return_value=httpx.Response(200, json={"items": []}))
    with client(Sleeps()) as api, pytest.raises(MalformedResponse):
        list(api.iter_pages({}))


@respx.mock
def test_study_without_an_id_makes_the_page_malformed() -> None:
    respx.get(STUDIES).mock(return_value=httpx.Response(200, json={"studies": [{"protocolSection": {}}]}))
    with client(Sleeps()) as api, pytest.raises(MalformedResponse, match="nctId"):
        list(api.iter_pages({}))


@respx.mock
def test_alias_redirect_is_followed_and_the_new_id_returned() -> None:
    renumbered = record("NCT06171568")
    respx.get(f"{STUDIES}/NCT01111111").mock(
        return_value=httpx.Response(301, headers={"Location": f"{STUDIES}/NCT06171568"})
    )
    respx.get(f"{STUDIES}/NCT06171568").mock(return_value=httpx.Response(200, json=renumbered))
    with client(Sleeps()) as api:
        raw = api.get_study("NCT01111111")
    assert raw["protocolSection"]["identificationModule"]["nctId"] == "NCT06171568"


@respx.mock
def test_default_user_agent_is_httpx_and_a_configured_one_is_sent() -> None:
    route = respx.get(f"{BASE}/api/v2/version").mock(
        return_value=httpx.Response(200, json={"apiVersion": "x"})
    )
    with client(Sleeps()) as api:
        api.version()
    assert route.calls[-1].request.headers["user-agent"].startswith("python-httpx/")
    with client(Sleeps(), user_agent="ctmonitor-test python-httpx") as api:
        api.version()
    assert route.calls[-1].request.headers["user-agent"] == "ctmonitor-test python-httpx"


@respx.mock
def test_rate_limit_spaces_requests() -> None:
    respx.get(f"{BASE}/api/v2/version").mock(return_value=httpx.Response(200, json={"apiVersion": "x"}))
    sleeps = Sleeps()
    with client(sleeps, min_interval_seconds=1.0) as api:
        api.version()
        api.version()
        sleeps.now += 0.25
        api.version()
    assert sleeps.calls == [1.0, 0.75]


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


# -- the record history adapter ------------------------------------------------------------

HISTORY = f"{BASE}/api/int/studies/NCT03690141/history"


@respx.mock
def test_history_index_reads_the_real_2023_shape() -> None:
    """The saved excerpt has no studyType or lastUpdateSubmitQcDate: read tolerantly."""
    data = load_json("history_index_NCT03690141_EXCERPT_history-true.json")["history"]
    respx.get(HISTORY).mock(return_value=httpx.Response(200, json=data))
    with client(Sleeps()) as c:
        versions = c.history_index("NCT03690141")
    assert [v.version for v in versions] == list(range(10))
    assert (versions[0].date, versions[0].status) == ("2018-09-27", "NOT_YET_RECRUITING")
    assert versions[9].status == "COMPLETED" and versions[7].module_labels[0] == "Study Status"


@respx.mock
def test_history_index_falls_back_to_the_study_answer_with_history() -> None:
    data = load_json("history_index_NCT03690141_EXCERPT_history-true.json")
    respx.get(HISTORY).mock(return_value=httpx.Response(404, text="Not Found"))
    fallback = respx.get(f"{BASE}/api/int/studies/NCT03690141", params={"history": "true"}).mock(
        return_value=httpx.Response(200, json=data)
    )
    with client(Sleeps()) as c:
        assert len(c.history_index("NCT03690141")) == 10
    assert fallback.call_count == 1


@respx.mock
def test_history_index_refused_everywhere_is_history_unavailable() -> None:
    from monitor.registry.client import HistoryUnavailable

    respx.get(HISTORY).mock(return_value=httpx.Response(404, text="Not Found"))
    respx.get(f"{BASE}/api/int/studies/NCT03690141").mock(return_value=httpx.Response(403, text="Forbidden"))
    with client(Sleeps()) as c, pytest.raises(HistoryUnavailable, match="refused the record history"):
        c.history_index("NCT03690141")


@pytest.mark.parametrize(
    "body,error",
    [
        ({"history": []}, "shape has changed"),
        ({"changes": [{"version": 0}, {"version": 2}]}, "not numbered"),
        ({"changes": [{"date": "2020-01-01"}]}, "no version number"),
    ],
)
@respx.mock
def test_history_index_shapes_it_cannot_trust(body: Any, error: str) -> None:
    respx.get(HISTORY).mock(return_value=httpx.Response(200, json=body))
    with client(Sleeps()) as c, pytest.raises(Exception, match=error):
        c.history_index("NCT03690141")


@respx.mock
def test_history_version_returns_the_record_and_checks_it() -> None:
    v0 = load_json("history_NCT04280705_v0.trajnovd.json")
    url = f"{BASE}/api/int/studies/NCT04280705/history/0"
    route = respx.get(url).mock(
        side_effect=[httpx.Response(200, text='{"studyVersion": 0, "stu'), httpx.Response(200, json=v0)]
    )
    with client(Sleeps()) as c:
        study = c.history_version("NCT04280705", 0)
        assert study["protocolSection"]["identificationModule"]["nctId"] == "NCT04280705"
        assert route.call_count == 2  # a truncated body is retried like any other
        respx.get(f"{BASE}/api/int/studies/NCT04280705/history/1").mock(
            return_value=httpx.Response(200, json=v0)
        )
        with pytest.raises(MalformedResponse, match="answered version 0"):
            c.history_version("NCT04280705", 1)


@respx.mock
def test_a_lone_surrogate_escape_in_a_record_is_replaced_not_fatal() -> None:
    # The standard JSON parser accepts "\ud800"; such a string cannot be stored as UTF-8,
    # and a strict parser would refuse the whole page on every poll.
    body = json.dumps({"studies": [record("NCT00973089")], "totalCount": 1})
    title = json.dumps(record("NCT00973089")["protocolSection"]["identificationModule"]["briefTitle"])
    body = body.replace(title, title[:-1] + '\\ud800 \\ud83d\\ude00"', 1)
    body = body.replace('"totalCount": 1', '"totalCount": 1, "huge": 123456789012345678901234567890', 1)
    respx.get(STUDIES).mock(
        return_value=httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"})
    )
    with client(Sleeps()) as api:
        (first,) = list(api.iter_pages({}))
    got = first.studies[0]["protocolSection"]["identificationModule"]["briefTitle"]
    assert got.endswith("\ufffd \U0001f600")  # the lone half replaced, the valid pair kept
    assert parse_json(body.encode())["huge"] == 1.2345678901234568e29  # as orjson reads it
    assert parse_json(json.dumps({"a": [1.5, None, "é"]}).encode()) == {"a": [1.5, None, "é"]}
    with pytest.raises(ValueError):
        parse_json(b'{"studies": [')


@respx.mock
def test_each_record_is_kept_as_the_bytes_the_registry_sent() -> None:
    """The page is split, not re-serialized: each record's bytes are exactly its slice of
    the body (spacing, key order and escapes as sent), and it is parsed only when asked."""
    one, two = record("NCT00973089"), record("NCT03475563")
    body = '{"studies": [' + json.dumps(one, indent=1) + ",\n " + json.dumps(two) + '], "totalCount": 2}'
    respx.get(STUDIES).mock(
        return_value=httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"})
    )
    with client(Sleeps()) as api:
        (first,) = list(api.iter_pages({}))
    assert [r.nct_id for r in first.records] == ["NCT00973089", "NCT03475563"]
    assert first.records[0].raw == json.dumps(one, indent=1).encode()
    assert first.records[1].raw == json.dumps(two).encode()
    assert first.records[1].data == two and first.total_count == 2


@respx.mock
def test_a_page_of_the_wrong_shape_names_what_is_wrong() -> None:
    respx.get(STUDIES).mock(
        return_value=httpx.Response(200, json={"studies": [record("NCT00973089")], "totalCount": "many"})
    )
    with client(Sleeps()) as api, pytest.raises(MalformedResponse, match="totalCount"):
        list(api.iter_pages({}))

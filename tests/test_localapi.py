"""The local stand-in speaks the registry's API: paging, filters, ids, aliases, errors."""

from __future__ import annotations

import httpx
import pytest

from monitor.registry.localserver import Fault, LocalApiServer, Registry
from tests.conftest import registry_records

N = len(registry_records())


def get(api: LocalApiServer, path: str, **params: str) -> httpx.Response:
    return httpx.get(api.base_url + path, params=params, timeout=5)


def test_version(api: LocalApiServer) -> None:
    assert get(api, "/api/v2/version").json() == {
        "apiVersion": "2.0.5",
        "dataTimestamp": "2026-11-02T09:00:05",
    }


def test_default_page_size_is_10_and_totals_come_on_request(api: LocalApiServer) -> None:
    body = get(api, "/api/v2/studies", countTotal="true").json()
    assert len(body["studies"]) == 10 and body["totalCount"] == N and body["nextPageToken"]
    assert "totalCount" not in get(api, "/api/v2/studies").json()


def test_paging_walks_every_study_once(api: LocalApiServer) -> None:
    seen, token = [], None
    while True:
        params = {"pageSize": "4"} | ({"pageToken": token} if token else {})
        body = get(api, "/api/v2/studies", **params).json()
        seen += [s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]]
        token = body.get("nextPageToken")
        if not token or not body["studies"]:
            break
    assert len(seen) == len(set(seen)) == N


def test_exactly_full_last_page_still_carries_a_token_to_an_empty_page(api: LocalApiServer) -> None:
    body = get(api, "/api/v2/studies", pageSize=str(N)).json()
    assert len(body["studies"]) == N and body["nextPageToken"]
    tail = get(api, "/api/v2/studies", pageSize=str(N), pageToken=body["nextPageToken"]).json()
    assert tail == {"studies": []}


def test_page_size_is_capped_at_1000(registry: Registry) -> None:
    template = registry_records()[0]
    import copy

    records = []
    for i in range(1005):
        r = copy.deepcopy(template)
        r["protocolSection"]["identificationModule"]["nctId"] = f"NCT{10000000 + i}"
        records.append(r)
    registry.replace(records)
    with LocalApiServer(registry) as api:
        assert len(get(api, "/api/v2/studies", pageSize="5000").json()["studies"]) == 1000


def test_filter_ids_and_aliases(api: LocalApiServer, registry: Registry) -> None:
    registry.studies["NCT06171568"]["protocolSection"]["identificationModule"]["nctIdAliases"] = [
        "NCT01111111"
    ]
    registry.put(registry.studies["NCT06171568"])
    body = get(api, "/api/v2/studies", **{"filter.ids": "NCT00973089|NCT01111111"}).json()
    assert sorted(s["protocolSection"]["identificationModule"]["nctId"] for s in body["studies"]) == [
        "NCT00973089",
        "NCT06171568",
    ]
    r = httpx.get(api.base_url + "/api/v2/studies/NCT01111111", timeout=5)
    assert r.status_code == 301 and r.headers["location"] == "/api/v2/studies/NCT06171568"
    assert get(api, "/api/v2/studies/NCT09999999").status_code == 404


def test_date_range_filter(api: LocalApiServer) -> None:
    body = get(
        api,
        "/api/v2/studies",
        pageSize="100",
        **{"filter.advanced": "AREA[LastUpdatePostDate]RANGE[2023-01-01,MAX]"},
    ).json()
    dates = [
        s["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] for s in body["studies"]
    ]
    assert dates and all(d >= "2023-01-01" for d in dates) and len(dates) < N


def test_fields_limit_the_record(api: LocalApiServer) -> None:
    body = get(api, "/api/v2/studies", fields="protocolSection.statusModule|hasResults").json()
    assert set(body["studies"][0]) == {"protocolSection", "hasResults"}
    assert set(body["studies"][0]["protocolSection"]) == {"statusModule"}


@pytest.mark.parametrize(
    "params,message",
    [
        ({"filter.phase": "PHASE2"}, "Unknown parameter"),
        ({"filter.overallStatus": "FOO"}, "Invalid value in parameter `overallStatus`"),
        ({"fields": "StudyDesign"}, "invalid field name"),
        ({"pageToken": "garbage"}, "page token"),
        ({"query.term": "(unbalanced"}, "Invalid search expression"),
    ],
)
def test_bad_parameters_get_400_text(api: LocalApiServer, params: dict, message: str) -> None:
    r = get(api, "/api/v2/studies", **params)
    assert r.status_code == 400 and r.headers["content-type"] == "text/plain" and message in r.text


def test_faults_fire_once_then_clear(api: LocalApiServer) -> None:
    api.add_fault(Fault(path="/api/v2/version", status=429, retry_after="3"))
    r = get(api, "/api/v2/version")
    assert r.status_code == 429 and r.headers["retry-after"] == "3"
    assert get(api, "/api/v2/version").status_code == 200


def test_a_client_that_hangs_up_early_is_no_error_of_the_server(
    api: LocalApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client that times out before its answer is written (as the fault tests make one do):
    the stand-in says nothing, rather than print a traceback into whatever runs next."""
    import time

    for _ in range(3):
        api.add_fault(Fault(delay=0.3))
        with pytest.raises(httpx.TimeoutException):
            httpx.get(api.base_url + "/api/v2/studies", params={"pageSize": "1000"}, timeout=0.05)
    time.sleep(0.6)  # the handlers have written into the closed connections by now
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Exception occurred" not in captured.err
    assert get(api, "/api/v2/version").status_code == 200  # and it goes on serving

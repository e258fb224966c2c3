"""EU CTIS polled like ClinicalTrials.gov (issue 35): the real CTIS client against the
stand-in on loopback, the real store on SQLite and PostgreSQL. A first poll is the
starting picture; a member state's status moving, or a country joining, is a change; a
trial updated on CTIS is read again, an unchanged one is not; faults and a failed search
lose and repeat nothing; CTIS trials stand beside ClinicalTrials.gov's on every surface."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from monitor import store
from monitor.app.application import Application
from monitor.core.describe import change_text
from monitor.ctis_config import CtisSettings
from monitor.registry.ctis import CtisClient
from monitor.registry.ctisstand import CtisStandIn
from monitor.registry.localserver import Fault
from monitor.store.db import Database
from tests.conftest import DATA
from tests.harness import FakeClock

SAMPLES = DATA / "registries"
MB_CART = "2099-500101-12-00"  # MB-CART19.1 in SLE, also NCT06189157
YTB = "2099-500202-23-00"  # rapcabtagene autoleucel, 12 member states
ENGAGER = "2099-500404-45-00"  # CD19xCD3 engager in systemic sclerosis, on CTIS only


def records() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SAMPLES.glob("ctis-retrieve-*.json"))]


@pytest.fixture
def stand() -> Iterator[CtisStandIn]:
    with CtisStandIn(records()) as server:
        yield server


def app_for(
    database: Database, settings_for: Any, stand: CtisStandIn, clock: FakeClock, **kw: Any
) -> Application:
    ctis = CtisSettings(
        base_url=stand.base_url,
        min_interval_seconds=0,
        backoff_base_seconds=0,
        backoff_max_seconds=0,
        **kw,
    )
    settings = settings_for("http://127.0.0.1:9").model_copy(update={"ctis": ctis})
    return Application(
        settings,
        database=database,
        now=clock,
        ctis_client_factory=lambda: CtisClient(ctis, sleep=lambda _: None),
    )


def events(database: Database, run_id: int) -> list[Any]:
    with database.session() as s:
        return [e for e in store.list_events(s) if e.run_id == run_id]


def publish(stand: CtisStandIn, number: str, when: str, edit: Any) -> None:
    rec = copy.deepcopy(stand.records[number])
    edit(rec)
    rec["publishDate"] = f"{when}T03:00:00.123456789"
    stand.put(rec)


def test_a_first_poll_is_the_starting_picture_and_later_changes_are_told(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock)
    first = app.poll(registry="ctis").summary
    assert first.outcome == "ok" and first.mode == "ctis-full", first.error
    assert first.new_studies == first.fetched >= 4
    with database.session() as s:
        row = store.study_row(s, ENGAGER)
        assert (
            row is not None and row.registered_on == "ctis" and row.in_scope and row.modality == "bispecific"
        )
        mb = store.study_row(s, MB_CART)
        assert mb is not None and mb.registrations == ("ctgov:NCT06189157",)
        assert store.baseline_runs(s) >= {first.run_id}  # a first sync is not news

    # Spain's recruitment ends; Norway's starts; the trial republished overnight
    def move(rec: dict[str, Any]) -> None:
        for m in rec["authorizedApplication"]["memberStatesConcerned"]:
            if m["mscName"] == "Spain":
                m["mscPublicStatusCode"] = 5

    publish(stand, YTB, "2026-11-03", move)
    clock.t = datetime(2026, 11, 3, 11, 0)
    second = app.poll(registry="ctis").summary
    assert second.outcome == "ok" and second.mode == "ctis-incremental"
    assert second.fetched == 1  # only the trial whose listing shows a later update
    (change,) = events(database, second.run_id)
    assert change.kind == "site_status_change" and change.nct_id == YTB
    assert (
        change.before["site"] == "Member state, Spain" and change.after["status"] == "ACTIVE_NOT_RECRUITING"
    )

    clock.t = datetime(2026, 11, 4, 11, 0)
    third = app.poll(registry="ctis").summary
    assert third.outcome == "ok" and third.fetched == 0 and events(database, third.run_id) == []


def test_ctis_and_clinicaltrials_gov_polls_keep_their_own_windows(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock)
    assert app.poll(registry="ctis").ok
    with database.session() as s:
        assert store.last_run(s, outcomes=store.SUCCESSFUL) is None  # no ClinicalTrials.gov poll yet
        assert store.last_run(s, outcomes=store.SUCCESSFUL, modes=store.CTIS_MODES) is not None
        assert store.count_tracked(s) == 0 and store.count_tracked(s, "ctis") >= 4


@pytest.mark.parametrize(
    "fault",
    [
        Fault(path="/ctis-public-api/search", status=429, retry_after="0"),
        Fault(path="/ctis-public-api/search", truncate=True),
        Fault(path="/ctis-public-api/retrieve/", status=503, times=2),
        Fault(path="/ctis-public-api/retrieve/", drop=True),
    ],
    ids=["429", "truncated-search", "503-twice", "reset"],
)
def test_faults_lose_and_repeat_nothing(
    database: Database, settings_for: Any, stand: CtisStandIn, fault: Fault
) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    stand.add_fault(fault)
    summary = app_for(database, settings_for, stand, clock).poll(registry="ctis").summary
    assert summary.outcome == "ok", summary.error
    with database.session() as s:
        new = [e for e in store.list_events(s) if e.kind == "new_study"]
    assert len(new) == len({e.nct_id for e in new}) == summary.new_studies


def test_a_failed_poll_keeps_what_it_stored_and_the_next_one_completes_it(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock, max_attempts=2)
    stand.add_fault(Fault(path="/ctis-public-api/retrieve/", status=500, times=2, skip=1))
    failed = app.poll(registry="ctis").summary
    assert failed.outcome == "failed" and "HTTP 500" in (failed.error or "")
    clock.t = datetime(2026, 11, 2, 12, 0)
    again = app.poll(registry="ctis").summary
    assert again.outcome == "ok" and again.mode == "ctis-full"
    with database.session() as s:
        new = [e for e in store.list_events(s) if e.kind == "new_study"]
        assert len(new) == len({e.nct_id for e in new}) == store.count_tracked(s, "ctis")


def test_a_trial_ctis_no_longer_gives_is_recorded_as_gone_in_a_full_poll(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock)
    assert app.poll(registry="ctis").ok
    del stand.records[ENGAGER]
    clock.t = datetime(2026, 11, 3, 11, 0)
    again = app.poll(registry="ctis", full=True).summary
    assert again.outcome == "ok"
    assert [(e.nct_id, e.kind) for e in events(database, again.run_id)] == [(ENGAGER, "gone_from_registry")]


def test_ctis_switched_off_is_a_one_line_error(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    from monitor.core.domain import UserError

    app = app_for(database, settings_for, stand, FakeClock(), enabled=False)
    with pytest.raises(UserError, match="switched off"):
        app.poll(registry="ctis")


def test_ctis_trials_stand_beside_clinicaltrials_gov_studies_on_the_web(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    from starlette.testclient import TestClient

    from monitor.config import WebSettings
    from monitor.web import create_app

    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock)
    assert app.poll(registry="ctis").ok
    app.settings = app.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    with TestClient(create_app(app)) as client:
        page = client.get(f"/studies/{ENGAGER}").text
        rows = client.get("/api/studies", params={"per_page": "500"}).json()["studies"]
        missing = client.get("/studies/2099-999999-99-00")
        bad = client.get("/studies/not-an-id")
    assert "EXS-3319" in page and "Member state" in page
    assert "(the registry's words: “Ongoing, recruiting”)" in page  # CTIS's own status words beside
    assert (
        f'href="https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&amp;EUCT={ENGAGER}"' in page
    )
    assert "the registry shows every version" not in page  # CTIS keeps no versions
    by_id = {r["nct_id"]: r for r in rows}
    assert by_id[ENGAGER]["registrations"][0]["registry"] == "ctis"
    assert [r["id"] for r in by_id[MB_CART]["registrations"]] == [MB_CART, "NCT06189157"]
    assert missing.status_code == 404 and bad.status_code == 404


def test_the_registry_is_a_filter_and_a_count_everywhere(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    from starlette.testclient import TestClient

    from monitor.config import WebSettings
    from monitor.core.filters import StudyFilter
    from monitor.registry.localserver import LocalApiServer, Registry
    from monitor.web import create_app
    from tests.conftest import domain_records
    from tests.harness import poll

    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    reg = Registry()
    reg.replace(copy.deepcopy(domain_records()), "2026-11-02T09:00:05")
    with LocalApiServer(reg) as api:
        settings = settings_for(api.base_url)
        poll(database, settings, clock)
    app = app_for(database, settings_for, stand, clock)
    assert app.poll(registry="ctis").ok
    rows = app.studies(registries=["EU CTIS"]).rows
    on_ctis = {r["nct_id"] for r in rows}
    # MB-CART19.1's two registrations name each other: one trial, one row, shown under its
    # ClinicalTrials.gov registration with its CTIS one beside it
    joined = [r for r in rows if MB_CART in {g["id"] for g in r["registrations"]}]
    assert len(joined) == 1 and joined[0]["nct_id"].startswith("NCT") and MB_CART not in on_ctis
    assert joined[0]["trial_id"] == joined[0]["nct_id"]
    assert {YTB, ENGAGER} <= on_ctis and not any(
        n.startswith("NCT") and n != joined[0]["nct_id"] for n in on_ctis - {YTB, ENGAGER}
    )
    only_ctgov = {r["nct_id"] for r in app.studies(registries=["ctgov"]).rows}
    assert ENGAGER not in only_ctgov and joined[0]["nct_id"] in only_ctgov
    app.settings = app.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    with TestClient(create_app(app)) as client:
        page = client.get("/").text
        filtered = client.get("/", params={"registry": "ctis"}).text
        api_rows = client.get("/api/studies", params={"registry": "ctis", "per_page": "500"}).json()[
            "studies"
        ]
        bad = client.get("/api/studies", params={"registry": "scopus"})
        changes = client.get("/changes", params={"registry": "ctis", "baseline": "1"})
    assert re.search(r"\d+ on ClinicalTrials\.gov, \d+ on EU CTIS; \d+ on more than one", page)
    assert "Showing only:" in filtered and "Registry: EU CTIS" in filtered
    assert {r["nct_id"] for r in api_rows} == on_ctis
    assert bad.status_code == 400 and "registry: unknown value 'scopus'" in bad.text
    assert changes.status_code == 200 and ENGAGER in changes.text
    report = app.report(StudyFilter(), fmt="md", record=False).document
    assert re.search(r"on ClinicalTrials\.gov, \d+ on EU CTIS", report)
    flt = app.study_filter(registries=["ctis"])
    assert flt.describe() == "studies in scope with registered on EU CTIS"


def test_a_ctis_trial_followed_by_its_number_is_read_though_no_search_lists_it(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    from monitor.config import SubscriberSettings

    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock)
    app.settings = app.settings.model_copy(
        update={
            "ctis": app.settings.ctis.model_copy(update={"searches": ["rapcabtagene"]}),
            "subscribers": [SubscriberSettings(name="eu", email="eu@example.org", nct_ids=[ENGAGER])],
        }
    )
    summary = app.poll(registry="ctis").summary
    assert summary.outcome == "ok", summary.error
    with database.session() as s:
        engager = store.study_row(s, ENGAGER)
        assert engager is not None and engager.in_query is False  # followed by number, not listed
        assert store.study_row(s, YTB) is not None and store.study_row(s, MB_CART) is None


def test_one_trial_on_two_registries_is_one_row_and_its_disagreement_is_told_once(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    """MB-CART19.1 is on ClinicalTrials.gov and on CTIS. The landscape, the API and the
    report show it once with both registrations; when CTIS says it ended in Germany while
    the NCT record still recruits, that is told once, in the trial's digest block beside
    the CTIS changes (each naming its registration), and when the NCT record catches up the
    registries agree again."""
    from monitor.core.filters import StudyFilter
    from monitor.registry.localserver import LocalApiServer, Registry
    from tests.conftest import domain_records
    from tests.harness import edit, poll

    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    reg = Registry()
    reg.replace(copy.deepcopy(domain_records()), "2026-11-02T09:00:05")
    app = app_for(database, settings_for, stand, clock)
    with LocalApiServer(reg) as api:
        settings = settings_for(api.base_url)
        poll(database, settings, clock)
        assert app.poll(registry="ctis").ok
        rows = app.studies().rows
        trial = next(r for r in rows if MB_CART in {g["id"] for g in r["registrations"]})
        nct = trial["nct_id"]
        assert nct.startswith("NCT") and MB_CART not in {r["nct_id"] for r in rows}
        assert [g["registry"] for g in trial["registrations"]][:2] == ["ctgov", "ctis"]
        first = app.report(StudyFilter(), fmt="md", record=False).report
        assert first.selection.matching == len(rows)  # the report counts what the landscape shows
        assert first.selection.trials == first.selection.in_scope - 1
        with database.session() as s:  # the first comparison is a baseline: nothing told
            assert not [e for e in store.list_events(s) if e.kind == "status_across_registries"]

        def ended(rec: dict[str, Any]) -> None:
            rec["ctPublicStatusCode"] = 8
            for m in rec["authorizedApplication"]["memberStatesConcerned"]:
                m["mscPublicStatusCode"] = 8

        clock.advance(days=1)
        publish(stand, MB_CART, "2026-11-03", ended)
        told = app.poll(registry="ctis").summary
        across = [e for e in events(database, told.run_id) if e.kind == "status_across_registries"]
        assert [e.nct_id for e in across] == [nct]
        text = change_text(across[0].kind, across[0].field, across[0].before, across[0].after)
        assert text == "statuses disagree — Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS"
        clock.advance(hours=2)
        again = app.poll(registry="ctis").summary  # nothing new on CTIS: not told twice
        assert not [e for e in events(database, again.run_id) if e.kind == "status_across_registries"]
        poll(database, settings, clock)  # nor by the other registry's poll
        with database.session() as s:
            assert len([e for e in store.list_events(s) if e.kind == "status_across_registries"]) == 1

        report = app.report(
            StudyFilter(), fmt="md", record=False, since=clock().date().replace(day=1)
        ).document
        block = report[report.index(f"[{nct}]") :].split("\n- [", 1)[0]
        entries = {e.nct_id: e for e in app.feed(StudyFilter()).feed.entries}
        ctis_entry = entries[MB_CART]  # one entry per record updated; it names the trial's others
        assert ctis_entry.title.startswith(f"EU CTIS {MB_CART} · ")
        assert f"also registered as ClinicalTrials.gov {nct}" in ctis_entry.study_line
        from starlette.testclient import TestClient

        from monitor.web import create_app

        with TestClient(create_app(app)) as client:
            pages = [client.get(f"/studies/{n}").text for n in (nct, MB_CART)]
            grouped = client.get("/changes", params={"registry": "EU CTIS"}).text
        for page in pages:  # said on the page of each registration of the trial
            assert (
                "The registries disagree: Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS"
                in page
            )
        assert f'(<a href="/studies/{MB_CART}">its page here</a>)' in pages[0]
        assert f'on <a href="/studies/{MB_CART}">EU CTIS {MB_CART}</a>' in grouped  # under the trial
        told_json = {c["kind"]: c for c in app.events(nct_id=MB_CART).rows}
        assert (
            told_json["status_change"]["registry"] == "ctis" and told_json["status_change"]["trial_id"] == nct
        )
        assert f"also registered as [EU CTIS {MB_CART}]" in block
        assert all(line.startswith("  - **") for line in block.split("\n\n", 1)[0].splitlines()[1:])
        assert f"(on EU CTIS {MB_CART})" in block and "statuses disagree" in block

        clock.advance(days=1)
        edit(reg, nct, lambda ps: ps["statusModule"].update(overallStatus="COMPLETED"), posted="2026-11-04")
        caught_up = poll(database, settings, clock)
    agreed = [e for e in events(database, caught_up.run_id) if e.kind == "status_across_registries"]
    assert len(agreed) == 1 and agreed[0].after["agree"] is True
    assert change_text(agreed[0].kind, agreed[0].field, agreed[0].before, agreed[0].after).startswith(
        "statuses agree again — Completed on ClinicalTrials.gov, Ended"
    )


def test_a_trials_own_history_is_imported_once_and_later_modifications_are_told(
    database: Database, settings_for: Any, stand: CtisStandIn
) -> None:
    """CTIS keeps no versions, but each record lists its applications and each member
    state's status history: `backfill` imports them as the registry's own history, dated
    by their own dates, once, without a request; a modification submitted later, and the
    decision on it, are changes the polls tell."""
    clock = FakeClock(datetime(2026, 11, 2, 11, 0))
    app = app_for(database, settings_for, stand, clock)
    assert app.poll(registry="ctis").ok
    done = app.backfill([YTB]).summary
    assert [(s.outcome, s.detail) for s in done.studies] == [("done", None)] and done.requests == 0
    with database.session() as s:
        history = [e for e in store.list_events(s) if e.nct_id == YTB and e.origin == "backfill"]
    said = {(e.registry_date, change_text(e.kind, e.field, e.before, e.after)) for e in history}
    assert (
        "2026-01-14",
        "Member state added AM-1: submitted 2025-10-06; decided 2026-01-14 (authorised in Norway)",
    ) in said
    assert ("2024-08-02", "Member state, Spain: Under evaluation → Authorised") in said
    again = app.backfill([YTB]).summary
    assert [s.outcome for s in again.studies] == ["skipped"]
    with database.session() as s:
        assert len([e for e in store.list_events(s) if e.nct_id == YTB and e.origin == "backfill"]) == len(
            history
        )
    # the history is the registry's, not news: no digest or report period counts it
    assert not [c for c in app.events(baseline=True).rows if c["origin"] == "backfill"]

    def submit(rec: dict[str, Any]) -> None:
        rec["authorizedApplication"]["applicationInfo"].append(
            {"businessKey": "SM-2", "type": "SUBSTANTIAL MODIFICATION", "submissionDate": "2026-11-02"}
        )

    clock.advance(days=1)
    publish(stand, YTB, "2026-11-03", submit)
    polled = app.poll(registry="ctis").summary
    told = [e for e in events(database, polled.run_id) if e.kind == "modification"]
    assert [change_text(e.kind, e.field, e.before, e.after) for e in told] == [
        "Substantial modification SM-2: submitted 2026-11-02; not yet decided"
    ]
    assert told[0].origin == "poll"

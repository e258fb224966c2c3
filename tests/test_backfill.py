"""Backfill: the registry's recorded version history, fetched over real HTTP from the local
server and stored beside the polls' own history, on SQLite and PostgreSQL.

The contract: versions older than our first poll become snapshots and backfilled events
(in order, each once); nothing our polls recorded is recorded again; an interrupted run
resumes without fetching or storing anything twice; an empty history and a withdrawn
endpoint end in a clear state; backfilled events never reach a digest.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from monitor import store
from monitor.cli import main
from monitor.config import Settings
from monitor.registry.client import CtGovClient, RegistryVersion
from monitor.registry.localdata import load_histories
from monitor.registry.localserver import Fault, LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.models import Backfill, Event, Snapshot
from monitor.tracking.backfill import (
    BACKFILL_SEQ_BASE,
    REFUSALS_BEFORE_STOPPING,
    Backfiller,
    cut_version,
)
from tests.conftest import DATA, domain_records, make_settings
from tests.harness import FakeClock, poll

KYSA = "NCT05938725"  # KYSA-1, CAR T in lupus nephritis: 4 recorded versions, in scope
ACTT = "NCT04280705"  # real version 0 with HTML markup; out of scope (COVID-19)
EMPTY = "NCT06359041"  # the registry lists no versions

# What KYSA-1's versions 0..3 say, change by change (see tests/data/history/build.py).
KYSA_HISTORY = [
    (1, "status_change", "overall_status", "NOT_YET_RECRUITING", "RECRUITING"),
    (1, "date_change", "start_date", {"date": "2023-09", "type": "ESTIMATED"}, None),
    (1, "site_added", "sites", None, None),
    (
        2,
        "enrollment_change",
        "enrollment",
        {"count": 12, "type": "ESTIMATED"},
        {"count": 20, "type": "ESTIMATED"},
    ),
    (3, "status_change", "overall_status", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
    (
        3,
        "enrollment_change",
        "enrollment",
        {"count": 20, "type": "ESTIMATED"},
        {"count": 6, "type": "ACTUAL"},
    ),
    (3, "site_status_change", "sites", None, None),
]


def _histories() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return load_histories(DATA / "history")


@dataclass
class World:
    database: Database
    registry: Registry
    api: LocalApiServer
    settings: Settings
    clock: FakeClock

    def poll(self, *, full: bool = False) -> Any:
        self.clock.advance(days=1)
        return poll(self.database, self.settings, self.clock, full=full)

    def backfill(self, ids: list[str] | None = None, **kw: Any) -> Any:
        with CtGovClient(self.settings.api) as client:
            return Backfiller(self.database, client, now=self.clock).run(ids, **kw)

    def backfilled_events(self, nct: str) -> list[Event]:
        with self.database.session() as s:
            return list(
                s.scalars(
                    select(Event)
                    .where(Event.nct_id == nct, Event.origin == "backfill")
                    .order_by(Event.snapshot_seq, Event.id)
                )
            )

    def snapshots(self, nct: str) -> list[Snapshot]:
        with self.database.session() as s:
            return list(s.scalars(select(Snapshot).where(Snapshot.nct_id == nct).order_by(Snapshot.seq)))

    def row(self, nct: str) -> Backfill | None:
        with self.database.session() as s:
            return s.get(Backfill, nct)

    def history_requests(self, nct: str) -> list[str]:
        return [r.path for r in self.api.log if r.path.startswith(f"/api/int/studies/{nct}")]


@pytest.fixture
def world(database: Database) -> Iterator[World]:
    histories, current = _histories()
    records = {r["protocolSection"]["identificationModule"]["nctId"]: r for r in domain_records()}
    records.update({r["protocolSection"]["identificationModule"]["nctId"]: r for r in current})
    registry = Registry()
    registry.replace(copy.deepcopy(list(records.values())), "2026-11-02T09:00:05")
    registry.histories = copy.deepcopy(histories)
    with LocalApiServer(registry) as api:
        settings = make_settings(api.base_url, page_size=50, max_attempts=2)
        yield World(database, registry, api, settings, FakeClock())


def _shape(events: list[Event]) -> list[tuple[int, str, str, Any, Any]]:
    """(registry version, kind, field, before, after) with statuses unwrapped and site details dropped."""

    def value(v: Any) -> Any:
        if isinstance(v, dict) and "status" in v and "last_known" in v:
            return v["status"]
        return v if not isinstance(v, dict) or "date" in v or "count" in v else None

    return [
        (e.snapshot_seq - BACKFILL_SEQ_BASE, e.kind, e.field, value(e.before), value(e.after)) for e in events
    ]


def test_a_study_history_is_stored_from_registration_to_our_first_poll(world: World) -> None:
    world.poll()
    summary = world.backfill([KYSA])
    assert summary.ok and [s.outcome for s in summary.studies] == ["done"]
    assert summary.requests == 5  # the version list, then versions 0..3

    snaps = world.snapshots(KYSA)
    assert [(s.seq, s.origin, s.registry_version) for s in snaps] == [
        (BACKFILL_SEQ_BASE + 0, "backfill", 0),
        (BACKFILL_SEQ_BASE + 1, "backfill", 1),
        (BACKFILL_SEQ_BASE + 2, "backfill", 2),
        (BACKFILL_SEQ_BASE + 3, "backfill", 3),
        (1, "poll", 3),  # our first poll saw version 3: now known
    ]
    assert [s.last_update_post_date for s in snaps[:4]] == [
        "2023-07-11",
        "2023-10-04",
        "2024-06-20",
        "2025-10-29",
    ]

    got = _shape(world.backfilled_events(KYSA))
    assert [(v, k, f) for v, k, f, *_ in got] == [(v, k, f) for v, k, f, *_ in KYSA_HISTORY]
    start = next(e for e in world.backfilled_events(KYSA) if e.kind == "date_change")
    assert (start.before, start.after) == (
        {"date": "2023-09", "type": "ESTIMATED"},
        {"date": "2023-04-28", "type": "ACTUAL"},
    )
    statuses = [(v, b, a) for v, k, _, b, a in got if k == "status_change"]
    assert statuses == [(1, "NOT_YET_RECRUITING", "RECRUITING"), (3, "RECRUITING", "ACTIVE_NOT_RECRUITING")]
    enrollment = [(b["count"], a["count"]) for v, k, _, b, a in got if k == "enrollment_change"]
    assert enrollment == [(12, 20), (20, 6)]
    events = world.backfilled_events(KYSA)
    assert {e.registry_date for e in events if e.snapshot_seq == BACKFILL_SEQ_BASE + 1} == {"2023-10-04"}
    assert all(e.run_id is None and not e.held for e in events)

    row = world.row(KYSA)
    assert row is not None
    assert (row.status, row.cut_version, row.stored_through, row.events, row.requests) == ("done", 3, 3, 7, 5)
    assert [v["status"] for v in row.versions] == [
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "RECRUITING",
        "ACTIVE_NOT_RECRUITING",
    ]


def test_html_in_history_versions_creates_no_change(world: World) -> None:
    """ACTT-1's version 0 is the registry's own answer: tags, `&#x2F;`; today's record is markdown."""
    world.poll()
    world.backfill([ACTT])
    events = world.backfilled_events(ACTT)
    # Only the edits of versions 1..3; nothing from markup, and no difference at the link to our poll.
    assert all(e.snapshot_seq < 0 for e in events)
    assert {e.kind for e in events} == {
        "status_change",
        "date_change",
        "site_status_change",
        "site_added",
        "enrollment_change",
        "phase_change",
    }
    assert world.snapshots(ACTT)[-1].registry_version == 3


def test_the_history_shows_when_eligibility_and_endpoints_changed_before_our_first_poll(world: World) -> None:
    """The backfill compares the same fields as a poll: in ACTT-1's (HTML) version 2 the
    sponsor drops an exclusion criterion and shortens a secondary outcome's time frame."""
    allergy = "<li>Allergy to any study medication.</li>"
    versions = world.registry.histories[ACTT]["versions"]
    for later in [*(versions[n]["study"] for n in (2, 3)), world.registry.studies[ACTT]]:
        ps = later["protocolSection"]
        ps["eligibilityModule"]["eligibilityCriteria"] = ps["eligibilityModule"][
            "eligibilityCriteria"
        ].replace(allergy, "")
        ps["outcomesModule"]["secondaryOutcomes"][0]["timeFrame"] = "Day 1 through Day 15"
    old_frame = versions[1]["study"]["protocolSection"]["outcomesModule"]["secondaryOutcomes"][0]["timeFrame"]
    world.poll()
    world.backfill([ACTT])
    got = [
        (e.snapshot_seq - BACKFILL_SEQ_BASE, e.kind, e.before, e.after)
        for e in world.backfilled_events(ACTT)
        if e.kind in ("eligibility_change", "outcome_change")
    ]
    assert [(v, k) for v, k, _, _ in got] == [(2, "eligibility_change"), (2, "outcome_change")]
    assert got[0][2:] == ([{"section": "Exclusion", "text": "Allergy to any study medication."}], [])
    assert (got[1][2]["time_frame"], got[1][3]["time_frame"]) == (old_frame, "Day 1 through Day 15")


def test_running_it_again_changes_nothing_and_fetches_nothing(world: World) -> None:
    world.poll()
    world.backfill([KYSA])
    before = (len(world.backfilled_events(KYSA)), len(world.snapshots(KYSA)), len(world.api.log))
    again = world.backfill([KYSA])
    assert [(s.outcome, s.detail) for s in again.studies] == [("skipped", "already backfilled")]
    assert (len(world.backfilled_events(KYSA)), len(world.snapshots(KYSA)), len(world.api.log)) == before


def test_an_interrupted_backfill_resumes_without_fetching_or_storing_twice(world: World) -> None:
    world.poll()
    # Version 2 fails every try: the registry "stops answering" mid-study.
    world.api.add_fault(Fault(path=f"/api/int/studies/{KYSA}/history/2", status=503, times=2))
    first = world.backfill([KYSA])
    assert not first.ok and first.stopped and "gave up" in first.stopped
    row = world.row(KYSA)
    assert row is not None and (row.status, row.stored_through) == ("failed", 1)
    assert [s.registry_version for s in world.snapshots(KYSA)] == [0, 1, None]
    assert len(world.backfilled_events(KYSA)) == 3  # version 1's changes

    world.api.log.clear()
    second = world.backfill([KYSA])
    assert world.history_requests(KYSA) == [
        f"/api/int/studies/{KYSA}/history/2",
        f"/api/int/studies/{KYSA}/history/3",
    ]  # no second version list, versions 0 and 1 not fetched again
    assert next(s for s in second.studies if s.nct_id == KYSA).outcome == "done"
    assert [(v, k) for v, k, *_ in _shape(world.backfilled_events(KYSA))] == [
        (v, k) for v, k, *_ in KYSA_HISTORY
    ]


def test_a_stop_request_is_honoured_between_versions_and_resumed(world: World) -> None:
    world.poll()
    calls = {"n": 0}

    def stop_after_two_versions() -> bool:
        calls["n"] += 1
        return calls["n"] > 3  # before the study, before version 0, before version 1

    summary = world.backfill([KYSA], should_stop=stop_after_two_versions)
    assert summary.stopped == "asked to stop"
    assert [s.registry_version for s in world.snapshots(KYSA)] == [0, 1, None]
    world.backfill([KYSA])
    assert [s.registry_version for s in world.snapshots(KYSA)] == [0, 1, 2, 3, 3]
    assert len(world.backfilled_events(KYSA)) == len(KYSA_HISTORY)


def test_a_study_with_an_empty_history(world: World) -> None:
    world.poll()
    summary = world.backfill([EMPTY])
    assert [(s.outcome, s.detail) for s in summary.studies] == [("empty", "the registry lists no versions")]
    assert summary.ok
    row = world.row(EMPTY)
    assert row is not None and row.status == "empty" and row.versions == []
    assert [s.origin for s in world.snapshots(EMPTY)] == ["poll"]
    with world.database.session() as s:
        assert EMPTY not in store.backfill_candidates(s)  # settled: not asked again


def test_versions_published_after_our_first_poll_are_left_to_the_polls(world: World) -> None:
    """Our first poll saw version 2; version 3 arrived through a later poll. Backfill stores 0..2
    and records none of version 3's changes again, even when the version list dates version 3
    early enough to look older (its body's post date says otherwise)."""
    histories, _ = _histories()
    v2 = histories[KYSA]["versions"][2]["study"]
    world.registry.put(copy.deepcopy(v2))
    world.poll()
    current = next(
        r for r in _histories()[1] if r["protocolSection"]["identificationModule"]["nctId"] == KYSA
    )
    world.registry.put(copy.deepcopy(current))
    world.registry.data_timestamp = "2026-11-03T09:00:05"
    second = world.poll(full=True)
    with world.database.session() as s:
        polled = list(s.scalars(select(Event).where(Event.nct_id == KYSA, Event.run_id == second.run_id)))
    assert {e.kind for e in polled} == {"status_change", "enrollment_change", "site_status_change"}

    world.registry.histories[KYSA]["index"]["changes"][3]["date"] = "2024-06-19"  # misleading
    summary = world.backfill([KYSA])
    assert summary.ok
    assert [(s.origin, s.registry_version) for s in world.snapshots(KYSA)] == [
        ("backfill", 0),
        ("backfill", 1),
        ("backfill", 2),
        ("poll", 2),
        ("poll", None),
    ]
    backfilled = world.backfilled_events(KYSA)
    assert [e.snapshot_seq - BACKFILL_SEQ_BASE for e in backfilled] == [1, 1, 1, 2]
    row = world.row(KYSA)
    assert row is not None and row.cut_version == 2


def test_a_first_poll_that_differs_from_the_last_old_version_is_linked_by_backfilled_changes(
    world: World,
) -> None:
    """If the registry's versions stop short of what our first poll saw (the version list
    lacks the latest), the difference is a change published before that poll: recorded once,
    as backfilled, on our first snapshot."""
    world.poll()
    index = world.registry.histories[KYSA]["index"]
    index["changes"] = index["changes"][:3]
    world.backfill([KYSA])
    link = [e for e in world.backfilled_events(KYSA) if e.snapshot_seq == 1]
    assert {e.kind for e in link} == {"status_change", "enrollment_change", "site_status_change"}
    assert {e.registry_date for e in link} == {"2025-10-29"}
    assert world.snapshots(KYSA)[-1].registry_version is None


def test_the_fallback_endpoint_is_used_when_the_history_path_is_refused(world: World) -> None:
    world.poll()
    world.api.add_fault(Fault(path=f"/api/int/studies/{KYSA}/history", status=404, times=1))
    summary = world.backfill([KYSA])
    assert summary.ok
    assert world.history_requests(KYSA)[:2] == [
        f"/api/int/studies/{KYSA}/history",
        f"/api/int/studies/{KYSA}",
    ]
    assert len(world.backfilled_events(KYSA)) == len(KYSA_HISTORY)


def test_a_withdrawn_history_endpoint_stops_the_run_with_a_clear_message(world: World) -> None:
    world.poll()
    world.registry.history_available = False
    summary = world.backfill()
    assert summary.stopped and "no longer offers record histories" in summary.stopped
    # Stopped after a few refusals in a row, not one failure per study.
    assert len(summary.studies) == REFUSALS_BEFORE_STOPPING
    assert "studies in a row were refused" in summary.stopped
    assert [s.origin for s in world.snapshots(summary.studies[0].nct_id)] == ["poll"]
    world.registry.history_available = True
    assert world.backfill([KYSA]).ok  # and works again when the registry does


@pytest.mark.parametrize(
    "refusal",
    [
        [Fault(status=404), Fault(status=403)],
        # a web page answered with 200 where data should be: the site refusing, not data
        [
            Fault(
                status=200,
                body="<html><body><h1>Just a moment...</h1></body></html>",
                content_type="text/html",
            ),
            Fault(status=200, body="<!DOCTYPE html><html>Access denied</html>", content_type="text/html"),
        ],
    ],
    ids=["404-and-403", "html-with-200"],
)
def test_one_study_refused_on_both_endpoints_is_marked_and_skipped(
    world: World, refusal: list[Fault]
) -> None:
    world.poll()
    first, fallback = refusal
    first.path, fallback.path = f"/api/int/studies/{KYSA}/history", f"/api/int/studies/{KYSA}"
    world.api.add_fault(first)
    world.api.add_fault(fallback)
    summary = world.backfill([KYSA, ACTT])
    assert not summary.stopped
    outcomes = {s.nct_id: s.outcome for s in summary.studies}
    assert outcomes == {KYSA: "failed", ACTT: "done"}
    row = world.row(KYSA)
    assert row is not None and row.status == "failed" and "refused the record history" in row.error
    if first.status == 200:
        assert "answered a web page, not data" in row.error and "Just a moment" in row.error
    assert [s.origin for s in world.snapshots(KYSA)] == ["poll"]  # nothing half-stored
    assert world.backfill([KYSA]).ok  # tried again next time, and it works


def test_backfilled_events_are_never_news(world: World) -> None:
    world.poll()
    world.backfill([KYSA, ACTT])
    with world.database.session() as s:
        due = list(store.pending_events(s, "anyone"))
    assert due and all(e.origin == "poll" for e in due)


def test_default_selection_is_studies_in_scope_not_yet_backfilled(world: World) -> None:
    world.poll()
    world.backfill([KYSA])
    summary = world.backfill(limit=3)
    ids = [s.nct_id for s in summary.studies]
    assert len(ids) == 3 and KYSA not in ids and ACTT not in ids  # ACTT-1 is out of scope
    assert ids == sorted(ids)


def test_a_study_followed_by_id_is_backfilled_though_out_of_scope(world: World) -> None:
    """A subscriber follows ACTT-1 by id: the scheduled backfill takes it, out of scope or not."""
    world.poll()
    with CtGovClient(world.settings.api) as client:
        summary = Backfiller(world.database, client, now=world.clock, followed=[ACTT]).run(limit=1)
    assert [s.nct_id for s in summary.studies] == [ACTT]  # first of the candidates in id order
    assert world.row(ACTT) is not None and world.row(ACTT).status == "done"


def test_cut_version_rule() -> None:
    versions = [
        RegistryVersion(0, "2023-07-05", "NOT_YET_RECRUITING"),
        RegistryVersion(1, "2023-10-02", "RECRUITING"),
        RegistryVersion(2, "2024-06-18", "RECRUITING"),
    ]
    assert cut_version(versions, "2024-06-20") == 2
    assert cut_version(versions, "2024-06-18") == 2  # submitted and posted the same day
    assert cut_version(versions, "2023-12-01") == 1
    assert cut_version(versions, "2023-01-01") is None
    assert cut_version([], "2023-01-01") is None


def test_cli_backfill(world: World, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[database]\nurl = "{world.database.url}"\n[api]\nbase_url = "{world.api.base_url}"\n'
        "min_interval_seconds = 0\nmax_attempts = 1\n"
        '[[queries]]\nname = "all"\nterm = "ALL"\n'
    )
    assert main(["--config", str(cfg), "poll"]) == 0
    capsys.readouterr()
    assert main(["--config", str(cfg), "backfill", "NCT0000001"]) == 2
    assert "NCT" in capsys.readouterr().err
    assert main(["--config", str(cfg), "backfill", "NCT09999999"]) == 2
    assert "not tracked" in capsys.readouterr().err
    assert main(["--config", str(cfg), "backfill", KYSA, EMPTY]) == 0
    out = capsys.readouterr().out
    assert f"{KYSA}: done: 4 of 4 registry versions stored, 7 changes" in out
    assert f"{EMPTY}: empty" in out
    assert main(["--config", str(cfg), "status"]) == 0
    assert "Registry histories: 1 backfilled, 1 with none listed, 0 failed," in capsys.readouterr().out

    # events: backfilled changes are marked, and --since can read the registry's dates
    assert main(["--config", str(cfg), "events", "--study", KYSA]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len([ln for ln in lines if "(registry 2023-" in ln and ln.endswith(", registry history)")]) == 3
    assert (
        main(["--config", str(cfg), "events", "--study", KYSA, "--since", "2024-01-01", "--by", "registry"])
        == 0
    )
    recent = capsys.readouterr().out.splitlines()
    dates = [ln.split("(registry ")[1][:10] for ln in recent]
    assert dates and min(dates) >= "2024-01-01"  # the 2023 history is left out, though detected today
    assert main(["--config", str(cfg), "events", "--study", KYSA, "--origin", "backfill", "--json"]) == 0
    backfilled = json.loads(capsys.readouterr().out)
    assert len(backfilled) == 7 and {e["origin"] for e in backfilled} == {"backfill"}
    world.registry.history_available = False
    assert main(["--config", str(cfg), "backfill", "--json", "--limit", str(REFUSALS_BEFORE_STOPPING)]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and "no longer offers record histories" in result["stopped"]


def test_the_scheduled_backfill_job_takes_newly_tracked_studies(world: World) -> None:
    from monitor.config import BackfillSettings
    from monitor.service import Service
    from monitor.store.models import JobRun

    world.poll()
    settings = world.settings.model_copy(update={"backfill": BackfillSettings(studies_per_run=2)})
    service = Service(settings, world.database, now=world.clock)
    assert service.run_job("backfill") == "ok"
    with world.database.session() as s:
        assert len(list(s.scalars(select(Backfill)))) == 2  # studies_per_run
        detail = s.scalars(select(JobRun.detail).where(JobRun.job == "backfill")).one()
    assert detail.startswith("2 studies:")
    world.registry.history_available = False
    assert service.run_job("backfill") == "failed"  # shown in `ctmonitor status`, never silent

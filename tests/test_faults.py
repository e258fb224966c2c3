"""API faults during a poll, over real HTTP on loopback: nothing lost, nothing duplicated, failures loud."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor import store
from monitor.registry.localserver import Fault, LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.models import Event, PollRun, Snapshot, StudyRow
from monitor.tracking.sync import utcnow
from tests.conftest import make_settings, registry_records
from tests.harness import FakeClock, edit, events, kill_when, once_unlocked, poll, shift_the_whole_registry

N = len(registry_records())


def count(database: Database, model: type) -> int:
    with database.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=429, retry_after="0"),
        Fault(status=500),
        Fault(status=503, times=2),
        Fault(drop=True),
        Fault(truncate=True),
        Fault(status=502, body="<html><h1>Bad gateway</h1></html>", content_type="text/html"),
        Fault(path="/api/v2/version", status=500),
    ],
    ids=["429", "500", "503x2", "dropped", "truncated", "html-502", "version-500"],
)
def test_transient_faults_are_retried_and_the_poll_completes(
    database: Database, api: LocalApiServer, settings_for, fault: Fault
) -> None:
    fault.skip = 1 if fault.path == "/api/v2/studies" else 0  # hit the second page, mid-sync
    api.add_fault(fault)
    summary = poll(database, settings_for(api.base_url))
    assert summary.outcome == "ok", summary.error
    assert summary.fetched == summary.expected == N
    assert Counter(e.kind for e in events(database)) == {"new_study": N}
    assert count(database, Snapshot) == N


def test_slow_answer_beyond_the_timeout_is_retried(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    api.add_fault(Fault(delay=1.5))
    summary = poll(database, settings_for(api.base_url, timeout_seconds=0.5))
    assert summary.outcome == "ok"
    assert count(database, StudyRow) == N


def test_persistent_outage_fails_the_run_loudly_and_keeps_what_was_stored(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url, max_attempts=3, page_size=1)
    clock = FakeClock()
    poll(database, settings, clock)
    edit(registry, "NCT06171568", lambda ps: ps["statusModule"].update(overallStatus="RECRUITING"))
    edit(registry, "NCT00973089", lambda ps: ps["statusModule"].update(whyStopped="No funding"))
    api.add_fault(Fault(status=503, skip=1, times=100))  # first page of changes gets through, then down
    clock.advance(days=1)
    failed = poll(database, settings, clock)
    assert failed.outcome == "failed" and "503" in failed.error
    with database.session() as s:
        assert s.get(PollRun, failed.run_id).outcome == "failed"
    api.faults.clear()
    clock.advance(hours=6)
    recovered = poll(database, settings, clock)
    assert recovered.outcome == "ok"
    # Each change recorded exactly once: one by the failed run before the outage, one by the next.
    changes = Counter((e.nct_id, e.kind) for e in events(database) if e.kind != "new_study")
    assert changes == {("NCT06171568", "status_change"): 1, ("NCT00973089", "why_stopped_change"): 1}
    assert len(events(database, failed.run_id)) == 1 and len(events(database, recovered.run_id)) == 1
    # The recovering run's window starts from the last *successful* poll, not the failed one.
    assert recovered.mode == "incremental"


def test_count_mismatch_fails_the_run_and_marks_nothing_gone(
    database: Database, api: LocalApiServer, registry: Registry, settings_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    # The registry claims more studies than it then serves (a refresh under our feet).
    original = api._studies

    def lying(params):  # type: ignore[no-untyped-def]
        body = original(params)
        if "totalCount" in body:
            body["totalCount"] += 5
        return body

    monkeypatch.setattr(api, "_studies", lying)
    registry.data_timestamp = "2026-11-03T09:00:00"
    clock.advance(days=8)
    summary = poll(database, settings, clock)
    assert summary.outcome == "failed"
    assert "reported" in summary.error and "returned" in summary.error
    assert not [e for e in events(database) if e.kind in ("gone_from_registry", "left_query")]


def test_stale_page_token_after_a_registry_refresh_fails_and_the_next_poll_recovers(
    database: Database, api: LocalApiServer, registry: Registry, settings_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(api.base_url)
    original = api._studies
    calls = {"n": 0}

    def refresh_midway(params):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            registry.generation += 1  # the daily refresh lands between page 1 and page 2
        return original(params)

    monkeypatch.setattr(api, "_studies", refresh_midway)
    first = poll(database, settings)
    assert first.outcome == "failed" and "page token" in first.error
    monkeypatch.setattr(api, "_studies", original)
    second = poll(database, settings)
    assert second.outcome == "ok"
    assert Counter(e.kind for e in events(database)) == {"new_study": N}


def test_unknown_parameter_is_a_clear_400_not_a_retry(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    settings = settings_for(api.base_url, fields=["protocolSection", "StudyDesign"])
    summary = poll(database, settings)
    assert summary.outcome == "failed"
    assert "invalid field name" in summary.error
    assert len(api.requests_to("/api/v2/studies")) == 1


def test_no_test_reaches_beyond_loopback() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(AssertionError, match=r"192\.0\.2\.1"):
            sock.connect(("192.0.2.1", 443))  # refused by the guard before any packet leaves
    finally:
        sock.close()


def test_events_table_has_no_duplicates_after_a_crashed_run(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    """A run killed mid-way (simulated: left 'running') is marked crashed by the next poll."""
    settings = settings_for(api.base_url)
    poll(database, settings)
    with database.session() as s:
        # A run left "running", as a killed process leaves it.
        store.start_run(s, mode="incremental", now=FakeClock()(), host="elsewhere", query_hash="x")
    poll(database, settings, full=True)
    with database.session() as s:
        outcomes = list(s.scalars(select(PollRun.outcome).order_by(PollRun.id)))
        assert outcomes == ["ok", "crashed", "ok"]
        assert s.scalar(select(func.count()).select_from(Event)) == N


def poll_after_kill(database: Database, api: LocalApiServer) -> Any:
    """The next poll, once the killed one's lock is released."""
    return once_unlocked(lambda: poll(database, make_settings(api.base_url), utcnow))


def test_a_poll_killed_mid_run_loses_nothing_and_duplicates_nothing(
    config: Path, database: Database, api: LocalApiServer, registry: Registry
) -> None:
    """A real `ctmonitor poll` process, SIGKILLed while it waits for its third page (two
    pages committed): what it stored stays whole, and the next poll records every study
    once and a change made meanwhile to an already-stored study exactly once."""
    api.add_fault(Fault(delay=60, skip=2))  # the third page hangs: the process is killed waiting for it
    kill_when(config, lambda: count(database, StudyRow) >= 10)  # two pages, each committed whole

    # What the killed run left: whole pages, each study with its snapshot and its one event.
    stored = count(database, StudyRow)
    assert stored == 10 and count(database, Snapshot) == stored
    assert Counter(e.kind for e in events(database)) == {"new_study": stored}
    with database.session() as s:
        assert list(s.scalars(select(PollRun.outcome))) == ["running"]
        first_stored = s.scalars(select(StudyRow.nct_id).order_by(StudyRow.nct_id)).first()
    assert first_stored is not None

    # Meanwhile a study the killed run had stored changes in the registry.
    edit(registry, first_stored, lambda ps: ps["statusModule"].update(overallStatus="SUSPENDED"))
    api.faults.clear()
    summary = poll_after_kill(database, api)
    assert summary.outcome == "ok", summary.error
    with database.session() as s:
        assert list(s.scalars(select(PollRun.outcome).order_by(PollRun.id))) == ["crashed", "ok"]
    kinds = Counter((e.nct_id, e.kind) for e in events(database))
    assert sum(n for (_, kind), n in kinds.items() if kind == "new_study") == N
    assert all(n == 1 for n in kinds.values())
    changed = [key for key in kinds if key[1] not in ("new_study",)]
    assert changed == [(first_stored, "status_change")]
    assert count(database, StudyRow) == N and count(database, Snapshot) == N + 1


def test_a_poll_killed_during_a_registry_wide_shift_publishes_nothing_and_is_held(
    config: Path, database: Database, api: LocalApiServer, registry: Registry
) -> None:
    """A killed poll's changes are not told to anyone while its run is open; the next poll
    judges them (with its own, as one attempt) and holds a shift, each change recorded once."""
    poll(database, make_settings(api.base_url), utcnow)
    shift_the_whole_registry(registry)
    api.add_fault(Fault(delay=60, skip=2))  # the third page hangs: the process is killed waiting for it

    def changed() -> int:
        with database.session() as s:
            return (
                s.scalar(select(func.count(func.distinct(Event.nct_id))).where(Event.kind != "new_study"))
                or 0
            )

    kill_when(config, lambda: changed() >= 10)  # two pages of changes committed
    with database.session() as s:
        assert list(s.scalars(select(PollRun.outcome).order_by(PollRun.id))) == ["ok", "running"]
        published = s.scalar(
            select(func.count()).select_from(Event).where(Event.kind != "new_study", *store.published())
        )
    assert published == 0

    api.faults.clear()
    summary = poll_after_kill(database, api)
    assert summary.outcome == "ok" and summary.changed_studies == N - 10
    assert summary.held is True
    with database.session() as s:
        runs = list(s.execute(select(PollRun.outcome, PollRun.held).order_by(PollRun.id)))
    assert [tuple(r) for r in runs] == [("ok", False), ("crashed", True), ("ok", True)]
    shifted = [e for e in events(database) if e.kind != "new_study"]
    assert len({e.nct_id for e in shifted}) == N and all(e.held for e in shifted)
    assert all(n == 1 for n in Counter((e.nct_id, e.kind, e.field, e.item_key) for e in shifted).values())

"""Polls through the real client and the local API server, on SQLite and PostgreSQL.

Each test reads as a scenario: the registry holds real records, something happens in
the registry, ctmonitor polls, and exactly the expected events exist afterwards.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor import store
from monitor.config import QuerySettings, Settings
from monitor.core.normalize import raw_hash
from monitor.registry.localserver import Fault, LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.models import PollRun, Snapshot, StudyRow
from tests.conftest import registry_records
from tests.harness import FakeClock, edit, events, poll, shift_the_whole_registry


def test_first_poll_records_every_study_once(database: Database, api: LocalApiServer, settings_for) -> None:
    settings = settings_for(api.base_url)
    summary = poll(database, settings)
    n = len(registry_records())
    assert summary.outcome == "ok" and summary.mode == "full"
    assert summary.fetched == summary.expected == n
    assert summary.new_studies == n and summary.events_by_kind == {"new_study": n}
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(StudyRow)) == n
        assert s.scalar(select(func.count()).select_from(Snapshot)) == n
        run = s.get(PollRun, summary.run_id)
        assert run.outcome == "ok" and run.data_timestamp == "2026-11-02T09:00:05"
        raw = s.scalars(select(Snapshot).where(Snapshot.nct_id == "NCT03475563")).one()
        assert store.decompress(raw.raw)["protocolSection"]["identificationModule"]["nctId"] == "NCT03475563"


def test_rerun_on_unchanged_data_is_one_request_and_no_event(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    clock.advance(days=1)
    again = poll(database, settings, clock)
    assert again.outcome == "unchanged"
    assert again.requests == 1
    assert api.log[-1].path == "/api/v2/version"
    assert again.events == 0


def test_forced_full_poll_of_the_same_data_changes_nothing(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    clock.advance(hours=1)
    again = poll(database, settings, clock, full=True)
    assert again.outcome == "ok" and again.events == 0 and again.new_studies == 0
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(Snapshot)) == len(registry_records())


def test_a_reconciliation_of_unchanged_data_parses_no_record(
    database: Database, api: LocalApiServer, settings_for, monkeypatch
) -> None:
    """Records whose bytes hash as stored are counted, never parsed nor normalized."""
    from monitor.registry import answers
    from monitor.tracking import pages as sync

    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    parsed: list[object] = []
    real_parse, real_normalize = answers.parse_json, sync.study_of
    monkeypatch.setattr(answers, "parse_json", lambda b: parsed.append(b) or real_parse(b))
    monkeypatch.setattr(sync, "study_of", lambda n, b: parsed.append(b) or real_normalize(n, b))
    clock.advance(hours=1)
    again = poll(database, settings, clock, full=True)
    assert again.outcome == "ok" and again.fetched == len(registry_records()) and again.events == 0
    assert parsed == []


def test_a_reconciliation_of_unchanged_data_rewrites_no_study_row(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    """A weekly full re-read of 100,000 unchanged studies must not rewrite 100,000 rows (on
    PostgreSQL each rewrite leaves a dead row version behind: a year of them weighed
    gigabytes and slowed every read of the landscape). Only a study last fetched with an
    earlier field list is written, to say its record now has today's."""
    from sqlalchemy import event, update

    from monitor.core.protocol import FIELDS_VERSION

    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    older = sorted(r["protocolSection"]["identificationModule"]["nctId"] for r in registry_records())[:2]
    with database.session() as s:
        s.execute(
            update(StudyRow).where(StudyRow.nct_id.in_(older)).values(fields_version=FIELDS_VERSION - 1)
        )
        seen = {n: t for n, t in s.execute(select(StudyRow.nct_id, StudyRow.last_seen_at))}
    written: list[int] = []  # rows of `studies` each statement wrote

    def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("UPDATE STUDIES", "INSERT INTO STUDIES")):
            written.append(cursor.rowcount)

    event.listen(database.engine, "after_cursor_execute", note)
    try:
        clock.advance(hours=1)
        again = poll(database, settings, clock, full=True)
    finally:
        event.remove(database.engine, "after_cursor_execute", note)
    assert again.outcome == "ok" and again.events == 0
    assert sum(written) == 2  # the two of an earlier field list
    with database.session() as s:
        now = {n: t for n, t in s.execute(select(StudyRow.nct_id, StudyRow.last_seen_at))}
        assert s.scalar(select(func.min(StudyRow.fields_version))) == FIELDS_VERSION
    assert {n for n in seen if now[n] != seen[n]} == set(older)


def test_a_study_changed_between_polls_yields_exactly_its_events(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)

    def suspend(ps: dict[str, Any]) -> None:
        ps["statusModule"]["overallStatus"] = "SUSPENDED"
        ps["statusModule"]["whyStopped"] = "Sponsor paused enrollment"
        ps["designModule"]["enrollmentInfo"] = {"count": 12, "type": "ACTUAL"}

    edit(registry, "NCT06171568", suspend)
    clock.advance(days=1)
    second = poll(database, settings, clock)
    assert second.mode == "incremental" and second.outcome == "ok"
    got = events(database, second.run_id)
    assert sorted((e.nct_id, e.kind) for e in got) == [
        ("NCT06171568", "enrollment_change"),
        ("NCT06171568", "status_change"),
        ("NCT06171568", "why_stopped_change"),
    ]
    status = next(e for e in got if e.kind == "status_change")
    assert status.before["status"] == "NOT_YET_RECRUITING" and status.after["status"] == "SUSPENDED"
    assert status.registry_date == "2026-11-03"
    # the incremental query asked only for recent updates
    studies_calls = [r for r in api.log if r.path == "/api/v2/studies"]
    assert "AREA[LastUpdatePostDate]RANGE[2026-10-30,MAX]" in studies_calls[-1].params["filter.advanced"]
    with database.session() as s:
        assert s.get(StudyRow, "NCT06171568").snapshot_count == 2
        assert s.get(StudyRow, "NCT06171568").overall_status == "SUSPENDED"


def test_reformatting_in_the_registry_stores_a_snapshot_but_no_event(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)

    def reformat(ps: dict[str, Any]) -> None:
        ps["contactsLocationsModule"]["locations"].reverse()
        ps["identificationModule"]["briefTitle"] += "  "
        ps["conditionsModule"]["conditions"] = [c.lower() for c in ps["conditionsModule"]["conditions"]]

    edit(registry, "NCT03475563", reformat)
    clock.advance(days=1)
    second = poll(database, settings, clock)
    assert second.outcome == "ok" and second.events == 0 and second.changed_studies == 0
    with database.session() as s:
        assert s.get(StudyRow, "NCT03475563").snapshot_count == 2  # raw kept for re-normalizing later


def test_status_that_flips_back_is_recorded_both_ways(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    edit(registry, "NCT06171568", lambda ps: ps["statusModule"].update(overallStatus="RECRUITING"))
    clock.advance(days=1)
    poll(database, settings, clock)
    edit(
        registry,
        "NCT06171568",
        lambda ps: ps["statusModule"].update(overallStatus="NOT_YET_RECRUITING"),
        posted="2026-11-04",
        timestamp="2026-11-04T09:00:00",
    )
    clock.advance(days=1)
    poll(database, settings, clock)
    flips = [(e.before["status"], e.after["status"]) for e in events(database) if e.kind == "status_change"]
    assert flips == [("NOT_YET_RECRUITING", "RECRUITING"), ("RECRUITING", "NOT_YET_RECRUITING")]
    with database.session() as s:
        assert s.get(StudyRow, "NCT06171568").snapshot_count == 3


def test_study_that_leaves_the_query_is_followed_by_id(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    query = QuerySettings(name="withdrawn-or-unknown", term="AREA[OverallStatus](WITHDRAWN OR UNKNOWN)")
    settings = settings_for(api.base_url, queries=[query])
    clock = FakeClock()
    first = poll(database, settings, clock)
    assert first.new_studies == 3  # NCT00973089 (withdrawn), NCT03475563 and NCT04207047 (unknown)

    edit(registry, "NCT03475563", lambda ps: ps["statusModule"].update(overallStatus="COMPLETED"))
    clock.advance(days=1)
    second = poll(database, settings, clock)
    got = sorted((e.nct_id, e.kind) for e in events(database, second.run_id))
    assert got == [("NCT03475563", "left_query"), ("NCT03475563", "status_change")]
    ids_calls = [r for r in api.log if "filter.ids" in r.params]
    assert ids_calls and "NCT03475563" in ids_calls[-1].params["filter.ids"]
    with database.session() as s:
        assert s.get(StudyRow, "NCT03475563").in_query is False

    # It keeps being followed: its next change is still recorded.
    edit(
        registry,
        "NCT03475563",
        lambda ps: ps["designModule"]["enrollmentInfo"].update(count=140),
        posted="2026-11-04",
        timestamp="2026-11-04T09:00:00",
    )
    clock.advance(days=1)
    third = poll(database, settings, clock)
    assert [(e.nct_id, e.kind) for e in events(database, third.run_id)] == [
        ("NCT03475563", "enrollment_change")
    ]


def test_study_removed_from_the_registry_is_marked_gone_in_a_full_poll(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    registry.remove("NCT00973089")
    registry.data_timestamp = "2026-11-03T09:00:00"
    clock.advance(days=1)
    incremental = poll(database, settings, clock)
    assert incremental.events == 0  # silence in an incremental window proves nothing
    clock.advance(days=8)
    full = poll(database, settings, clock)
    assert full.mode == "full"
    assert [(e.nct_id, e.kind) for e in events(database, full.run_id)] == [
        ("NCT00973089", "gone_from_registry")
    ]
    assert any(r.path == "/api/v2/studies/NCT00973089" for r in api.log)
    clock.advance(days=8)
    again = poll(database, settings, clock, full=True)
    assert again.events == 0  # said once, not every week


def test_renumbered_study_keeps_its_history(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    raw = registry.studies["NCT06171568"]
    registry.remove("NCT06171568")
    raw["protocolSection"]["identificationModule"]["nctId"] = "NCT06999999"
    raw["protocolSection"]["identificationModule"]["nctIdAliases"] = ["NCT06171568"]
    registry.put(raw)
    registry.data_timestamp = "2026-11-03T09:00:00"
    clock.advance(days=8)
    full = poll(database, settings, clock)
    got = [(e.nct_id, e.kind, e.before, e.after) for e in events(database, full.run_id)]
    assert got == [("NCT06999999", "id_changed", "NCT06171568", "NCT06999999")]
    with database.session() as s:
        assert s.get(StudyRow, "NCT06171568").merged_into == "NCT06999999"
        assert full.new_studies == 0


def test_pinned_ids_query_tracks_studies_outside_the_search(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    queries = [
        QuerySettings(name="none", term="AREA[OverallStatus]WITHHELD"),
        QuerySettings(name="pinned", ids=["NCT02552212", "NCT00763412"]),
    ]
    summary = poll(database, settings_for(api.base_url, queries=queries))
    assert summary.new_studies == 2
    with database.session() as s:
        assert set(s.scalars(select(StudyRow.nct_id))) == {"NCT02552212", "NCT00763412"}


def test_study_reached_by_two_queries_is_processed_once(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    queries = [
        QuerySettings(name="a", term="ALL"),
        QuerySettings(name="b", term="AREA[OverallStatus]COMPLETED"),
    ]
    summary = poll(database, settings_for(api.base_url, queries=queries))
    assert summary.new_studies == len(registry_records())
    assert Counter(e.kind for e in events(database)) == {"new_study": len(registry_records())}


def test_editing_the_watch_queries_forces_a_full_poll(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    clock = FakeClock()
    narrow = settings_for(
        api.base_url, queries=[QuerySettings(name="q", term="AREA[OverallStatus]WITHDRAWN")]
    )
    assert poll(database, narrow, clock).new_studies == 1
    clock.advance(days=1)
    wide = settings_for(
        api.base_url, queries=[QuerySettings(name="q", term="AREA[OverallStatus](WITHDRAWN OR COMPLETED)")]
    )
    second = poll(database, wide, clock)
    assert second.mode == "full" and second.new_studies > 0


def poll_a_shift(
    database: Database,
    api: LocalApiServer,
    registry: Registry,
    settings: Settings,
    clock: FakeClock,
    *,
    pages_before_failing: int | None = None,
) -> Any:
    """A first poll; then the whole registry shifts and the next poll reads it, failing
    after `pages_before_failing` pages when given (the registry breaks down with 503s)."""
    poll(database, settings, clock)
    shift_the_whole_registry(registry)
    if pages_before_failing is not None:
        api.add_fault(Fault(status=503, times=1000, skip=pages_before_failing))
    clock.advance(days=1)
    return poll(database, settings, clock)


def test_registry_wide_shift_is_held_for_review(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    clock = FakeClock()
    shifted = poll_a_shift(database, api, registry, settings_for(api.base_url), clock)
    assert shifted.held is True
    held = events(database, shifted.run_id)
    assert held and all(e.held for e in held)
    with database.session() as s:
        assert store.release_events(s, run_id=shifted.run_id, now=clock()) == len(held)
    assert not any(e.held for e in events(database))


def test_a_shift_is_held_even_when_the_poll_fails_part_way(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    """What a failed poll stored is published when it ends, so it is judged like any poll."""
    settings = settings_for(api.base_url)  # pages of 5
    failed = poll_a_shift(database, api, registry, settings, FakeClock(), pages_before_failing=2)
    assert failed.outcome == "failed" and failed.changed_studies == 10 < len(registry.studies)
    assert failed.held is True
    stored = events(database, failed.run_id)
    assert stored and all(e.held for e in stored)
    with database.session() as s:
        assert s.get(PollRun, failed.run_id).held is True


def test_a_shift_split_by_a_failure_is_judged_as_one(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    """Neither part crosses the threshold alone; together, since the last successful poll, they do."""
    base = settings_for(api.base_url)
    settings = base.model_copy(update={"sync": base.sync.model_copy(update={"hold_threshold": 0.7})})
    clock = FakeClock()
    tracked = len(registry.studies)
    first = poll_a_shift(database, api, registry, settings, clock, pages_before_failing=1)
    assert first.outcome == "failed" and first.changed_studies / tracked <= 0.7
    assert first.held is False and not any(e.held for e in events(database, first.run_id))

    api.faults.clear()
    clock.advance(hours=1)
    retry = poll(database, settings, clock)
    assert retry.outcome == "ok" and retry.changed_studies > 0 and retry.changed_studies / tracked <= 0.7
    assert first.changed_studies + retry.changed_studies == tracked
    assert retry.held is True
    both = events(database, first.run_id) + events(database, retry.run_id)
    assert both and all(e.held for e in both)


def test_a_shift_released_by_an_administrator_stays_released(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    """A failed attempt's held events, once released, are not held again when the retry is judged."""
    settings = settings_for(api.base_url)
    clock = FakeClock()
    failed = poll_a_shift(database, api, registry, settings, clock, pages_before_failing=2)
    assert failed.held is True
    with database.session() as s:
        store.release_events(s, run_id=failed.run_id, now=clock())
    api.faults.clear()
    clock.advance(hours=1)
    retry = poll(database, settings, clock)
    assert retry.held is True
    assert not any(e.held for e in events(database, failed.run_id))
    assert all(e.held for e in events(database, retry.run_id))


# -- classification during the poll ---------------------------------------------------------


def _domain_registry() -> Registry:
    from tests.conftest import domain_records

    reg = Registry()
    reg.replace(domain_records(), "2026-11-02T09:00:05")
    return reg


def test_poll_stores_labels_and_a_study_moving_out_of_scope_is_an_event(
    database: Database, settings_for
) -> None:
    registry = _domain_registry()
    with LocalApiServer(registry) as api:
        settings = settings_for(api.base_url, page_size=50)
        clock = FakeClock()
        poll(database, settings, clock)
        with database.session() as s:
            kysa = s.get(StudyRow, "NCT05938725")
            assert (kysa.in_scope, kysa.modality, kysa.targets, kysa.indications) == (
                True,
                "CAR-T",
                ("CD19",),
                ("lupus nephritis",),
            )
            assert s.get(StudyRow, "NCT02348216").in_scope is False  # ZUMA-1: CAR-T in lymphoma

        # The sponsor repurposes the record: title and conditions now name lymphoma.
        def repurpose(ps: dict[str, Any]) -> None:
            ps["conditionsModule"]["conditions"] = ["Diffuse Large B-cell Lymphoma"]
            ps["identificationModule"]["briefTitle"] = (
                "KYSA-1: Anti-CD19 CAR T Therapy in Large B-cell Lymphoma"
            )

        edit(registry, "NCT05938725", repurpose)
        clock.advance(days=1)
        second = poll(database, settings, clock)
        kinds = sorted(e.kind for e in events(database, second.run_id))
        assert "left_scope" in kinds and "condition_added" in kinds
        left = next(e for e in events(database, second.run_id) if e.kind == "left_scope")
        assert left.after["reason"] == "oncology indication"


def test_vocabulary_change_relabels_stored_studies_without_fetching(
    database: Database, settings_for, tmp_path
) -> None:
    from monitor.core.classify import Classifier
    from monitor.tracking.sync import reclassify

    registry = _domain_registry()
    with LocalApiServer(registry) as api:
        settings = settings_for(api.base_url, page_size=50)
        poll(database, settings)
        requests = len(api.log)
    # A curator decides polyclonal studies of aplastic anaemia count (an overrides file).
    overrides = tmp_path / "overrides.toml"
    overrides.write_text(
        '[[override]]\nnct_id = "NCT07139600"\nfield = "in_scope"\nvalue = true\n'
        'reason = "curator: immune aplastic anaemia counts for this team"\n'
    )
    done, scope_events = reclassify(
        database, Classifier.from_files(None, overrides), run_id=None, now=FakeClock()(), only_stale=True
    )
    assert done > 0 and scope_events == 1
    assert len(api.log) == requests  # nothing fetched
    with database.session() as s:
        row = s.get(StudyRow, "NCT07139600")
        assert row.in_scope is True and row.classification["curated"] == ["in_scope"]
    (event,) = [e for e in events(database) if e.kind == "entered_scope"]
    assert event.nct_id == "NCT07139600" and event.origin == "reclassify"


def test_every_snapshot_holds_its_own_record(database: Database, api: LocalApiServer, settings_for) -> None:
    """Snapshots are compressed a page at a time on another thread and matched back by hash:
    each stored blob must be the record it is filed under, new and changed alike."""
    settings = settings_for(api.base_url)
    poll(database, settings)
    clock = FakeClock()
    clock.advance(days=1)
    edit(api.registry, "NCT03475563", lambda ps: ps["statusModule"].update(overallStatus="COMPLETED"))
    poll(database, settings, clock)
    with database.session() as s:
        snaps = s.scalars(select(Snapshot)).all()
    assert len(snaps) == len(registry_records()) + 1
    for snap in snaps:
        record = store.decompress(snap.raw)
        assert record["protocolSection"]["identificationModule"]["nctId"] == snap.nct_id
        # the bytes kept are the registry's own, and the hash is theirs
        assert raw_hash(store.decompress_bytes(snap.raw)) == snap.raw_hash
    newest = max((x for x in snaps if x.nct_id == "NCT03475563"), key=lambda x: x.seq)
    assert store.decompress(newest.raw)["protocolSection"]["statusModule"]["overallStatus"] == "COMPLETED"


def test_a_study_followed_by_id_is_tracked_from_the_next_poll_without_a_full_one(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    """A coordinator follows a trial no watch query reaches: the next poll, even one with
    no news in the registry, fetches it by id; from then on it is followed like the rest."""
    from monitor.config import SubscriberSettings

    followed = "NCT06171568"  # a real record the cystic fibrosis query does not reach
    cf_only = [QuerySettings(name="cf", cond="Cystic Fibrosis")]
    settings = settings_for(api.base_url, queries=cf_only)
    clock = FakeClock()
    first = poll(database, settings, clock)
    with database.session() as s:
        assert followed not in store.tracked_ids(s, [followed]) and first.new_studies >= 1

    coordinator = SubscriberSettings(name="coord", email="coord@example.org", nct_ids=[followed])
    settings = settings.model_copy(update={"subscribers": [coordinator]})
    clock.advance(days=1)
    second = poll(database, settings, clock)  # the registry's data has not moved
    assert second.mode == "incremental" and second.outcome == "ok"
    assert second.new_studies == 1 and second.events_by_kind == {"new_study": 1}
    assert [r.path for r in api.log[-2:]] == ["/api/v2/version", "/api/v2/studies"]
    with database.session() as s:
        row = store.study_row(s, followed)
        assert row is not None and row.in_query is False
    from monitor.app import Application

    page = Application(settings, database=database, now=clock).study_page(followed)
    assert page.followed_by == 1 and page.in_query is False  # its page says so (never who)

    def suspend(ps: dict[str, Any]) -> None:
        ps["statusModule"]["overallStatus"] = "SUSPENDED"

    edit(registry, followed, suspend)
    clock.advance(days=1)
    third = poll(database, settings, clock)
    assert third.mode == "incremental"
    assert [(e.nct_id, e.kind) for e in events(database, third.run_id)] == [(followed, "status_change")]
    clock.advance(days=1)
    assert poll(database, settings, clock).outcome == "unchanged"  # nothing more to fetch


def _copies(n: int, status: str) -> list[dict[str, Any]]:
    """n studies shaped like a real record, each its own NCT id, all of one status."""
    import copy

    base = registry_records()[0]
    out = []
    for i in range(n):
        raw = copy.deepcopy(base)
        ps = raw["protocolSection"]
        ps["identificationModule"]["nctId"] = f"NCT09{i:06d}"
        ps["statusModule"]["overallStatus"] = status
        ps["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2026-10-01", "type": "ACTUAL"}
        out.append(raw)
    return out


@pytest.mark.parametrize("n", [150, 600])
def test_an_incremental_poll_costs_the_same_for_150_or_600_studies_left_behind(
    database: Database, settings_for, n: int
) -> None:
    """Studies the watch queries no longer reach are still followed, but a quiet day costs a
    handful of requests however many there are: the registry is asked once which studies
    changed in the window (ids only), and only the tracked ones among them are read (the
    version, the query, the changed ids, the one changed study: 4, at 150 as at 600)."""
    registry = Registry()
    registry.replace(_copies(n, "RECRUITING"), "2026-11-02T09:00:05")
    with LocalApiServer(registry) as api:
        settings = settings_for(
            api.base_url,
            queries=[QuerySettings(name="recruiting", term="AREA[OverallStatus]RECRUITING")],
            page_size=100,  # the setup's syncs in a few pages; the quiet day is what is counted
        )
        clock = FakeClock()
        assert poll(database, settings, clock).new_studies == n
        # every one leaves the query; a reconciliation records it (they are followed by id
        # from then on); later, one of them changes again
        for nct in list(registry.studies):
            edit(
                registry,
                nct,
                lambda ps: ps["statusModule"].update(overallStatus="COMPLETED"),
                posted="2026-11-03",
                timestamp="2026-11-03T09:00:00",
            )
        clock.advance(days=1)
        poll(database, settings, clock, full=True)
        registry.data_timestamp = "2026-11-10T09:00:00"  # a week of nothing
        clock.advance(days=1)
        poll(database, settings, clock)
        chosen = f"NCT09{n - 1:06d}"
        edit(
            registry,
            chosen,
            lambda ps: ps["designModule"]["enrollmentInfo"].update(count=77),
            posted="2026-11-12",
            timestamp="2026-11-12T09:00:00",
        )
        clock.advance(days=1)
        before = len(api.log)
        run = poll(database, settings, clock)
        assert run.mode == "incremental"
        assert [(e.nct_id, e.kind) for e in events(database, run.run_id)] == [(chosen, "enrollment_change")]
        assert len(api.log) - before == 4, [r.params for r in api.log[before:]]

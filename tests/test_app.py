"""The application layer, called directly as the CLI, the service and the web call it.

One `Application` over a real database (SQLite and PostgreSQL, built by the migrations)
and the local registry on loopback: each use case returns a typed result with `ok`,
text and JSON, and takes its own locks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.app import Application, WorkFailed
from monitor.config import DatabaseSettings
from monitor.core.domain import UserError
from monitor.core.filters import StudyFilter
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.locking import LockBusy, exclusive
from tests.conftest import DATA, make_settings, registry_records
from tests.harness import FakeClock, edit


@pytest.fixture
def app(database: Database, api: LocalApiServer) -> Application:
    return Application(make_settings(api.base_url), database=database, now=FakeClock())


def test_a_poll_is_one_call_with_a_typed_result(app: Application) -> None:
    result = app.poll()
    n = len(registry_records())
    assert result.ok and not result.stopped
    assert result.summary.new_studies == n
    assert result.text().startswith(f"Poll #{result.summary.run_id} (full) done.")
    assert result.to_json()["events"] == n
    assert result.job_detail() == f"run #{result.summary.run_id} full: {n} events, {n} fetched"


def test_status_events_and_studies_read_what_the_poll_stored(app: Application) -> None:
    first = app.poll()
    status = app.status()
    assert status.ok and status.to_json()["studies"]["tracked"] == len(registry_records())
    assert status.to_json()["runs"][0]["id"] == first.summary.run_id
    assert "Last successful ClinicalTrials.gov poll: #" in status.text()

    # The first poll's arrivals are the starting picture, not changes: asked for, they are there.
    assert app.events(kinds=["new_study"]).rows == []
    events = app.events(kinds=["new_study"], baseline=True, flt=StudyFilter(include_out_of_scope=True))
    assert len(events.rows) == len(registry_records())
    assert all(e["kind"] == "new_study" and e["arrival"] == "baseline" for e in events.to_json())

    landscape = app.studies(include_out_of_scope=True)
    assert {r["nct_id"] for r in landscape.rows} == {
        r["protocolSection"]["identificationModule"]["nctId"] for r in registry_records()
    }
    assert landscape.text().endswith(f"{len(landscape.rows)} studies")


def test_history_and_compare_tell_one_study_s_story(app: Application, registry: Registry) -> None:
    clock: FakeClock = app.now  # type: ignore[assignment]
    app.poll()
    nct = "NCT03475563"
    edit(registry, nct, lambda p: p["statusModule"].update(overallStatus="SUSPENDED", whyStopped="Funding"))
    clock.advance(days=1)
    assert app.poll().ok

    story = app.history([nct]).to_json()
    assert story["nct_id"] == nct and story["statuses"][-1]["status"] == "SUSPENDED"
    assert any(c["kind"] == "status_change" for c in story["changes"])

    diff = app.compare(nct)
    assert not diff.same
    assert any(c["kind"] == "status_change" for c in diff.to_json()["changes"])
    assert "-> Suspended" in diff.text() or "Suspended" in diff.text()


def test_an_untracked_study_is_a_user_error(app: Application) -> None:
    app.poll()
    with pytest.raises(UserError, match="NCT09999999 is not tracked"):
        app.history(["NCT09999999"])
    with pytest.raises(UserError, match="is not tracked"):
        app.compare("NCT09999999")
    with pytest.raises(UserError, match="is not tracked"):
        app.backfill(["NCT09999999"])


def test_reports_and_feeds_are_written_where_asked(app: Application, tmp_path: Path) -> None:
    app.poll()
    report = app.report(StudyFilter(include_out_of_scope=True), fmt="html", out=tmp_path / "r.html")
    assert report.ok and (tmp_path / "r.html").read_text(encoding="utf-8") == report.document
    assert report.text().startswith(f"wrote html report to {tmp_path / 'r.html'}")
    feed = app.feed(StudyFilter(), out=tmp_path / "f.xml")
    assert (tmp_path / "f.xml").read_bytes() == feed.document
    assert json.dumps(feed.to_json())  # serialisable as it is
    assert not list(tmp_path.glob(".f.xml.*.tmp"))  # the atomic write leaves no temporary file


def test_filters_are_checked_like_a_subscriber_s(app: Application) -> None:
    assert app.study_filter(modalities=["CAR-T"]).modalities == ("CAR-T",)
    # what people type reads as the labels it stands for
    assert app.study_filter(modalities=["CART", "car t"]).modalities == ("CAR-T",)
    lupus = app.study_filter(indications=["lupus"], statuses=["active"])
    assert lupus.indications == ("SLE", "lupus nephritis")
    assert lupus.statuses == (
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "ENROLLING_BY_INVITATION",
        "ACTIVE_NOT_RECRUITING",
    )
    assert app.study_filter(indications=["Sjogrens", "myasthenia"]).indications == (
        "Sjögren's",
        "myasthenia gravis",
    )
    with pytest.raises(
        UserError, match=r"modalities: unknown value 'CARX'; valid: bispecific, CAAR-T, .*\(or: "
    ):
        app.study_filter(modalities=["CARX"])


def test_reclassify_owns_the_writer_lock(app: Application, database: Database) -> None:
    app.poll()
    assert app.reclassify().relabelled == 0
    with exclusive(database.engine), pytest.raises(LockBusy):
        Application(app.settings, database=Database(database.url)).reclassify()


def test_use_cases_that_need_no_database_never_create_one(tmp_path: Path, api: LocalApiServer) -> None:
    db_file = tmp_path / "never.db"
    settings = make_settings(api.base_url).model_copy(
        update={"database": DatabaseSettings(url=f"sqlite:///{db_file}")}
    )
    with Application(settings) as app:
        result = app.classify_files([str(DATA / "domain" / "records.jsonl")])
        assert result.ok and len(result.items) > 100
    assert not db_file.exists()


def test_a_database_that_cannot_be_opened_is_work_failed(tmp_path: Path, api: LocalApiServer) -> None:
    garbage = tmp_path / "notes.db"
    garbage.write_bytes(b"not a database, a text file someone named .db\n" * 100)
    settings = make_settings(api.base_url).model_copy(
        update={"database": DatabaseSettings(url=f"sqlite:///{garbage}")}
    )
    with Application(settings) as app, pytest.raises(WorkFailed):
        app.status()
    assert garbage.read_bytes().startswith(b"not a database")  # left as it was

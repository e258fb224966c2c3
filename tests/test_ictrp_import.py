"""A WHO ICTRP export imported (issue 35): ChiCTR, jRCT and EUCTR trials the watch matches
tracked like any study, read streaming; a later export records what changed, dated by the
record's own Last_Refreshed_on; trials of registries polled directly are left to them;
a wrong or cut-off file says so in one line and loses nothing stored."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor import store
from monitor.app.application import Application
from monitor.core import ictrp
from monitor.store.db import Database
from tests.conftest import DATA
from tests.harness import FakeClock

SAMPLE = DATA / "registries" / "ictrp-export-sample.xml"


def app(database: Database, settings_for: Any, clock: FakeClock) -> Application:
    return Application(settings_for("http://127.0.0.1:9"), database=database, now=clock)


def test_an_export_brings_the_trials_in_scope_of_the_registers_not_polled(
    database: Database, settings_for: Any, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 12, 2, 9, 0))
    result = app(database, settings_for, clock).import_ictrp(SAMPLE)
    s = result.summary
    assert result.ok and s.expected == 9, result.text()
    with database.session() as session:
        rows = {r.nct_id: r for r in store.current_study_rows(session)}
        run = store.recent_runs(session, 1)[0]
    # in scope: two ChiCTR, one jRCT, the EUCTR engager; not the CTIS and NCT trials (their
    # registries are polled), not the oncology and rituximab ones (out of scope)
    assert set(rows) == {
        "ChiCTR2600120587",
        "ChiCTR2600122319",
        "ChiCTR2099000101",
        "jRCT2099250001",
        "2099-000321-15",
    }
    assert rows["jRCT2099250001"].registered_on == "jrct"
    assert rows["jRCT2099250001"].registrations == ("ctgov:NCT09999901",)
    assert rows["2099-000321-15"].modality == "bispecific"
    assert rows["ChiCTR2600120587"].first_post_date == "2026-03-17"
    assert rows["ChiCTR2600120587"].last_update_post_date == "2026-03-23"
    assert run.source == SAMPLE.name and run.mode == "ictrp-import"
    assert "ICTRP import" in result.text() and "5 kept" in result.text()


def test_a_later_export_records_what_changed_dated_by_the_record(
    database: Database, settings_for: Any, tmp_path: Path
) -> None:
    clock = FakeClock(datetime(2026, 12, 2, 9, 0))
    a = app(database, settings_for, clock)
    assert a.import_ictrp(SAMPLE).ok
    text = SAMPLE.read_text(encoding="utf-8")
    block = re.search(r"<Trial>(?:(?!</Trial>).)*ChiCTR2600120587(?:(?!</Trial>).)*</Trial>", text, re.S)
    assert block is not None
    changed = (
        block.group(0).replace("Not Recruiting", "Recruiting", 1).replace("23 March 2026", "28 November 2026")
    )
    later = tmp_path / "ICTRP-Results-later.xml"
    later.write_text(text.replace(block.group(0), changed), encoding="utf-8")
    clock.t = datetime(2026, 12, 9, 9, 0)
    second = a.import_ictrp(later).summary
    assert second.outcome == "ok" and second.new_studies == 0 and second.changed_studies == 1
    with database.session() as session:
        (e,) = [e for e in store.list_events(session) if e.run_id == second.run_id]
    assert (e.nct_id, e.kind, e.after["status"]) == ("ChiCTR2600120587", "status_change", "RECRUITING")
    assert e.registry_date == "2026-11-28"  # the record's own Last_Refreshed_on
    again = a.import_ictrp(later).summary
    assert again.events == 0  # the same file twice tells nothing twice


def test_a_cut_off_file_keeps_what_it_read_and_says_so(
    database: Database, settings_for: Any, tmp_path: Path
) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    cut = tmp_path / "cut.xml"
    cut.write_text(text[: text.index("JPRN-jRCT2099250001")], encoding="utf-8")
    result = app(database, settings_for, FakeClock()).import_ictrp(cut)
    assert not result.ok and "is not a whole ICTRP XML export" in result.text()
    with database.session() as session:
        assert store.count_tracked(session, "chictr") >= 1  # what came before the cut is stored


def test_a_file_that_is_not_an_export_is_refused(
    database: Database, settings_for: Any, tmp_path: Path
) -> None:
    other = tmp_path / "other.xml"
    other.write_text("<?xml version='1.0'?><rss><channel/></rss>", encoding="utf-8")
    result = app(database, settings_for, FakeClock()).import_ictrp(other)
    assert not result.ok and "is not an ICTRP export (its root is <rss>" in result.text()


def test_a_large_export_is_read_streaming(database: Database, settings_for: Any, tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    head, _, rest = text.partition("<Trial>")
    trial = "<Trial>" + rest[: rest.index("</Trial>") + len("</Trial>")]
    body = "".join(trial.replace("ChiCTR2600120587", f"ChiCTR26{i:08d}") for i in range(1500))
    big = tmp_path / "big.xml"
    big.write_text(head + body + "</Trials_downloaded_from_ICTRP>", encoding="utf-8")
    s = app(database, settings_for, FakeClock()).import_ictrp(big).summary
    assert s.outcome == "ok" and s.expected == 1500 and s.new_studies == 1500


@pytest.mark.parametrize(
    "raw,number",
    [
        ("JPRN-jRCT2031230123", "jRCT2031230123"),
        ("EUCTR2019-001588-63-DE", "2019-001588-63"),
        ("ChiCTR2300071234", "ChiCTR2300071234"),
    ],
)
def test_trial_ids_become_registration_numbers(raw: str, number: str) -> None:
    assert ictrp.trial_id(raw) == number


def test_contacts_are_never_kept() -> None:
    fields = ictrp.fields_of(
        {"TrialID": "ChiCTR1", "Contact_Email": "a@b.c", "Contact_Tel": "123", "Public_title": " T\n "}
    )
    assert fields == {"TrialID": "ChiCTR1", "Public_title": "T"}


def test_a_status_in_the_registers_own_words_is_shown_in_them(database: Database, settings_for: Any) -> None:
    """ICTRP passes on each register's status words; "Not Recruiting" says recruitment is
    closed without saying whether the trial goes on or has ended, so it is mapped to no
    reader's status, and the landscape, the API and the downloads show the register's words
    rather than "unknown"."""
    from starlette.testclient import TestClient

    from monitor.web import create_app

    clock = FakeClock(datetime(2026, 12, 2, 9, 0))
    application = app(database, settings_for, clock)
    assert application.import_ictrp(SAMPLE).ok
    rows = {r["nct_id"]: r for r in application.studies().rows}
    chictr = rows["ChiCTR2600120587"]
    assert (chictr["status"], chictr["registry_status"]) == ("UNKNOWN", "Not Recruiting")
    with TestClient(create_app(application)) as client:
        page = client.get("/", params={"q": "ChiCTR2600120587"}).text
        csv = client.get("/", params={"q": "ChiCTR2600120587", "format": "csv"}).text
    cell = re.search(r'data-label="Status">(.*?)</td>', page, re.S)
    assert cell and "Not Recruiting" in cell.group(1) and "Unknown" not in cell.group(1)
    assert csv.startswith("nct_id,title,status,registry_status,") and ",UNKNOWN,Not Recruiting," in csv


def test_status_tells_each_registrys_freshness_and_counts(database: Database, settings_for: Any) -> None:
    clock = FakeClock(datetime(2026, 12, 2, 9, 0))
    application = app(database, settings_for, clock)
    assert application.import_ictrp(SAMPLE).ok
    status = application.status()
    text = status.text()
    assert f"Last successful ICTRP import: #1 at 2026-12-02 09:00 UTC, from {SAMPLE.name}" in text
    assert "By registry: 3 on ChiCTR, 1 on EudraCT, 1 on jRCT; 5 trials" in text
    assert status.to_json()["registries"]["tracked"] == {"chictr": 3, "eudract": 1, "jrct": 1}


def test_an_imported_trial_has_its_page_under_its_own_number(database: Database, settings_for: Any) -> None:
    """The landscape links each imported trial to its page: the number as its registry
    writes it is the address (another casing leads there), on the web and the command line."""
    from starlette.testclient import TestClient

    from monitor.core.registrations import check_study_id
    from monitor.web import create_app

    clock = FakeClock(datetime(2026, 12, 2, 9, 0))
    application = app(database, settings_for, clock)
    assert application.import_ictrp(SAMPLE).ok
    with TestClient(create_app(application)) as client:
        for number in ("ChiCTR2600120587", "jRCT2099250001", "2099-000321-15"):
            page = client.get(f"/studies/{number}")
            assert page.status_code == 200 and number in page.text, number
            assert client.get(f"/api/studies/{number}").json()["nct_id"] == number
        moved = client.get("/studies/chictr2600120587", follow_redirects=False)
        assert moved.status_code == 301 and moved.headers["location"] == "/studies/ChiCTR2600120587"
        landscape = client.get("/", params={"registry": "jRCT"}).text
    assert 'href="/studies/jRCT2099250001"' in landscape
    assert check_study_id("JRCT2099250001") == "jRCT2099250001"
    assert application.history(["ChiCTR2600120587"]).studies[0]["nct_id"] == "ChiCTR2600120587"

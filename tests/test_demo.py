"""The offline demo (the README's first command) runs end to end and writes what it promises."""

from __future__ import annotations

import json
import re
from email import message_from_bytes, policy
from pathlib import Path

from monitor.app import Application
from monitor.cli.demo import DATA, NEW_STUDY_ID, run_demo, with_first_posted
from monitor.config import Settings
from monitor.registry.localdata import load_records
from monitor.store.db import open_database
from tests.harness import views_agree


def test_demo_polls_mails_and_reports(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(tmp_path / "out", echo=lines.append)
    out = tmp_path / "out"
    assert [p["mode"] for p in result["polls"]] == ["full", "incremental"]
    kinds = {c["kind"] for c in result["changes"]}
    assert {"status_change", "why_stopped_change", "site_added", "new_study"} <= kinds

    mails = sorted((out / "mail").glob("*.eml"))
    assert len(mails) == 2  # the landscape, then the weekly digest
    first = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert "starting picture" in first["Subject"]
    digest_txt = (out / "digest.txt").read_text()
    assert NEW_STUDY_ID in digest_txt and "New study:" in digest_txt
    assert "Now recruiting" in digest_txt and "Suspended" in digest_txt and "Site added" in digest_txt
    assert "<table" in (out / "digest.html").read_text()

    report = (out / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>") and "<svg" in report and NEW_STUDY_ID in report
    assert "How the studies were selected" in (out / "report.md").read_text()
    # first-posted dates (estimated for the demo, and said so): registrations over the years
    # and recent ones in the first digest, never a date after the record's last update
    assert any("made up for the demo" in line and "first-posted" in line for line in lines)
    years = re.findall(r'text-anchor="middle">(20\d\d)</text>', report)
    assert len(years) >= 4
    landscape = first.get_body(("plain",)).get_content()
    recent = int(re.search(r"REGISTERED IN THE LAST \d+ DAYS \((\d+)\)", landscape).group(1))
    assert recent >= 2
    for raw in load_records(DATA):
        status = raw["protocolSection"]["statusModule"]
        if status.get("studyFirstPostDateStruct"):
            continue
        with_first_posted([raw])
        posted = status["studyFirstPostDateStruct"]["date"]
        assert posted <= status["lastUpdatePostDateStruct"]["date"]
    assert json.loads((out / "changes.json").read_text())["changes"]
    assert any("report.html" in line for line in lines) and any("digest.html" in line for line in lines)

    # the landscape the database answers over the demo's registrations (trials joined across
    # ClinicalTrials.gov, EU CTIS and the ICTRP's registers) is the one its rows give
    database = open_database(f"sqlite:///{out / 'demo.db'}", auto_upgrade=False)
    try:
        assert views_agree(Application(Settings(), database=database), 60) > 30
    finally:
        database.dispose()

    # Run again into the same folder: a fresh start, same outcome.
    again = run_demo(out, echo=lambda _: None)
    assert len(again["digests"]) == 2


def test_demo_backfills_one_history_without_touching_the_digest(tmp_path: Path) -> None:
    from monitor import store
    from monitor.cli.demo import HISTORY_STUDY_ID
    from monitor.store.db import open_database

    result = run_demo(tmp_path / "out", echo=lambda _: None)
    assert result["backfill"] == {
        "nct_id": HISTORY_STUDY_ID,
        "ok": True,
        "versions_stored": 3,
        "events": 5,
    }
    database = open_database(f"sqlite:///{tmp_path / 'out' / 'demo.db'}", auto_upgrade=False)
    try:
        with database.session() as s:
            events = store.list_events(s, nct_id=HISTORY_STUDY_ID)
    finally:
        database.dispose()
    statuses = [(e.before["status"], e.after["status"]) for e in events if e.kind == "status_change"]
    assert statuses == [("NOT_YET_RECRUITING", "RECRUITING"), ("RECRUITING", "ACTIVE_NOT_RECRUITING")]
    assert all(e.origin == "backfill" for e in events if e.kind != "new_study")
    # Backfilled changes are history, not news: the weekly digest does not list them.
    assert HISTORY_STUDY_ID not in (tmp_path / "out" / "digest.txt").read_text()


def test_the_demos_closing_lines_run_as_printed(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each suggested command, pasted without any environment prefix, reads the demo's
    database (and no ./ctmonitor.db is created on the way)."""
    import shlex

    from monitor.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTMONITOR_DATABASE_URL", raising=False)
    lines: list[str] = []
    run_demo(Path("out"), echo=lines.append)
    suggested = [line.strip().split("#")[0].strip() for line in lines if "--db out/demo.db" in line]
    assert len(suggested) >= 4
    for command in suggested:
        argv = shlex.split(command)
        assert argv[1:3] == ["--db", "out/demo.db"]
        if argv[3] == "serve":
            continue  # a server: started by `make serve`, tested in test_web
        assert main(argv[1:]) == 0, command
    assert not (tmp_path / "ctmonitor.db").exists()

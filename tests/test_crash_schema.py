"""Crash-safe from the first second: real `ctmonitor` processes, SIGKILLed while they
migrate, and two first polls at once, on SQLite and PostgreSQL.

A migration runs in one transaction under the writer lock: killed at any point, the
database is at the old revision (empty, or the one before), never in between, and the
next poll migrates and records exactly the change log a fault-free run records.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from monitor.registry.localserver import LocalApiServer
from monitor.store import db as dbmod
from monitor.store.db import open_database
from tests.conftest import registry_records

N = len(registry_records())
HEAD = dbmod.head_revision()
CLI = [sys.executable, "-c", "from monitor.cli import main; raise SystemExit(main())"]


def spawn(config: Path, *args: str, hold: Path | None = None) -> subprocess.Popen[str]:
    """`ctmonitor --config config args`; with `hold`, its migration says each revision it
    applies and stops inside its transaction after as many as the file says, until the
    file is removed (migrations/env.py)."""
    env = dict(os.environ)
    if hold is not None:
        env["CTMONITOR_TEST_MIGRATION_HOLD"] = str(hold)
    return subprocess.Popen(
        [*CLI, "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(proc: subprocess.Popen[str], what: str, times: int = 1) -> None:
    """Read the process's stderr until `what` began `times` lines."""
    assert proc.stderr is not None
    seen = 0
    deadline = time.monotonic() + 60
    while seen < times:
        line = proc.stderr.readline()
        assert line or proc.poll() is None, "the process ended before the test could act"
        assert time.monotonic() < deadline
        seen += line.startswith(what)


def kill_after_revisions(config: Path, n: int) -> None:
    """Start a poll that migrates, and SIGKILL it once `n` revisions are applied (not
    committed: it is holding inside the migration's transaction)."""
    hold = config.parent / "hold"
    hold.write_text(str(n))
    proc = spawn(config, "poll", hold=hold)
    try:
        wait_for(proc, "ctmonitor-migration: applied", n)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        hold.unlink()
    assert proc.returncode == -9


def revision(url: str) -> str | None:
    engine = dbmod.make_engine(url)
    try:
        return dbmod.current_revision(engine)
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = dbmod.make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def poll_until_it_runs(config: Path) -> subprocess.CompletedProcess[str]:
    """The next poll. PostgreSQL frees a killed process's advisory lock a moment after the
    kill; until then a poll rightly exits 3."""
    deadline = time.monotonic() + 15
    while True:
        done = subprocess.run(
            [*CLI, "--config", str(config), "poll", "--json"], capture_output=True, text=True
        )
        if done.returncode != 3 or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def change_log(url: str) -> Counter[tuple[str, str]]:
    db = open_database(url, auto_upgrade=False)
    try:
        with db.engine.connect() as conn:
            return Counter((r.nct_id, r.kind) for r in conn.execute(text("SELECT nct_id, kind FROM events")))
    finally:
        db.dispose()


FAULT_FREE = Counter(
    {(r["protocolSection"]["identificationModule"]["nctId"], "new_study"): 1 for r in registry_records()}
)


@pytest.mark.slow
@pytest.mark.parametrize("killed_after", [1, 3, 5])
def test_a_first_poll_killed_while_it_creates_the_schema_leaves_an_empty_database(
    config: Path, db_url: str, api: LocalApiServer, killed_after: int
) -> None:
    kill_after_revisions(config, killed_after)
    assert revision(db_url) is None
    assert tables(db_url) <= {"alembic_version"}  # nothing half-made: no table, no stray copy
    done = poll_until_it_runs(config)
    assert done.returncode == 0, done.stderr
    assert revision(db_url) == HEAD
    assert change_log(db_url) == FAULT_FREE


@pytest.mark.slow
def test_an_upgrade_killed_half_way_leaves_the_old_revision_and_its_data(
    config: Path, db_url: str, api: LocalApiServer
) -> None:
    done = poll_until_it_runs(config)
    assert done.returncode == 0, done.stderr
    engine = dbmod.make_engine(db_url)
    try:
        dbmod.downgrade(engine, "0001")  # an old database, with a poll's data in it
    finally:
        engine.dispose()
    kill_after_revisions(config, 3)
    assert revision(db_url) == "0001"
    assert not {t for t in tables(db_url) if t.startswith("_alembic_tmp")}
    done = poll_until_it_runs(config)
    assert done.returncode == 0, done.stderr
    assert revision(db_url) == HEAD
    assert change_log(db_url) == FAULT_FREE  # every change once: none lost, none repeated


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_two_first_polls_at_once_one_migrates_and_the_other_waits_for_it(
    config: Path, db_url: str, api: LocalApiServer, attempt: int
) -> None:
    """The second waits for the migration (it never fails for it); then it polls, or, if
    the first is still polling, exits 3 saying another process holds the writer lock."""
    hold = config.parent / "hold"
    hold.write_text("1")
    first = spawn(config, "poll", hold=hold)
    # The second starts once the first is inside its migration (a revision applied, not
    # committed): it finds the schema being made, not made, and waits; the first goes on
    # at once, or a little later each try.
    wait_for(first, "ctmonitor-migration: applied")
    second = spawn(config, "poll", hold=hold)
    wait_for(second, "ctmonitor-migration: waiting")
    time.sleep(0.2 * attempt)
    hold.unlink()
    results = []
    for proc in (first, second):
        _out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, err))
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 3]), results
    for code, err in results:
        assert "Traceback" not in err and "cannot open the database" not in err
        if code == 3:
            assert "another ctmonitor process holds the writer lock" in err
    assert revision(db_url) == HEAD
    assert not {t for t in tables(db_url) if t.startswith("_alembic_tmp")}
    assert change_log(db_url) == FAULT_FREE


def test_a_stray_alembic_copy_from_an_older_crash_is_cleaned_up(sqlite_url: str) -> None:
    engine = dbmod.make_engine(sqlite_url)
    try:
        dbmod.upgrade(engine, "0001")
        with engine.begin() as conn:  # what an older ctmonitor left when killed in a batch migration
            conn.execute(text("CREATE TABLE _alembic_tmp_studies (nct_id VARCHAR(11) PRIMARY KEY)"))
    finally:
        engine.dispose()
    db = open_database(sqlite_url, auto_upgrade=True)
    db.dispose()
    assert revision(sqlite_url) == HEAD
    assert "_alembic_tmp_studies" not in tables(sqlite_url)


def test_tables_an_older_crash_left_without_a_revision_are_replaced_when_empty(sqlite_url: str) -> None:
    raw = create_engine(sqlite_url)
    with raw.begin() as conn:  # the first CREATE TABLE of an interrupted non-atomic migration
        conn.execute(text("CREATE TABLE poll_runs (id INTEGER PRIMARY KEY)"))
    raw.dispose()
    db = open_database(sqlite_url, auto_upgrade=True)
    db.dispose()
    assert revision(sqlite_url) == HEAD


def test_tables_with_data_but_no_revision_are_refused_not_dropped(sqlite_url: str) -> None:
    raw = create_engine(sqlite_url)
    with raw.begin() as conn:
        conn.execute(text("CREATE TABLE studies (nct_id VARCHAR(11) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO studies VALUES ('NCT05938725')"))
    raw.dispose()
    with pytest.raises(dbmod.DatabaseError, match="holding data but no schema revision"):
        open_database(sqlite_url, auto_upgrade=True)
    assert tables(sqlite_url) == {"studies"}  # untouched


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'old.db'}"

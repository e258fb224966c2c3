"""Stopping: SIGTERM to a real `ctmonitor run` (and `ctmonitor poll`) during a long, paced
poll ends it within seconds, between two pages; the run is recorded as stopped, and the
next poll completes the change log exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.registry.localserver import Fault, LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.models import JobRun, PollRun, StudyRow
from tests.conftest import domain_records

CLI = [sys.executable, "-c", "from monitor.cli import main; raise SystemExit(main())"]
RECORDS = domain_records()


@pytest.fixture
def slow_api() -> Iterator[LocalApiServer]:
    """The registry at the pace of a slow day: every page of results takes a second."""
    registry = Registry()
    registry.replace(copy.deepcopy(RECORDS), "2026-11-02T09:00:05")
    with LocalApiServer(registry) as api:
        api.add_fault(Fault(status=None, delay=1.0, times=10_000))
        yield api


def write_config(tmp_path: Path, base_url: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f"""
[api]
base_url = "{base_url}"
min_interval_seconds = 0
page_size = 5
timeout_seconds = 10

[schedule]
timezone = "UTC"
poll = "* * * * *"   # due every minute: the service starts with a catch-up poll
full = ""
digest = ""
backfill = ""

[[queries]]
name = "everything"
term = "ALL"
""")
    return p


def start(config: Path, db_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CTMONITOR_DATABASE_URL": db_url},
    )


def wait_for_studies(database: Database, proc: subprocess.Popen[str], n: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        with database.session() as s:
            if len(list(s.scalars(select(StudyRow.nct_id)))) >= n:
                return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the poll never got going"
        time.sleep(0.1)


def outcomes(database: Database) -> list[str]:
    with database.session() as s:
        return list(s.scalars(select(PollRun.outcome).order_by(PollRun.id)))


def finish_with_a_poll(config: Path, db_url: str, database: Database, api: LocalApiServer) -> None:
    api.faults.clear()  # the registry back at full speed: the rest of the work is quick
    deadline = time.monotonic() + 20
    while True:  # PostgreSQL frees the stopped process's lock when its connection closes
        done = subprocess.run(
            [*CLI, "--config", str(config), "poll"],
            capture_output=True,
            text=True,
            env={**os.environ, "CTMONITOR_DATABASE_URL": db_url},
            timeout=300,
        )
        if done.returncode != 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert done.returncode == 0, done.stderr
    with database.engine.connect() as conn:
        log = Counter(tuple(r) for r in conn.exec_driver_sql("SELECT nct_id, kind FROM events"))
    n = len({r["protocolSection"]["identificationModule"]["nctId"] for r in RECORDS})
    assert sum(log.values()) == n and all(kind == "new_study" for _, kind in log)  # each study once


@pytest.mark.slow
@pytest.mark.parametrize("signals", [1, 2], ids=["one-sigterm", "two-sigterms"])
def test_the_service_stops_within_seconds_of_sigterm_and_the_next_poll_completes(
    tmp_path: Path, db_url: str, database: Database, slow_api: LocalApiServer, signals: int
) -> None:
    config = write_config(tmp_path, slow_api.base_url)
    proc = start(config, db_url, "run")
    wait_for_studies(database, proc, 10)  # two pages stored, thirty to go: half a minute of work left
    asked = time.monotonic()
    for _ in range(signals):
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    _out, err = proc.communicate(timeout=30)
    took = time.monotonic() - asked
    assert took < 10, f"took {took:.1f}s to stop"
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "SchedulerNotRunningError" not in err
    if signals == 2:
        assert "already stopping" in err or err.count("SIGTERM") >= 1
    assert outcomes(database) == ["stopped"]
    with database.session() as s:
        # (a scheduled poll that fired at a minute boundary meanwhile was skipped: the lock was held)
        ran = list(s.scalars(select(JobRun).where(JobRun.outcome != "skipped").order_by(JobRun.id)))
    assert [j.outcome for j in ran] == ["stopped"]
    assert "the next poll covers the rest" in (ran[0].detail or "")
    finish_with_a_poll(config, db_url, database, slow_api)
    assert outcomes(database) == ["stopped", "ok"]


@pytest.mark.slow
def test_a_poll_command_stops_between_pages_on_sigterm(
    tmp_path: Path, db_url: str, database: Database, slow_api: LocalApiServer
) -> None:
    config = write_config(tmp_path, slow_api.base_url)
    proc = start(config, db_url, "poll")
    wait_for_studies(database, proc, 10)
    asked = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - asked < 10
    assert proc.returncode == 1 and "STOPPED" in out and "Traceback" not in err
    assert outcomes(database) == ["stopped"]
    finish_with_a_poll(config, db_url, database, slow_api)

"""The service: job table from config, catch-up after downtime, clean stop on SIGTERM,
one poll between two instances, and the failure alert that fires once and recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.app.schedule import last_due, next_runs, triggers
from monitor.config import ScheduleSettings, Settings, SubscriberSettings
from monitor.ctis_config import CtisSettings
from monitor.literature_config import LiteratureSettings
from monitor.publishing.mailer import SmtpMailer
from monitor.registry.client import CtGovClient
from monitor.registry.localserver import Fault, LocalApiServer
from monitor.service import Service
from monitor.store.db import Database
from monitor.store.models import JobRun, PollRun
from tests.harness import FakeClock
from tests.smtp import SmtpServer, free_port

ROOT = Path(__file__).parent.parent


def test_job_table_from_config() -> None:
    settings = Settings(
        schedule=ScheduleSettings(
            timezone="Europe/Berlin", poll="15 11 * * mon-fri", full="", backfill="", literature="", ctis=""
        )
    )
    assert set(triggers(settings)) == {"poll"}  # full, backfill, literature off; digest needs subscribers
    assert set(triggers(Settings())) == {"poll", "full", "backfill", "literature", "ctis"}
    no_services = Settings(
        literature=LiteratureSettings(pubmed=False, europepmc=False), ctis=CtisSettings(enabled=False)
    )
    assert set(triggers(no_services)) == {"poll", "full", "backfill"}  # nothing to search, CTIS off
    with_subs = settings.model_copy(
        update={"subscribers": [SubscriberSettings(name="a", email="a@example.org")]}
    )
    nxt = next_runs(with_subs, datetime(2026, 11, 21, 12, 0))  # a Saturday, UTC
    assert set(nxt) == {"poll", "digest"}
    assert nxt["poll"].isoformat() == "2026-11-23T11:15:00+01:00"  # Monday, Berlin time
    assert nxt["digest"].isoformat() == "2026-11-23T07:00:00+01:00"


def test_scheduler_job_defaults(database: Database) -> None:
    settings = Settings(subscribers=[SubscriberSettings(name="a", email="a@example.org")])
    sched = Service(settings, database).build_scheduler(blocking=False)
    sched.start(paused=True)  # defaults are applied when jobs are added to a started scheduler
    jobs = {j.id: j for j in sched.get_jobs()}
    sched.shutdown(wait=False)
    assert set(jobs) == {"poll", "full", "digest", "backfill", "literature", "ctis"}
    for j in jobs.values():
        assert j.coalesce is True and j.max_instances == 1 and j.misfire_grace_time == 12 * 3600


def test_last_due() -> None:
    trig = triggers(Settings())["poll"]  # 10:30 New York, weekdays
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # Monday 13:00 in New York
    assert last_due(trig, now, timedelta(hours=12)) == datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    assert last_due(trig, now, timedelta(hours=1)) is None


def test_a_job_missed_while_down_runs_once_on_start(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    settings = settings_for(api.base_url)
    # Backfill and literature off: their 12:00 and 13:00 runs would be more misses.
    settings = settings.model_copy(update={"schedule": ScheduleSettings(backfill="", literature="", ctis="")})
    clock = FakeClock(datetime(2026, 11, 23, 18, 0))  # 13:00 New York: the 10:30 poll was missed
    service = Service(settings, database, now=clock)
    assert [job for job, _ in service.missed()] == ["poll"]
    job, due = service.missed()[0]
    assert service.run_job(job, due) == "ok"
    assert service.missed() == []  # once
    clock.t = datetime(2026, 11, 25, 8, 0)  # two days later, 03:00 New York: the last miss is too old
    assert service.missed() == []


def test_two_instances_on_one_database_do_one_poll(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    settings = settings_for(api.base_url)
    api.add_fault(Fault(path="/api/v2/studies", delay=1.0))  # keep the first poll busy
    a, b = Service(settings, database), Service(settings, database)
    outcomes: dict[str, str] = {}
    ta = threading.Thread(target=lambda: outcomes.__setitem__("a", a.run_job("poll")))
    ta.start()
    time.sleep(0.4)
    outcomes["b"] = b.run_job("poll")
    ta.join()
    assert sorted(outcomes.values()) == ["ok", "skipped"]
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(PollRun)) == 1
        skipped = s.scalars(select(JobRun).where(JobRun.outcome == "skipped")).one()
        assert "holds the writer lock" in (skipped.detail or "")


def test_failure_alert_fires_once_and_recovery_is_mailed(
    database: Database, api: LocalApiServer, settings_for, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with SmtpServer(tmp_path) as smtp:
        base = settings_for(dead, max_attempts=1)
        settings = base.model_copy(
            update={
                "smtp": smtp.settings(),
                "schedule": ScheduleSettings(alert_after_failures=2, admin_email="admin@example.org"),
            }
        )
        service = Service(settings, database, mailer_factory=lambda: SmtpMailer(smtp.settings()))
        assert service.run_job("poll") == "failed"
        assert smtp.messages == []
        assert service.run_job("poll") == "failed"
        assert len(smtp.messages) == 1 and "ALERT: 2 polls failed in a row" in smtp.messages[0]["Subject"]
        assert (
            "connection failed" in smtp.messages[0].get_content()
            or "connect" in smtp.messages[0].get_content()
        )
        assert service.run_job("poll") == "failed"
        assert len(smtp.messages) == 1  # once

        live = settings_for(api.base_url).api
        service.settings = settings.model_copy(update={"api": live})
        service.client_factory = lambda: CtGovClient(live)
        assert service.run_job("poll") == "ok"
        assert len(smtp.messages) == 2 and "Recovered" in smtp.messages[1]["Subject"]
        assert service.run_job("poll") == "ok"
        assert len(smtp.messages) == 2


def test_sigterm_during_a_poll_stops_cleanly_and_leaves_a_consistent_database(
    tmp_path: Path, api: LocalApiServer
) -> None:
    db_path = tmp_path / "svc.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[database]\npath = "{db_path}"\n[api]\nbase_url = "{api.base_url}"\nmin_interval_seconds = 0\n'
        'page_size = 2\n[schedule]\ntimezone = "UTC"\npoll = "* * * * *"\nfull = ""\nbackfill = ""\n'
        'misfire_grace_hours = 1.0\n[[queries]]\nname = "everything"\nterm = "ALL"\n'
    )
    for _ in range(6):  # every page is slow: the poll is still running when SIGTERM arrives
        api.add_fault(Fault(path="/api/v2/studies", delay=0.5))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "--config", str(cfg), "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 30
        database = Database(f"sqlite:///{db_path}")
        while time.time() < deadline:  # the catch-up poll starts at once
            time.sleep(0.2)
            try:
                with database.session() as s:
                    if s.scalar(
                        select(func.count()).select_from(PollRun).where(PollRun.outcome == "running")
                    ):
                        break
            except Exception:
                continue
        else:
            pytest.fail("the service did not start a poll")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopping (a running poll stops after its current page)" in out and "service stopped" in out
    with database.session() as s:
        runs = s.scalars(select(PollRun)).all()
        # the poll stopped after a page (or had just finished its last one): nothing half-written
        assert [r.outcome for r in runs] in (["stopped"], ["ok"])
        assert s.scalars(select(JobRun.outcome).where(JobRun.outcome != "skipped")).all() == [runs[0].outcome]
    database.dispose()

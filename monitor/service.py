"""The long-running service: `ctmonitor run` schedules the poll, the weekly full reconciliation,
the digests and the backfill of newly tracked studies (APScheduler 3), catches up a job
missed while it was down, and mails the administrator when polling keeps failing.

The jobs call the same functions as the commands (`Syncer.poll`, `delivery.send_due`,
`Backfiller.run`) and take the same locks, so two instances on one PostgreSQL database
never poll, send or backfill twice: the second one records the run as skipped. Every run
is a row in `job_runs`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor import delivery
from monitor.backfill import Backfiller
from monitor.classify import Classifier
from monitor.config import Settings
from monitor.ctgov import CtGovClient
from monitor.db import Database
from monitor.locking import LockBusy
from monitor.mailer import Mailer, SmtpMailer
from monitor.models import Delivery, JobRun
from monitor.sync import Syncer, utcnow

log = logging.getLogger(__name__)
JOBS = ("poll", "full", "digest", "backfill")
POLL_JOBS = ("poll", "full")


def triggers(settings: Settings) -> dict[str, CronTrigger]:
    """The configured jobs and their cron triggers (a job with an empty expression is off)."""
    tz = ZoneInfo(settings.schedule.timezone)
    out = {}
    for job in JOBS:
        expr = getattr(settings.schedule, job)
        if expr and (job != "digest" or settings.subscribers):
            out[job] = CronTrigger.from_crontab(expr, timezone=tz)
    return out


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def next_runs(settings: Settings, now: datetime) -> dict[str, datetime | None]:
    return {job: t.get_next_fire_time(None, _aware(now)) for job, t in triggers(settings).items()}


def upcoming(settings: Settings, now: datetime, n: int = 3) -> dict[str, list[datetime]]:
    """Each configured job's next `n` run times; an empty list for an expression that
    never fires (`0 0 31 2 *`: February has no 31st), which would silently switch it off."""
    out: dict[str, list[datetime]] = {}
    for job, trig in triggers(settings).items():
        times: list[datetime] = []
        t = trig.get_next_fire_time(None, _aware(now))
        while t is not None and len(times) < n:
            times.append(t)
            t = trig.get_next_fire_time(t, t + timedelta(seconds=1))
        out[job] = times
    return out


def never_firing(settings: Settings, now: datetime) -> list[str]:
    """Warnings, one a job whose cron expression never fires."""
    return [
        f"schedule.{job} = {getattr(settings.schedule, job)!r} never fires, so the {job} job is off; "
        'fix the expression, or set it to "" to switch the job off on purpose'
        for job, times in upcoming(settings, now, 1).items()
        if not times
    ]


def last_due(trigger: CronTrigger, now: datetime, grace: timedelta) -> datetime | None:
    """The latest time the trigger fired in (now - grace, now], if any."""
    now = _aware(now)
    t = trigger.get_next_fire_time(None, now - grace)
    last = None
    while t is not None and t <= now:
        last = t
        t = trigger.get_next_fire_time(t, t + timedelta(seconds=1))
    return last


def _naive_utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


@dataclass(slots=True)
class JobHealth:
    job: str
    next_run: datetime | None
    last_started: datetime | None
    last_outcome: str | None
    last_detail: str | None
    failures_in_a_row: int


def job_health(session: Session, settings: Settings, now: datetime) -> list[JobHealth]:
    out = []
    for job, nxt in next_runs(settings, now).items():
        runs = list(
            session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id.desc()).limit(50))
        )
        last = runs[0] if runs else None
        out.append(
            JobHealth(
                job,
                nxt,
                last.started_at if last else None,
                last.outcome if last else None,
                last.detail if last else None,
                _failures([r.outcome for r in runs]),
            )
        )
    return out


def _failures(outcomes: list[str]) -> int:
    """Failed runs in a row, newest first (skipped and running runs neither count nor break the run)."""
    n = 0
    for o in outcomes:
        if o == "failed":
            n += 1
        elif o == "ok":
            break
    return n


class Service:
    """Runs jobs against one database; used by `ctmonitor run` and by the tests with a fake clock."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        now: Callable[[], datetime] = utcnow,
        client_factory: Callable[[], CtGovClient] | None = None,
        mailer_factory: Callable[[], Mailer] | None = None,
    ) -> None:
        self.settings, self.db, self.now = settings, database, now
        self.client_factory = client_factory or (lambda: CtGovClient(settings.api))
        self.mailer_factory = mailer_factory or (lambda: SmtpMailer(settings.smtp))
        self.classifier = Classifier.from_settings(settings)
        self.stopping = threading.Event()

    # -- one job ------------------------------------------------------------------------

    def run_job(self, job: str, scheduled_for: datetime | None = None) -> str:
        """Run one job now and record it; returns its outcome (ok, failed or skipped)."""
        with self.db.session() as s:
            row = JobRun(
                job=job,
                scheduled_for=_naive_utc(scheduled_for) if scheduled_for else None,
                started_at=self.now(),
                outcome="running",
                host=socket.gethostname(),
            )
            s.add(row)
            s.flush()
            run_id = row.id
        outcome, detail = "failed", None
        try:
            outcome, detail = self._body(job)
        except LockBusy as exc:
            outcome, detail = "skipped", str(exc)
        except Exception as exc:  # a job never takes the service down; the error is recorded
            log.exception("job %s failed", job)
            outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            with self.db.session() as s:
                s.execute(
                    update(JobRun)
                    .where(JobRun.id == run_id)
                    .values(outcome=outcome, detail=detail, finished_at=self.now())
                )
        log.info("job %s: %s%s", job, outcome, f" ({detail})" if detail else "")
        if job in POLL_JOBS and outcome != "skipped":
            self._alerts()
        return outcome

    def _body(self, job: str) -> tuple[str, str | None]:
        if job in POLL_JOBS:
            with self.client_factory() as client:
                summary = Syncer(
                    self.db, client, self.settings, now=self.now, classifier=self.classifier
                ).poll(full=job == "full", should_stop=self.stopping.is_set)
            detail = (
                f"run #{summary.run_id} {summary.mode}: {summary.events} events, {summary.fetched} fetched"
            )
            if summary.outcome == "failed":
                return "failed", f"run #{summary.run_id}: {summary.error}"
            if summary.outcome == "stopped":  # SIGTERM: not a failure; the next poll covers the rest
                return "stopped", f"{detail}; {summary.error}"
            return "ok", detail
        if job == "digest":
            outcomes = delivery.send_due(
                self.db, self.settings, self.classifier, self.mailer_factory(), now=self.now()
            )
            failed = [o for o in outcomes if o.status == "failed"]
            sent = sum(o.status == "sent" for o in outcomes)
            if failed:
                return "failed", "; ".join(f"{o.subscriber}: {o.error}" for o in failed)
            return "ok", f"{sent} digests sent"
        if job == "backfill":
            with self.client_factory() as client:
                summary = Backfiller(self.db, client, now=self.now).run(
                    limit=self.settings.backfill.studies_per_run or None, should_stop=self.stopping.is_set
                )
            # A stop request (SIGTERM) is not a failure; the registry withdrawing the endpoint,
            # not answering, or refusing a study is, so that `ctmonitor status` shows it.
            interrupted = summary.stopped == "asked to stop"
            failed = summary.count("failed") > 0 or (summary.stopped is not None and not interrupted)
            return ("failed" if failed else "ok"), summary.text()
        raise ValueError(f"unknown job {job!r}")

    # -- alerts ---------------------------------------------------------------------------

    def _alerts(self) -> None:
        """One alert after N failed polls in a row, one recovery mail when polling works again."""
        n = self.settings.schedule.alert_after_failures
        with self.db.session() as s:
            outcomes = list(
                s.scalars(
                    select(JobRun.outcome)
                    .where(JobRun.job.in_(POLL_JOBS))
                    .order_by(JobRun.id.desc())
                    .limit(max(n, 1) + 50)
                )
            )
            details = list(
                s.scalars(
                    select(JobRun.detail)
                    .where(JobRun.job.in_(POLL_JOBS), JobRun.outcome == "failed")
                    .order_by(JobRun.id.desc())
                    .limit(n)
                )
            )
            last = s.scalars(
                select(Delivery)
                .where(Delivery.kind.in_(("alert", "recovery")), Delivery.status == "sent")
                .order_by(Delivery.id.desc())
                .limit(1)
            ).first()
            alerted = last is not None and last.kind == "alert"
        failures = _failures(outcomes)
        if failures >= n and not alerted:
            body = (
                f"ctmonitor on {socket.gethostname()}: the last {failures} polls failed, so the change log "
                "and the digests are falling behind.\n\nLatest errors:\n"
                + "\n".join(f"- {d}" for d in details)
                + "\n\nctmonitor keeps trying at every scheduled poll; `ctmonitor status` shows the details. "
                "You will get one more mail when a poll succeeds again.\n"
            )
            self._admin_mail(
                "alert",
                f"{self.settings.digest.subject_prefix} ALERT: {failures} polls failed in a row",
                body,
            )
        elif failures == 0 and outcomes and outcomes[0] == "ok" and alerted:
            when = f"{self.now():%Y-%m-%d %H:%M} UTC"
            body = f"ctmonitor on {socket.gethostname()}: polling works again ({when}).\n"
            self._admin_mail(
                "recovery", f"{self.settings.digest.subject_prefix} Recovered: polls succeed again", body
            )

    def _admin_mail(self, kind: str, subject: str, body: str) -> None:
        admin = self.settings.schedule.admin_email
        if not admin:
            log.error("%s (no schedule.admin_email configured): %s", subject, body.splitlines()[0])
            return
        smtp = self.settings.smtp
        now = self.now()
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = f"{smtp.from_name} <{smtp.from_address}>"
        msg["To"] = admin
        msg["Date"] = format_datetime(now.replace(tzinfo=UTC) if now.tzinfo is None else now)
        msg["Message-ID"] = make_msgid(
            "ctmonitor-" + kind, domain=(smtp.from_address or "x@localhost").rpartition("@")[2]
        )
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(body)
        with self.db.session() as s:
            row = Delivery(
                subscriber="admin",
                address=admin,
                kind=kind,
                status="sending",
                created_at=now,
                period_end=now,
                message_id=msg["Message-ID"],
                subject=subject,
            )
            s.add(row)
            s.flush()
            row_id = row.id
        try:
            self.mailer_factory().send(msg)
            status, error = "sent", None
        except Exception as exc:  # MailError, or a config problem such as no smtp.host
            log.error("cannot send the %s mail to %s: %s", kind, admin, exc)
            status, error = "failed", str(exc)
        with self.db.session() as s:
            s.execute(
                update(Delivery)
                .where(Delivery.id == row_id)
                .values(status=status, error=error, finished_at=now)
            )

    # -- scheduling ----------------------------------------------------------------------

    def missed(self, now: datetime | None = None) -> list[tuple[str, datetime]]:
        """Jobs whose last scheduled time (within the grace period) has no run since: run each once."""
        now = now or self.now()
        grace = timedelta(hours=self.settings.schedule.misfire_grace_hours)
        out = []
        with self.db.session() as s:
            for job, trig in triggers(self.settings).items():
                due = last_due(trig, now, grace)
                if due is None:
                    continue
                latest = s.scalar(
                    select(JobRun.started_at)
                    .where(JobRun.job == job, JobRun.outcome != "skipped")
                    .order_by(JobRun.id.desc())
                    .limit(1)
                )
                if latest is None or latest < _naive_utc(due):
                    out.append((job, due))
        return out

    def build_scheduler(self, blocking: bool = True) -> Any:
        """The scheduler with one cron job per configured job: fixed ids, explicit defaults."""
        defaults = {
            "coalesce": True,  # several missed fire times run once
            "max_instances": 1,  # never two runs of one job at once in this process
            "misfire_grace_time": int(self.settings.schedule.misfire_grace_hours * 3600) or 1,
        }
        cls = BlockingScheduler if blocking else BackgroundScheduler
        sched = cls(job_defaults=defaults, timezone=ZoneInfo(self.settings.schedule.timezone))
        for job, trig in triggers(self.settings).items():
            sched.add_job(self.run_job, trig, args=[job], id=job, name=job, replace_existing=True)
        return sched

    def serve(self) -> None:
        """Block until SIGTERM or SIGINT. A running poll stops after the page it is on, a
        backfill after the version it is on (each is its own transaction, and the next run
        covers the rest), a digest after the mail it is sending; so the service ends within
        seconds. More signals while it stops are harmless."""
        sched = self.build_scheduler(blocking=True)
        for job, due in self.missed():
            log.warning("job %s was due at %s while the service was down: running it now", job, due)
            sched.add_job(self.run_job, "date", args=[job, due], id=f"catch-up-{job}", run_date=None)

        def shutdown() -> None:
            with contextlib.suppress(SchedulerNotRunningError):  # not started yet, or already stopped
                sched.shutdown(wait=True)

        def stop(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self.stopping.is_set():
                log.info("signal %s: already stopping", name)
                return
            log.warning("signal %s: stopping (a running poll stops after its current page)", name)
            self.stopping.set()
            threading.Thread(target=shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        sched.start()

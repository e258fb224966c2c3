"""The long-running service: `ctmonitor run` schedules the poll, the weekly full reconciliation,
the digests and the backfill of newly tracked studies (APScheduler 3), catches up a job
missed while it was down, and mails the administrator when polling keeps failing.

The jobs are the application's use cases, the same the commands call (`Application.poll`,
`.send_digests`, `.backfill`), and take the same locks, so two instances on one PostgreSQL database
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
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from monitor import store
from monitor.app import Application
from monitor.app.schedule import POLL_JOBS, _failures, _naive_utc, last_due, triggers
from monitor.config import Settings
from monitor.core.domain import DeliveryKind, DeliveryStatus, JobOutcome
from monitor.publishing.mailer import Mailer, SmtpMailer
from monitor.registry.client import CtGovClient
from monitor.store.db import Database
from monitor.store.locking import LockBusy
from monitor.tracking.sync import utcnow

log = logging.getLogger(__name__)
ADMIN_KINDS = (DeliveryKind.ALERT, DeliveryKind.RECOVERY)


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
        self.app = Application(
            settings,
            database=database,
            now=now,
            client_factory=lambda: self.client_factory(),
            mailer_factory=lambda: self.mailer_factory(),
        )
        self.stopping = threading.Event()

    # -- one job ------------------------------------------------------------------------

    def run_job(self, job: str, scheduled_for: datetime | None = None) -> JobOutcome:
        """Run one job now and record it; returns its outcome (ok, failed or skipped)."""
        with self.db.session() as s:
            run_id = store.start_job(
                s,
                job,
                scheduled_for=_naive_utc(scheduled_for) if scheduled_for else None,
                now=self.now(),
                host=socket.gethostname(),
            )
        outcome, detail = JobOutcome.FAILED, None
        try:
            outcome, detail = self._body(job)
        except LockBusy as exc:
            outcome, detail = JobOutcome.SKIPPED, str(exc)
        except Exception as exc:  # a job never takes the service down; the error is recorded
            log.exception("job %s failed", job)
            outcome, detail = JobOutcome.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            with self.db.session() as s:
                store.end_job(s, run_id, outcome, detail, self.now())
        log.info("job %s: %s%s", job, outcome, f" ({detail})" if detail else "")
        if job in POLL_JOBS and outcome != JobOutcome.SKIPPED:
            self._alerts()
        return outcome

    def _body(self, job: str) -> tuple[JobOutcome, str | None]:
        """A job is one use case of the application; its result says how the job went."""
        jobs: dict[str, Callable[[], tuple[JobOutcome, str | None]]] = {
            "poll": lambda: self._poll(full=False),
            "full": lambda: self._poll(full=True),
            "digest": self._digest,
            "backfill": self._backfill,
            "literature": self._literature,
            "ctis": lambda: self._poll(full=False, registry="ctis"),
        }
        if job not in jobs:
            raise ValueError(f"unknown job {job!r}")
        return jobs[job]()

    def _poll(self, *, full: bool, registry: str = "ctgov") -> tuple[JobOutcome, str | None]:
        result = self.app.poll(full=full, should_stop=self.stopping.is_set, registry=registry)
        return result.job_outcome(), result.job_detail()

    def _digest(self) -> tuple[JobOutcome, str | None]:
        result = self.app.send_digests()
        return result.job_outcome(), result.job_detail()

    def _backfill(self) -> tuple[JobOutcome, str | None]:
        result = self.app.backfill(should_stop=self.stopping.is_set)  # backfill.studies_per_run
        return result.job_outcome(), result.summary.text()

    def _literature(self) -> tuple[JobOutcome, str | None]:
        result = self.app.literature(should_stop=self.stopping.is_set)
        outcome = JobOutcome.STOPPED if result.stopped else JobOutcome.OK if result.ok else JobOutcome.FAILED
        return outcome, result.text()

    # -- alerts ---------------------------------------------------------------------------

    def _alerts(self) -> None:
        """One alert after N failed polls in a row, one recovery mail when polling works again."""
        n = self.settings.schedule.alert_after_failures
        with self.db.session() as s:
            outcomes = [r.outcome for r in store.recent_jobs(s, POLL_JOBS, max(n, 1) + 50)]
            details = store.recent_failure_details(s, POLL_JOBS, n)
            last = store.last_sent_of_kinds(s, ADMIN_KINDS)
            alerted = last is not None and last.kind == DeliveryKind.ALERT
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
                DeliveryKind.ALERT,
                f"{self.settings.digest.subject_prefix} ALERT: {failures} polls failed in a row",
                body,
            )
        elif failures == 0 and outcomes and outcomes[0] == JobOutcome.OK and alerted:
            when = f"{self.now():%Y-%m-%d %H:%M} UTC"
            body = f"ctmonitor on {socket.gethostname()}: polling works again ({when}).\n"
            self._admin_mail(
                DeliveryKind.RECOVERY,
                f"{self.settings.digest.subject_prefix} Recovered: polls succeed again",
                body,
            )

    def _admin_mail(self, kind: DeliveryKind, subject: str, body: str) -> None:
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
            row_id = store.begin_delivery(
                s,
                subscriber="admin",
                address=admin,
                kind=kind,
                created_at=now,
                period_end=now,
                message_id=msg["Message-ID"],
                subject=subject,
            ).id
        try:
            self.mailer_factory().send(msg)
            status, error = DeliveryStatus.SENT, None
        except Exception as exc:  # MailError, or a config problem such as no smtp.host
            log.error("cannot send the %s mail to %s: %s", kind, admin, exc)
            status, error = DeliveryStatus.FAILED, str(exc)
        with self.db.session() as s:
            store.end_delivery(s, row_id, status, now, error=error)

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
                latest = store.last_job_start(s, job)
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
        if changed := self.app.sync_subscribers():
            log.info("subscribers from config.toml brought in: %s", ", ".join(changed))
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

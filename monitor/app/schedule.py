"""The schedule: which jobs run when (cron triggers of [schedule]), what was missed, and
how each job has been doing. Read by the service, `status` and `check-config`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from monitor import store
from monitor.config import Settings
from monitor.core.domain import JobOutcome
from monitor.store import Session

JOBS = ("poll", "full", "digest", "backfill", "literature", "ctis")
POLL_JOBS = ("poll", "full")


def triggers(settings: Settings) -> dict[str, CronTrigger]:
    """The configured jobs and their cron triggers (a job with an empty expression is off)."""
    tz = ZoneInfo(settings.schedule.timezone)
    out = {}
    for job in JOBS:
        expr = getattr(settings.schedule, job)
        # the digest job runs with subscribers in config.toml, or with sign-up open on the web
        signup = settings.web.signup and bool(settings.web.base_url)
        lit = settings.literature.pubmed or settings.literature.europepmc
        wanted = {
            "digest": bool(settings.subscribers or signup),
            "literature": lit,
            "ctis": settings.ctis.enabled,
        }
        if expr and wanted.get(job, True):
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
        runs = store.recent_jobs(session, [job], 50)
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
        if o == JobOutcome.FAILED:
            n += 1
        elif o == JobOutcome.OK:
            break
    return n

"""The service's job runs: one row per scheduled job, written before it starts and ended
with its outcome, so missed jobs are found after downtime and failures are counted.
Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.core.domain import JobOutcome
from monitor.store.models import JobRun


def start_job(session: Session, job: str, *, scheduled_for: datetime | None, now: datetime, host: str) -> int:
    row = JobRun(job=job, scheduled_for=scheduled_for, started_at=now, outcome=JobOutcome.RUNNING, host=host)
    session.add(row)
    session.flush()
    return row.id


def end_job(session: Session, run_id: int, outcome: str, detail: str | None, now: datetime) -> None:
    session.execute(
        update(JobRun).where(JobRun.id == run_id).values(outcome=outcome, detail=detail, finished_at=now)
    )


def recent_jobs(session: Session, jobs: Sequence[str], limit: int) -> list[JobRun]:
    """The newest runs of these jobs, newest first."""
    return list(
        session.scalars(
            select(JobRun).where(JobRun.job.in_(list(jobs))).order_by(JobRun.id.desc()).limit(limit)
        )
    )


def recent_failure_details(session: Session, jobs: Sequence[str], limit: int) -> list[str | None]:
    return list(
        session.scalars(
            select(JobRun.detail)
            .where(JobRun.job.in_(list(jobs)), JobRun.outcome == JobOutcome.FAILED)
            .order_by(JobRun.id.desc())
            .limit(limit)
        )
    )


def last_job_start(session: Session, job: str) -> datetime | None:
    """When this job last started (skipped runs do not count: they did not do the work)."""
    return session.scalar(
        select(JobRun.started_at)
        .where(JobRun.job == job, JobRun.outcome != JobOutcome.SKIPPED)
        .order_by(JobRun.id.desc())
        .limit(1)
    )

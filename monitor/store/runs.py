"""Poll runs: started, finished, judged; the last successful one sets the next window.

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import SUCCESSFUL_RUNS, UNSUCCESSFUL_RUNS, RunOutcome
from monitor.store.models import PollRun

SUCCESSFUL = SUCCESSFUL_RUNS  # a successful poll: it read the registry, or found its data unchanged
UNSUCCESSFUL = UNSUCCESSFUL_RUNS  # ended before it finished: the next poll covers its window


def start_run(session: Session, *, mode: str, now: datetime, host: str, query_hash: str) -> int:
    run = PollRun(
        mode=mode,
        started_at=now,
        outcome=RunOutcome.RUNNING,
        host=host,
        query_hash=query_hash,
        requests=0,
        fetched=0,
        expected=0,
        new_studies=0,
        changed_studies=0,
        events=0,
        held=False,
    )
    session.add(run)
    session.flush()
    return run.id


def mark_crashed_runs(session: Session, now: datetime) -> list[int]:
    """Runs still 'running' when we hold the lock died without finishing; say so. Returns their ids."""
    ids = list(session.scalars(select(PollRun.id).where(PollRun.outcome == RunOutcome.RUNNING)))
    if ids:
        session.execute(
            update(PollRun)
            .where(PollRun.id.in_(ids))
            .values(
                outcome=RunOutcome.CRASHED,
                finished_at=now,
                error="the process ended before the poll finished",
            )
        )
    return ids


def finish_run(session: Session, run_id: int, **values: Any) -> None:
    session.execute(update(PollRun).where(PollRun.id == run_id).values(**values))


def last_run(session: Session, *, outcomes: Sequence[str], mode: str | None = None) -> PollRun | None:
    stmt = select(PollRun).where(PollRun.outcome.in_(outcomes))
    if mode:
        stmt = stmt.where(PollRun.mode == mode)
    return session.scalars(stmt.order_by(PollRun.id.desc()).limit(1)).first()


def recent_runs(session: Session, limit: int = 10) -> list[PollRun]:
    return list(session.scalars(select(PollRun).order_by(PollRun.id.desc()).limit(limit)))


def unsuccessful_before(session: Session, run_id: int) -> list[int]:
    """The failed, crashed or stopped runs since the last successful poll before `run_id`: with it,
    one attempt at the same picture, which the hold guard judges as a whole."""
    last_ok = session.scalar(
        select(func.max(PollRun.id)).where(PollRun.id < run_id, PollRun.outcome.in_(SUCCESSFUL))
    )
    stmt = select(PollRun.id).where(PollRun.id < run_id, PollRun.outcome.in_(UNSUCCESSFUL))
    if last_ok is not None:
        stmt = stmt.where(PollRun.id > last_ok)
    return list(session.scalars(stmt.order_by(PollRun.id)))


def last_finished_run(session: Session) -> PollRun | None:
    """The newest poll that is not still running, whatever its outcome."""
    return session.scalars(
        select(PollRun).where(PollRun.outcome != RunOutcome.RUNNING).order_by(PollRun.id.desc()).limit(1)
    ).first()


def baseline_runs(session: Session) -> frozenset[int]:
    """Runs that reached studies in bulk because the watch queries were new to the database.

    A run is a baseline run until a successful run has completed with the same query hash:
    the first poll ever (and its retries), and the first after the queries changed.
    """
    done: set[str | None] = set()
    out: set[int] = set()
    for run_id, qhash, outcome in session.execute(
        select(PollRun.id, PollRun.query_hash, PollRun.outcome).order_by(PollRun.id)
    ):
        if qhash not in done:
            out.add(run_id)
        if outcome == RunOutcome.OK:
            done.add(qhash)
    return frozenset(out)

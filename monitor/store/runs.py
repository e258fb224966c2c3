"""Poll runs: started, finished, judged; the last successful one sets the next window.

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from monitor.core.domain import SUCCESSFUL_RUNS, UNSUCCESSFUL_RUNS, PollSummary, RunOutcome
from monitor.store.models import Event, PollRun

# Each registry's polls are one family of runs (their windows, reconciliations and hold
# guard are their own): ClinicalTrials.gov's modes, and EU CTIS's.
CTGOV_MODES = ("full", "incremental")
CTIS_MODES = ("ctis-full", "ctis-incremental")


def family(mode: str) -> tuple[str, ...]:
    return CTIS_MODES if mode in CTIS_MODES else CTGOV_MODES


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


def set_run_source(session: Session, run_id: int, source: str) -> None:
    """What a run read, when it read a file (an ICTRP import): shown by `status`."""
    session.execute(update(PollRun).where(PollRun.id == run_id).values(source=source))


def mark_crashed_runs(session: Session, now: datetime, modes: Sequence[str] = CTGOV_MODES) -> list[int]:
    """Runs of a registry's family still 'running' when we hold the lock died without
    finishing; say so. Returns their ids."""
    ids = list(
        session.scalars(
            select(PollRun.id).where(PollRun.outcome == RunOutcome.RUNNING, PollRun.mode.in_(list(modes)))
        )
    )
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


def finish_run(session: Session, summary: PollSummary, finished_at: datetime) -> None:
    """Write a poll's record to its run row; its events are counted from the change log."""
    summary.events_by_kind = count_events_by_kind(session, summary.run_id)
    session.execute(
        update(PollRun)
        .where(PollRun.id == summary.run_id)
        .values(
            outcome=summary.outcome,
            finished_at=finished_at,
            window_start=summary.window_start,
            data_timestamp=summary.data_timestamp,
            requests=summary.requests,
            fetched=summary.fetched,
            expected=summary.expected,
            new_studies=summary.new_studies,
            changed_studies=summary.changed_studies,
            events=summary.events,
            held=summary.held,
            error=summary.error,
            baselined=summary.baselined,
        )
    )


def poll_summary(session: Session, run: PollRun) -> PollSummary:
    """A stored run read back as the poll's record."""
    started, finished = run.started_at, run.finished_at
    return PollSummary(
        run_id=run.id,
        mode=run.mode,
        outcome=run.outcome,
        window_start=run.window_start,
        fetched=run.fetched,
        expected=run.expected,
        new_studies=run.new_studies,
        changed_studies=run.changed_studies,
        requests=run.requests,
        seconds=(finished - started).total_seconds() if finished and started else 0.0,
        events_by_kind=count_events_by_kind(session, run.id),
        held=run.held,
        data_timestamp=run.data_timestamp,
        error=run.error,
        baselined=run.baselined or 0,
    )


def last_run(
    session: Session, *, outcomes: Sequence[str], mode: str | None = None, modes: Sequence[str] = CTGOV_MODES
) -> PollRun | None:
    """The newest run with one of these outcomes, of one registry's family (ClinicalTrials.gov's
    by default), or of one mode."""
    stmt = select(PollRun).where(PollRun.outcome.in_(outcomes), PollRun.mode.in_(list(modes)))
    if mode:
        stmt = stmt.where(PollRun.mode == mode)
    return session.scalars(stmt.order_by(PollRun.id.desc()).limit(1)).first()


def recent_runs(session: Session, limit: int = 10) -> list[PollRun]:
    return list(session.scalars(select(PollRun).order_by(PollRun.id.desc()).limit(limit)))


def unsuccessful_before(session: Session, run_id: int) -> list[int]:
    """The failed, crashed or stopped runs since the last successful poll before `run_id`: with it,
    one attempt at the same picture, which the hold guard judges as a whole."""
    modes = list(family(session.scalar(select(PollRun.mode).where(PollRun.id == run_id)) or ""))
    last_ok = session.scalar(
        select(func.max(PollRun.id)).where(
            PollRun.id < run_id, PollRun.outcome.in_(SUCCESSFUL), PollRun.mode.in_(modes)
        )
    )
    stmt = select(PollRun.id).where(
        PollRun.id < run_id, PollRun.outcome.in_(UNSUCCESSFUL), PollRun.mode.in_(modes)
    )
    if last_ok is not None:
        stmt = stmt.where(PollRun.id > last_ok)
    return list(session.scalars(stmt.order_by(PollRun.id)))


def last_finished_run(session: Session, modes: Sequence[str] = CTGOV_MODES) -> PollRun | None:
    """The newest poll of a registry's family that is not still running, whatever its outcome."""
    return session.scalars(
        select(PollRun)
        .where(PollRun.outcome != RunOutcome.RUNNING, PollRun.mode.in_(list(modes)))
        .order_by(PollRun.id.desc())
        .limit(1)
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


def count_events_by_kind(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Event.kind, func.count()).where(Event.run_id == run_id).group_by(Event.kind)
    )
    return {k: n for k, n in rows}

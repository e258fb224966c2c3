"""The trial each tracked registration belongs to (core.trials): what the regrouping after
a poll or import reads, and its writes. Nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from monitor.store import index
from monitor.store.models import StudyRow


def trial_members(session: Session) -> list[Any]:
    """Every current registration (not gone, not renumbered) with what joins it to others
    and its trial as last stored."""
    stmt = select(
        StudyRow.nct_id,
        StudyRow.registered_on,
        StudyRow.registrations,
        StudyRow.in_scope,
        StudyRow.trial_id,
        StudyRow.trial_registrations,
        StudyRow.trial_status,
        StudyRow.overall_status,
        StudyRow.registry_status,
        StudyRow.snapshot_count,
        StudyRow.last_update_post_date,
    ).where(StudyRow.gone.is_(False), StudyRow.merged_into.is_(None))
    return list(session.execute(stmt.order_by(StudyRow.nct_id)))


def trial_member_ids(session: Session, trial_id: str) -> list[str]:
    """The tracked registrations of one trial (its standing one included)."""
    return list(session.scalars(select(StudyRow.nct_id).where(StudyRow.trial_id == trial_id)))


def left_trials(session: Session, current: Iterable[str]) -> list[str]:
    """Registrations no longer current (gone, renumbered) that still name a trial."""
    keep = set(current)
    stmt = select(StudyRow.nct_id).where(StudyRow.trial_id.is_not(None))
    return [n for n in session.scalars(stmt) if n not in keep]


def set_trials(session: Session, values: Sequence[Mapping[str, Any]]) -> None:
    """Write each registration's trial: rows of {nct_id, trial_id, trial_registrations,
    trial_status}."""
    if not values:
        return
    # what the landscape's index reads of a trial (store.index): the registration standing
    # for it when another, and its registrations; a registration alone standing for itself
    # (every study of a first sync) is what its entry already says
    ids = [v["nct_id"] for v in values]
    before: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 500):
        stmt_old = select(StudyRow.nct_id, StudyRow.trial_id, StudyRow.trial_registrations).where(
            StudyRow.nct_id.in_(ids[start : start + 500])
        )
        for nct, trial, regs in session.execute(stmt_old):
            before[nct] = (_other(nct, trial), tuple(regs or ()))
    moved = [v["nct_id"] for v in values if before.get(v["nct_id"]) != _indexed(v)]
    stmt = (
        update(StudyRow)
        .where(StudyRow.nct_id == bindparam("b_nct"))
        .values(
            trial_id=bindparam("b_trial"),
            trial_registrations=bindparam("b_regs"),
            trial_status=bindparam("b_status"),
        )
    )
    session.connection().execute(
        stmt,
        [
            {
                "b_nct": v["nct_id"],
                "b_trial": v["trial_id"],
                "b_regs": v["trial_registrations"],
                "b_status": v["trial_status"],
            }
            for v in values
        ],
    )
    index.mark(session, moved)


def _other(nct: str, trial: str | None) -> str | None:
    return trial if trial and trial != nct else None


def _indexed(v: Mapping[str, Any]) -> tuple[Any, ...]:
    return _other(v["nct_id"], v["trial_id"]), tuple(v["trial_registrations"] or ())

"""ctmonitor's own invariants over the stored data (`ctmonitor db check`).

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.models import Event, Snapshot, StudyRow


def consistency_problems(session: Session) -> list[str]:
    """What ctmonitor's own invariants say of the stored data: each study's snapshot
    count matches its snapshots (1..n, no gaps), every event and snapshot belongs to a
    stored study."""
    problems: list[str] = []
    counted = {nct: n for nct, n in session.execute(select(StudyRow.nct_id, StudyRow.snapshot_count))}
    polled = session.execute(
        select(Snapshot.nct_id, func.count(), func.max(Snapshot.seq))
        .where(Snapshot.seq > 0)
        .group_by(Snapshot.nct_id)
    ).all()
    for nct, n, top in polled:
        if nct not in counted:
            problems.append(f"{nct}: {n} snapshots of a study that is not stored")
        elif n != top or top != counted[nct]:
            problems.append(f"{nct}: snapshots 1..{top} ({n} stored), the study says {counted[nct]}")
    with_snapshots = {nct for nct, _, _ in polled}
    for nct, n in counted.items():
        if n and nct not in with_snapshots:
            problems.append(f"{nct}: the study says {n} snapshots, none is stored")
    orphans = session.scalar(
        select(func.count()).select_from(Event).where(Event.nct_id.not_in(select(StudyRow.nct_id)))
    )
    if orphans:
        problems.append(f"{orphans} events of studies that are not stored")
    return problems

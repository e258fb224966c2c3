"""ctmonitor's own invariants over the stored data (`ctmonitor db check`).

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitor.store.index_tables import StudyKey
from monitor.store.models import Event, Snapshot, StudyRow


def consistency_problems(session: Session) -> list[str]:
    """What ctmonitor's own invariants say of the stored data: each study's snapshot
    count matches its snapshots (1..n, no gaps), every event and snapshot belongs to a
    stored study, every stored study has its entry in the landscape's index."""
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
    # the landscape's index (store.index) has one entry per stored study, and each entry
    # says what its study's row says now
    entries = session.execute(select(StudyKey.nct_id, StudyKey.current, StudyKey.in_scope))
    indexed = {nct: (current, in_scope) for nct, current, in_scope in entries}
    stored = session.execute(select(StudyRow.nct_id, StudyRow.gone, StudyRow.merged_into, StudyRow.in_scope))
    unindexed = stale = 0
    for nct, gone, merged, in_scope in stored:
        entry = indexed.pop(nct, None)
        if entry is None:
            unindexed += 1
        elif entry != (not gone and merged is None, in_scope):
            stale += 1
    if unindexed or stale or indexed:
        problems.append(
            f"the landscape's index: {unindexed} studies without an entry, {stale} entries behind their "
            f"study, {len(indexed)} entries of studies not stored (ctmonitor reclassify --all rewrites it)"
        )
    return problems

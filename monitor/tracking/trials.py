"""Joining registrations into trials after each poll or import (core.trials), and the
event a trial's disagreeing statuses make.

Run inside the transaction that ends a run (tracking.pages), under the writer lock: the
joins and the agree/disagree state are recomputed from what is stored, so a run that died
before getting here is caught up by the next, and a flip is written once (the stored
state is what the next regrouping compares with).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor import store
from monitor.core.ctis import MEMBER_STATE
from monitor.core.describe import status_label
from monitor.core.domain import EventKind, FieldChange, Study
from monitor.core.trials import Member, Standing, disagree, join, registrations_of
from monitor.store import Session


def _standing(registry: str, number: str, study: Study | None, status: str | None) -> Standing:
    if study is None:
        return Standing(registry, number, status, status_label(status))
    words = study.registry_status or status_label(study.overall_status)
    places = tuple(
        sorted(
            {
                s.country
                for s in study.sites
                if s.facility == MEMBER_STATE and s.country and s.status == study.overall_status
            }
        )
    )
    return Standing(registry, number, study.overall_status, words, places)


def _stored(m: Member, row: Any) -> Standing:
    return Standing(
        m.registry, m.id, row.overall_status, row.registry_status or status_label(row.overall_status)
    )


def regroup(session: Session, *, run_id: int | None, now: datetime) -> int:
    """Join the current registrations into trials, store each one's trial, and write an
    event where a trial's statuses came to disagree or agree again. Returns the events
    written. A trial compared for the first time is a baseline: its state is stored, not
    told (the registrations' own new-study events told of them)."""
    rows = store.trial_members(session)
    members = [
        Member(r.nct_id, r.registered_on or "ctgov", tuple(r.registrations or ()), r.in_scope is not False)
        for r in rows
    ]
    heads = join(members)
    groups: dict[str, list[Member]] = {}
    for m in members:
        groups.setdefault(heads[m.id], []).append(m)
    by_id = {r.nct_id: r for r in rows}
    writes: list[dict[str, Any]] = []
    events = 0
    for head, group in groups.items():
        regs = registrations_of(group, head) if len(group) > 1 else ()
        state = None
        if len(group) > 1:
            order = {r: i for i, r in enumerate(regs)}
            ordered = sorted(group, key=lambda m: order.get(f"{m.registry}:{m.id}", len(order)))
            # decided from the stored statuses; only a trial whose state flips has its
            # records read, for the words and member states its change will say
            state = "disagree" if disagree([_stored(m, by_id[m.id]) for m in ordered]) else "agree"
            before = by_id[head].trial_status
            if before is not None and before != state:
                keys = [(m.id, by_id[m.id].snapshot_count) for m in ordered if by_id[m.id].snapshot_count]
                studies = store.stored_studies(session, keys)
                standings = [
                    _standing(m.registry, m.id, studies.get(m.id), by_id[m.id].overall_status)
                    for m in ordered
                ]
                after = {"agree": state == "agree", "statuses": [s.to_dict() for s in standings]}
                store.add_events(
                    session,
                    head,
                    [FieldChange(EventKind.ACROSS_REGISTRIES, "overall_status", before=before, after=after)],
                    run_id=run_id,
                    now=now,
                    registry_date=max((by_id[m.id].last_update_post_date or "" for m in group), default="")
                    or None,
                )
                events += 1
        for m in group:
            r = by_id[m.id]
            status = state if m.id == head else None
            if (r.trial_id, tuple(r.trial_registrations or ()), r.trial_status) != (head, regs, status):
                writes.append(
                    {"nct_id": m.id, "trial_id": head, "trial_registrations": regs, "trial_status": status}
                )
    for nct in store.left_trials(session, by_id):
        writes.append({"nct_id": nct, "trial_id": None, "trial_registrations": (), "trial_status": None})
    store.set_trials(session, writes)
    return events

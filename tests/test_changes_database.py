"""The change stream chosen by the database (store.changes: the followed studies' changes
kept by SQL over the studies' index, counted there) is the stream the rows choose one by
one (`judge` over every event, the rule every surface shared before): the same changes in
the same order and the same totals, for filters of every kind, kinds, importance, periods
and baselines, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from sqlalchemy import select

from monitor import store
from monitor.core.filters import StudyFilter
from monitor.store.changes import _statement, judge, study_index
from monitor.store.models import Event
from tests.harness import World, changes_in_the_registry, edit


def _reference(session: Any, scope: store.ChangeScope) -> list[int]:
    """The changes as every surface chose them before: each event judged in Python."""
    base = store.baseline_runs(session)
    rows = study_index(session)
    stmt = _statement(scope, base).order_by(Event.id.desc())
    fresh = store.ChangeScope(**{**scope.__dict__, "matched": {}})
    return [e.id for e in session.execute(stmt) if judge(e, rows.get(e.nct_id), fresh, base) is not None]


def _a_busy_year(world: World) -> None:
    """Changes of many kinds on many studies: statuses, enrollment, phases, sponsors, a new
    study, and studies leaving scope (their conditions no longer autoimmune)."""
    changes_in_the_registry(world)
    rng = random.Random(7)
    ids = sorted(world.registry.studies)
    for day, nct in enumerate(rng.sample(ids, 40)):
        how = day % 5

        def change(ps: dict[str, Any], how: int = how, day: int = day) -> None:
            if how == 0:
                ps["statusModule"]["overallStatus"] = "ACTIVE_NOT_RECRUITING"
            elif how == 1:
                ps["designModule"]["enrollmentInfo"] = {"count": 40 + day, "type": "ESTIMATED"}
            elif how == 2:
                ps["designModule"]["phases"] = ["PHASE2"]
            elif how == 3:
                ps["sponsorCollaboratorsModule"]["leadSponsor"]["name"] = "Sponsor Renamed GmbH"
            else:  # repurposed for lymphoma: the study leaves scope
                ps["conditionsModule"]["conditions"] = ["Diffuse Large B-cell Lymphoma"]
                ps["conditionsModule"].pop("keywords", None)
                ps["identificationModule"]["briefTitle"] = "Anti-CD19 CAR T Therapy in Large B-cell Lymphoma"
                ps["identificationModule"].pop("officialTitle", None)
                ps.get("descriptionModule", {}).pop("briefSummary", None)

        edit(world.registry, nct, change, posted=f"2026-11-{6 + day // 8:02d}")
        if day % 8 == 7:
            world.poll()
    world.poll()


def _scopes(rows: list[Any], n: int) -> list[store.ChangeScope]:
    rng = random.Random(11)
    pool: dict[str, list[str]] = {
        "modalities": sorted({r.modality for r in rows if r.modality}),
        "targets": sorted({p.strip() for r in rows for t in r.targets or () for p in t.split("/")}),
        "indications": sorted({i for r in rows for i in r.indications or ()}),
        "statuses": ["RECRUITING", "ACTIVE_NOT_RECRUITING", "SUSPENDED"],
        "phases": ["PHASE1", "PHASE2"],
        "countries": sorted({c for r in rows for c in r.countries or ()})[:15],
        "products": [*sorted({p for r in rows for p in r.products or ()})[:20], "kyv101"],
        "sponsors": ["univers", "Renamed", "Kyverna"],
        "registries": ["ctgov", "ctis"],
        "nct_ids": sorted(r.nct_id for r in rows)[:30],
    }
    kinds = [
        "status_change",
        "enrollment_change",
        "new_study",
        "left_scope",
        "phase_change",
        "sponsor_change",
    ]
    out = []
    for _ in range(n):
        values: dict[str, Any] = {}
        for key in rng.sample(sorted(pool), rng.randint(0, 2)):
            values[key] = tuple(rng.sample(pool[key], min(len(pool[key]), rng.randint(1, 2))))
        flt = StudyFilter(include_out_of_scope=rng.random() < 0.3, **values)
        since = rng.choice([None, datetime(2026, 11, 4), datetime(2026, 11, 8)])
        out.append(
            store.ChangeScope(
                filter=flt,
                kinds=tuple(rng.sample(kinds, rng.randint(1, 3))) if rng.random() < 0.3 else (),
                since=since,
                until=rng.choice([None, datetime(2026, 11, 9)]),
                by=rng.choice(["detected", "detected", "registry"]),
                min_importance=rng.choice([1, 1, 2, 3]),
                baseline=rng.random() < 0.3,
            )
        )
    return out


def test_the_database_chooses_the_changes_the_rows_choose(world: World) -> None:
    _a_busy_year(world)
    with world.database.session() as s:
        rows = list(study_index(s).values())
        assert {"left_scope", "status_change", "new_study"} <= set(s.scalars(select(Event.kind).distinct()))
        told = 0
        for scope in _scopes(rows, 150):
            want = _reference(s, scope)
            got = [c.event.id for c in store.reader_changes(s, scope)]
            assert got == want, scope
            assert store.count_changes(s, scope) == len(want), scope
            if len(want) > 3:  # a page further on, and what is newer than it
                assert store.count_changes(s, scope, from_id=want[2]) == 3, scope
                assert [c.event.id for c in store.reader_changes(s, scope, before_id=want[2], limit=1)] == [
                    want[3]
                ]
            told += bool(want)
        assert told > 60  # most scopes hold changes: the comparison is not of empty lists

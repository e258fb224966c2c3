"""Bulk inserts store exactly what SQLAlchemy's own INSERT stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, text

from monitor.store.bulk import _plan, insert_rows
from monitor.store.db import Database
from monitor.store.models import Event, Snapshot, StudyRow

NOW = datetime(2026, 11, 2, 9, 0, 5, 123456)
LABELS = {"modality": "CAR-T", "targets": ["CD19"]}


def _events() -> list[dict[str, Any]]:
    values: list[Any] = [None, "RECRUITING", 42, {"date": "2027-03", "type": "ESTIMATED"}, ["a", "b"], True]
    return [
        {
            "nct_id": f"NCT0000000{i}",
            "run_id": None,
            "snapshot_seq": None,
            "kind": "status",
            "field": "overall_status",
            "item_key": "",
            "before": values[i],
            "after": values[-1 - i],
            "importance": 2,
            "registry_date": "2026-11-01" if i % 2 else None,
            "detected_at": NOW,
            "origin": "poll",
            "held": bool(i % 2),
        }
        for i in range(len(values))
    ]


def _studies(n: int) -> list[dict[str, Any]]:
    return [
        {"nct_id": f"NCT0000000{i}", "brief_title": "CD19 CAR T in lupus", "content_hash": "c" * 64,
         "raw_hash": "d" * 64, "snapshot_count": 1, "in_query": True, "gone": False,
         "first_seen_at": NOW, "last_seen_at": NOW, "in_scope": [True, False, None][i % 3],
         "needs_review": False, "classification": LABELS if i else None}
        for i in range(n)
    ]  # fmt: skip


def _stored(db: Database, table: str) -> list[tuple[Any, ...]]:
    """The rows as the database holds them (the driver's view, not the ORM's)."""
    with db.session() as s:
        return [tuple(r)[1:] for r in s.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


def test_events_are_stored_as_sqlalchemy_stores_them(database: Database) -> None:
    with database.session() as s:
        s.execute(insert(StudyRow.__table__), _studies(len(_events())))
    with database.session() as s:
        s.execute(insert(Event.__table__), _events())
    expected = _stored(database, "events")
    with database.session() as s:
        s.execute(delete(Event))
        assert (
            _plan(Event.__table__, tuple(_events()[0]), s.connection().dialect) is not None
        )  # the fast path
        insert_rows(s, Event.__table__, _events())
    assert _stored(database, "events") == expected
    with database.session() as s:
        rows = s.scalars(select(Event).order_by(Event.id)).all()
    assert [r.before for r in rows] == [e["before"] for e in _events()]  # None stays JSON null
    assert {r.detected_at for r in rows} == {NOW}


def test_snapshots_and_studies_round_trip(database: Database) -> None:
    with database.session() as s:
        insert_rows(s, StudyRow.__table__, _studies(3))
        insert_rows(
            s,
            Snapshot.__table__,
            [
                {"nct_id": "NCT00000001", "seq": 1, "raw_hash": "a" * 64, "content_hash": "b" * 64,
                 "raw": b"\x28\xb5\x2f\xfd\x00binary", "last_update_post_date": None, "origin": "poll",
                 "registry_version": None, "run_id": None, "fetched_at": NOW},
            ],
        )  # fmt: skip
    with database.session() as s:
        snap = s.scalars(select(Snapshot)).one()
        studies = s.scalars(select(StudyRow).order_by(StudyRow.nct_id)).all()
    assert snap.raw == b"\x28\xb5\x2f\xfd\x00binary" and snap.fetched_at == NOW
    assert [x.in_scope for x in studies] == [True, False, None]
    assert [x.classification for x in studies] == [None, LABELS, LABELS]
    assert all(x.in_query and not x.gone and x.last_seen_at == NOW for x in studies)


def test_rows_that_leave_a_default_to_fill_take_sqlalchemys_path(database: Database) -> None:
    with database.session() as s:
        insert_rows(s, StudyRow.__table__, _studies(2))
    rows = _events()[:2]
    for row in rows:
        del row["origin"]  # a column with a Python-side default, left to SQLAlchemy to fill
    with database.session() as s:
        insert_rows(s, Event.__table__, rows)
        insert_rows(s, Event.__table__, [])
    with database.session() as s:
        stored = s.scalars(select(Event).order_by(Event.id)).all()
    assert [e.origin for e in stored] == ["poll", "poll"]
    assert [e.after for e in stored] == [True, ["a", "b"]]

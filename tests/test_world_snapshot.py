"""The shared world (tests.snapshots) is the world a poll makes: a test that starts from a
copy starts where it would have started after polling itself, and goes on as it would."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text

from monitor.store.db import Database
from tests.harness import World, changes_in_the_registry, make_world, share_world


def _contents(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with database.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def _same(got: dict[str, list[tuple[Any, ...]]], made: dict[str, list[tuple[Any, ...]]]) -> None:
    assert set(got) == set(made)
    for table in made:
        assert got[table] == made[table], table


def test_a_copied_world_is_the_world_a_poll_makes(database: Database, second_database: Database) -> None:
    polled = make_world(second_database)  # a poll of its own
    p: World = next(polled)
    copied = make_world(database, shared=True)
    try:
        share_world(p)  # a copy for this process, unless an earlier test left one
        made = _contents(second_database)
        assert sum(len(rows) for rows in made.values()) > 1000
        c: World = next(copied)  # the fresh database, filled from the copy
        assert c.clock() == p.clock()
        _same(_contents(database), made)
        # ... and the same week follows: the copy's ids and sequences carry on as the poll's
        changes_in_the_registry(p)
        changes_in_the_registry(c)
        _same(_contents(database), _contents(second_database))
    finally:
        next(polled, None)
        next(copied, None)

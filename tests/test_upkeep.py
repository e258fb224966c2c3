"""PostgreSQL's tables kept fit over months where autovacuum is off (store.upkeep): what
autovacuum would do, by the server's thresholds, after each poll; nothing where the
server looks after a table itself, and nothing on SQLite."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from monitor import store
from monitor.app import Application
from monitor.store.upkeep import TableState, Thresholds, due


def state(name: str, live: int, dead: int = 0, modified: int = 0, inserted: int | None = 0, on: bool = False):  # type: ignore[no-untyped-def]
    return TableState(name, live, dead, modified, inserted, autovacuum=on)


def test_dead_rows_past_the_servers_threshold_are_vacuumed() -> None:
    limits = Thresholds()  # PostgreSQL's defaults: 50 + 20% of the live rows
    assert due([state("study_terms", 1000, dead=250)], limits) == []
    assert due([state("study_terms", 1000, dead=251)], limits) == [("study_terms", "vacuum")]
    # a year of weekly polls over 100,000 studies: a dead row for every two live ones
    assert due([state("study_terms", 1_712_131, dead=889_530)], limits) == [("study_terms", "vacuum")]


def test_changed_rows_past_the_analyze_threshold_are_analyzed_and_inserts_vacuumed() -> None:
    limits = Thresholds()
    assert due([state("events", 10_000, modified=1050)], limits) == []
    assert due([state("events", 10_000, modified=1051)], limits) == [("events", "analyze")]
    # an append-only table: vacuumed for its visibility map as autovacuum does since 13
    assert due([state("events", 10_000, modified=3001, inserted=3001)], limits) == [("events", "vacuum")]
    assert due([state("events", 10_000, modified=3001, inserted=None)], limits) == [("events", "analyze")]


def test_a_table_autovacuum_looks_after_is_left_to_it() -> None:
    tables = [
        state("studies", 100, dead=10_000, modified=10_000, on=True),
        state("study_keys", 100, dead=1000),
    ]
    assert due(tables, Thresholds()) == [("study_keys", "vacuum")]
    stricter = Thresholds(vacuum=5000)  # the server's own settings are the measure
    assert due(tables, stricter) == []


def test_a_tables_own_thresholds_stand_before_the_servers() -> None:
    """The landscape's index tables are vacuumed at 1% (migration 0019): a week of changes
    to 1% of 100,000 studies rewrites ~17,000 of study_terms' 1.7 million rows."""
    sooner = ("autovacuum_vacuum_scale_factor=0.01", "autovacuum_analyze_scale_factor=0.01")
    week = TableState("study_terms", 1_712_131, 17_000, 34_000, 17_000, autovacuum=False, options=sooner)
    # 17,000 dead rows are not past 50 + 1% of 1.7 million; 34,000 rows written are
    assert due([week], Thresholds()) == [("study_terms", "analyze")]
    fortnight = TableState("study_terms", 1_712_131, 34_000, 68_000, 34_000, autovacuum=False, options=sooner)
    assert due([fortnight], Thresholds()) == [("study_terms", "vacuum")]
    by_the_server = TableState("study_terms", 1_712_131, 34_000, 68_000, 34_000, autovacuum=False)
    assert due([by_the_server], Thresholds()) == []  # the server's 20%: twenty weeks of changes


def test_the_index_tables_carry_their_thresholds_on_postgresql(database: Any) -> None:
    with database.session() as s:
        if s.get_bind().dialect.name != "postgresql":
            return
        rows = s.execute(
            text(
                "SELECT relname, reloptions FROM pg_class WHERE relname IN ('study_keys', 'study_terms') "
                "AND relnamespace = current_schema()::regnamespace"
            )
        ).all()
    assert {name: sorted(options) for name, options in rows} == {
        table: ["autovacuum_analyze_scale_factor=0.01", "autovacuum_vacuum_scale_factor=0.01"]
        for table in ("study_keys", "study_terms")
    }


def _stats(s: Any, table: str) -> tuple[int, Any]:
    s.execute(text("SELECT pg_stat_clear_snapshot()"))
    row = s.execute(
        text(
            "SELECT n_dead_tup, last_vacuum FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = :t"
        ),
        {"t": table},
    ).one()
    return int(row[0]), row[1]


def test_after_a_poll_the_tables_autovacuum_leaves_alone_are_vacuumed(database: Any) -> None:
    """Rewriting every entry of the landscape's index (as a relabelling of every study
    does) leaves a dead row for each live one; with autovacuum off for the table, the next
    poll vacuums and analyzes it. (How many dead rows VACUUM can clear depends on every
    other transaction open on the server, other tests' among them: that it ran is asserted.)"""
    from tests.harness import make_world

    world = make_world(database)
    w = next(world)
    try:
        app = Application(w.settings, database=database, now=w.clock)
        if database.engine.dialect.name != "postgresql":
            assert store.upkeep(database.engine) == []  # SQLite reuses its free pages itself
            return
        with database.engine.begin() as conn:
            conn.execute(text("ALTER TABLE study_terms SET (autovacuum_enabled = false)"))
            conn.execute(text("UPDATE study_terms SET label = label"))
        with database.session() as s:
            # the server counts a session's writes when it goes idle: wait until it has
            deadline = time.monotonic() + 20
            while _stats(s, "study_terms")[0] < 1000 and time.monotonic() < deadline:
                s.commit()
                time.sleep(0.2)
            dead, vacuumed = _stats(s, "study_terms")
        assert dead > 50 + 0.01 * 2700 and vacuumed is None  # every entry rewritten: past the threshold
        w.clock.advance(days=1)
        assert app.poll().ok
        with database.session() as s:
            _, vacuumed = _stats(s, "study_terms")
        assert vacuumed is not None
    finally:
        next(world, None)

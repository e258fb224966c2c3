"""The schema comes only from Alembic: one head, clean round trips, models identical to migrations."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from monitor.store import db as dbmod
from monitor.store.index_tables import UNDECLARED
from monitor.store.models import Base

TABLES = {"alembic_version", "poll_runs", "studies", "snapshots", "events"}


def _declared(name: str | None, kind: str, parents: dict[str, str | None]) -> bool:
    """What the models declare: not what migration 0017 makes in one dialect's own terms
    (SQLite's FTS5 table and the tables it keeps, pg_trgm's indexes, the NULLS LAST index)."""
    return not (name and name.startswith(UNDECLARED))


def test_single_head() -> None:
    assert len(ScriptDirectory(str(dbmod.MIGRATIONS_DIR)).get_heads()) == 1


def test_upgrade_from_empty_downgrade_and_upgrade_again(db_url: str) -> None:
    engine = dbmod.make_engine(db_url)
    try:
        assert dbmod.current_revision(engine) is None
        dbmod.upgrade(engine)
        assert dbmod.current_revision(engine) == dbmod.head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        dbmod.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        dbmod.upgrade(engine)
        assert dbmod.current_revision(engine) == dbmod.head_revision()
    finally:
        engine.dispose()


def test_every_step_round_trips(db_url: str) -> None:
    engine = dbmod.make_engine(db_url)
    try:
        script = ScriptDirectory(str(dbmod.MIGRATIONS_DIR))
        revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
        for rev in revisions:
            dbmod.upgrade(engine, rev)
            dbmod.downgrade(engine, "-1")
            dbmod.upgrade(engine, rev)
    finally:
        engine.dispose()


def test_models_match_migrations(db_url: str) -> None:
    engine = dbmod.make_engine(db_url)
    try:
        dbmod.upgrade(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _declared})
            assert compare_metadata(ctx, Base.metadata) == []
    finally:
        engine.dispose()


def test_each_tests_database_is_the_schema_the_migrations_make(database: Any) -> None:
    """The test databases are copies (SQLite) or replays of pg_dump's DDL (PostgreSQL) of
    one the migrations built: still exactly the models, at head."""
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _declared})
        assert compare_metadata(ctx, Base.metadata) == []
        assert ctx.get_current_revision() == dbmod.head_revision()
    tables = set(inspect(database.engine).get_table_names())
    assert {"study_keys", "study_terms"} <= tables


def test_old_schema_is_refused_without_auto_upgrade(db_url: str) -> None:
    import pytest

    engine = dbmod.make_engine(db_url)
    engine.dispose()
    with pytest.raises(dbmod.DatabaseError, match="ctmonitor db upgrade"):
        dbmod.open_database(db_url, auto_upgrade=False)

"""The polled world, taken once per test process and put back for each test that starts
from it: the first poll of the domain records is the same work for some 300 tests, so
each process polls once and every later world is the database that poll left, copied.

A copy is only ever put into a database at schema head that nothing else uses yet (the
test's own, fresh from the `database` fixture). SQLite copies the file by its backup API;
PostgreSQL keeps a copy of each table in a schema of its own and writes them back with
INSERT ... SELECT (in foreign-key order), sequences included.
`tests/test_world_snapshot.py` checks that a copied world is the world a poll makes.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from monitor.store.db import Database
from monitor.store.models import Base
from tests.conftest import admin_engine


@dataclass(frozen=True)
class SqliteCopy:
    path: Path

    @classmethod
    def take(cls, database: Database) -> SqliteCopy:
        folder = Path(tempfile.mkdtemp(prefix="ctmonitor-world-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "world.db"
        _backup(_file(database), path)
        return cls(path)

    def restore(self, database: Database) -> None:
        database.engine.dispose()  # no pooled connection holds a read of the old file
        _backup(self.path, _file(database))


def _file(database: Database) -> str:
    name = database.engine.url.database
    assert name, "an SQLite database in a file"
    return name


def _backup(source_file: str | Path, target_file: str | Path) -> None:
    """The whole of one SQLite file written into another, by SQLite's backup API."""
    source, target = sqlite3.connect(source_file), sqlite3.connect(target_file)
    try:
        with target:
            source.backup(target)
    finally:
        source.close()
        target.close()


@dataclass(frozen=True)
class PostgresCopy:
    schema: str  # where the copies of the tables live
    tables: tuple[str, ...]  # foreign-key order: a table after those it refers to
    sequences: tuple[tuple[str, int | None], ...]

    @classmethod
    def take(cls, database: Database) -> PostgresCopy:
        schema = f"world_{uuid.uuid4().hex[:12]}"
        known = [t.name for t in Base.metadata.sorted_tables]
        with database.engine.begin() as conn:
            present = set(
                conn.scalars(
                    text(
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
                    )
                )
            )
            tables = tuple(sorted(present - set(known))) + tuple(t for t in known if t in present)
            sequences = tuple(
                (name, value)
                for name, value in conn.execute(
                    text(
                        "SELECT sequencename, last_value FROM pg_sequences "
                        "WHERE schemaname = current_schema() ORDER BY sequencename"
                    )
                )
            )
            conn.execute(text(f"CREATE SCHEMA {schema}"))
            for table in tables:
                conn.execute(text(f'CREATE TABLE {schema}."{table}" AS TABLE "{table}"'))
        atexit.register(_drop, schema)
        return cls(schema, tables, sequences)

    def restore(self, database: Database) -> None:
        with database.engine.begin() as conn:
            # DELETE, not TRUNCATE: the tables are fresh (two rows the migrations wrote), and
            # TRUNCATE gives each table and index a new file (~100 ms of the server's time)
            for table in reversed(self.tables):
                conn.execute(text(f'DELETE FROM "{table}"'))
            for table in self.tables:
                conn.execute(text(f'INSERT INTO "{table}" SELECT * FROM {self.schema}."{table}"'))
            for name, value in self.sequences:
                if value is None:
                    conn.execute(text("SELECT setval(:s, 1, false)"), {"s": name})
                else:
                    conn.execute(text("SELECT setval(:s, :v, true)"), {"s": name, "v": value})


def _drop(schema: str) -> None:
    try:
        with admin_engine().begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    except Exception:  # a process ending: a schema left behind harms nothing
        pass


Copy = SqliteCopy | PostgresCopy


def take(database: Database) -> Copy:
    if database.engine.dialect.name == "sqlite":
        return SqliteCopy.take(database)
    return PostgresCopy.take(database)

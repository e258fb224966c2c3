"""Engines, sessions and migrations for SQLite (embedded) and PostgreSQL (shared).

`session_scope()` is the one place that commits. Store functions take a Session and
never commit, so a page of a poll is written whole or not at all.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.exc import DatabaseError as DriverDatabaseError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from monitor.core.domain import UserError
from monitor.paths import resource_dir
from monitor.store import index, locking

MIGRATIONS_DIR = resource_dir("migrations")


class DatabaseError(Exception):
    """The database cannot be used as it is (unreachable, wrong schema version)."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    # busy_timeout first, so that everything after it (switching a new file to WAL while
    # another process creates it too) waits out a short lock instead of failing at once.
    cur.execute("PRAGMA busy_timeout=30000")
    # WAL lets `ctmonitor status` read while a poll writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _json_text(value: object) -> str:
    """JSON columns (classifications with their evidence, event values) written by orjson:
    the first sync writes one classification per study, and the standard encoder was a
    measurable share of it. Same JSON, compact; keys stay in insertion order."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL and their folder created."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # not a URL at all, or a port that is not a number
        shown = re.sub(r"//[^/@]*@", "//***@", url)  # it may carry a password
        raise UserError(
            f"database.url: not a database URL: {shown!r} (use sqlite:///PATH or postgresql://...)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(f"cannot create the database's folder {folder}: {exc.strerror}") from None
        engine = create_engine(url, json_serializer=_json_text)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, json_serializer=_json_text)
    raise UserError(
        f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://"
    )


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


@cache
def head_revision() -> str:
    """The newest migration shipped with this code (read once per process: the scripts
    are part of the installed package, and each database opened asks)."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    heads = script.get_heads()
    if len(heads) != 1:
        raise DatabaseError(f"migrations have {len(heads)} heads; expected exactly one")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _transactional_ddl(engine: Engine) -> Engine:
    """For SQLite, an engine on the same file whose transactions really hold DDL.

    pysqlite (before Python 3.12's autocommit=False) opens no transaction before a
    CREATE, DROP or ALTER, so each statement of a migration commits on its own: a kill
    half-way leaves tables without the alembic_version that says they exist. Here the
    driver's own transaction handling is switched off and every transaction begins with
    BEGIN IMMEDIATE (SQLAlchemy's documented recipe), so a migration commits whole or
    not at all. PostgreSQL's DDL is transactional as it is.
    """
    if engine.dialect.name != "sqlite":
        return engine
    ddl = create_engine(engine.url, json_serializer=_json_text, poolclass=NullPool)
    event.listen(ddl, "connect", _sqlite_pragmas)
    event.listen(ddl, "connect", _driver_autocommit)
    event.listen(ddl, "begin", _begin_immediate)
    return ddl


def _driver_autocommit(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None


def _begin_immediate(conn) -> None:  # type: ignore[no-untyped-def]
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _clear_half_made_schema(engine: Engine) -> None:
    """Repair what an interrupted migration of an older ctmonitor could leave on SQLite:
    Alembic's temporary copy of a table (`_alembic_tmp_*`, dropped: the original is
    intact), and tables without any alembic_version (dropped when every one is empty;
    otherwise refused, since they hold data no revision accounts for)."""
    names = inspect(engine).get_table_names()
    with engine.begin() as conn:
        for name in names:
            if name.startswith("_alembic_tmp_"):
                conn.exec_driver_sql(f'DROP TABLE "{name}"')
        if "alembic_version" in names:
            return
        from monitor.store.models import Base

        ours = [n for n in names if n in Base.metadata.tables]
        if not ours:
            return
        filled = [n for n in ours if conn.exec_driver_sql(f'SELECT 1 FROM "{n}" LIMIT 1').first()]
        if filled:
            raise DatabaseError(
                f"the database has ctmonitor tables ({', '.join(filled)}) holding data but no schema "
                "revision; it was not made by a complete migration: restore it from a backup"
            )
        for name in ours:
            conn.exec_driver_sql(f'DROP TABLE "{name}"')


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate under the writer lock (a poll and a migration never overlap, and of two
    processes that find an old schema one migrates and the other gets LockBusy, which
    `ensure_schema` waits out), in one transaction: killed at any point, the database
    stays at the old revision."""
    with locking.exclusive(engine):
        ddl = _transactional_ddl(engine)
        try:
            if ddl.dialect.name == "sqlite":
                _clear_half_made_schema(ddl)
            command.upgrade(alembic_config(ddl), revision)
        finally:
            if ddl is not engine:
                ddl.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    with locking.exclusive(engine):
        ddl = _transactional_ddl(engine)
        try:
            command.downgrade(alembic_config(ddl), revision)
        finally:
            if ddl is not engine:
                ddl.dispose()


# How long a process that finds the schema being migrated by another waits for it: a
# first migration takes a second or two; processes started together must not fail for it.
MIGRATION_WAIT_SECONDS = 120.0


def _waiting() -> None:
    """Test hook (with CTMONITOR_TEST_MIGRATION_HOLD, see migrations/env.py): say on stderr
    that this process waits for another's migration, so a test knows it got that far."""
    if os.environ.get("CTMONITOR_TEST_MIGRATION_HOLD"):
        print("ctmonitor-migration: waiting", file=sys.stderr, flush=True)


def ensure_schema(engine: Engine, *, auto_upgrade: bool, wait: float = MIGRATION_WAIT_SECONDS) -> None:
    """Bring the schema to head, or refuse with a message that says how.

    Several processes started at once on a new database (`serve`, `run` and `poll`
    together) each come here: one migrates under the writer lock; the others wait until
    the schema is at head (the migrating one may keep the lock for its poll, which they
    do not need to wait for), and only past `wait` seconds say that another process holds
    the writer lock."""
    head = head_revision()
    deadline = time.monotonic() + wait
    while True:
        try:
            current = current_revision(engine)
        except DriverDatabaseError as exc:  # unreachable, refused, or a file that is no SQLite database
            if "locked" in str(exc) and time.monotonic() < deadline:
                _waiting()
                time.sleep(0.2)  # a new file being set up by another process
                continue
            raise DatabaseError(f"cannot open the database: {first_line(exc)}") from None
        if current == head:
            return
        if not auto_upgrade:
            raise DatabaseError(
                f"the database schema is at {current or 'nothing (empty database)'}, ctmonitor needs {head}: "
                "run `ctmonitor db upgrade`"
            )
        try:
            upgrade(engine)
            return
        except locking.LockBusy:
            if time.monotonic() >= deadline:
                raise
            _waiting()
            time.sleep(0.25)  # another process is migrating: look again when it is done
        except SQLAlchemyError as exc:
            raise DatabaseError(f"migrating the database failed: {first_line(exc)}") from None


def engine_check(engine: Engine) -> tuple[str, list[str]]:
    """The database engine's own integrity check: (what was checked, problems found).

    SQLite: `PRAGMA integrity_check` (every page, index and constraint of the file) and
    `PRAGMA foreign_key_check`. PostgreSQL keeps its files consistent itself; asked
    here is that every table of the schema can be read through to the end and that
    there is no invalid index (left by an interrupted CREATE INDEX CONCURRENTLY)."""
    problems: list[str] = []
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
            problems += [f"integrity_check: {r}" for r in rows if r != "ok"]
            for table, rowid, parent, _fk in conn.exec_driver_sql("PRAGMA foreign_key_check"):
                problems.append(f"foreign_key_check: {table} row {rowid} points to a missing {parent} row")
            return "SQLite PRAGMA integrity_check and foreign_key_check", problems
        for name in inspect(engine).get_table_names():
            try:
                conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').scalar()
            except SQLAlchemyError as exc:
                problems.append(f"table {name} cannot be read: {first_line(exc)}")
                conn.rollback()
        invalid = (
            conn.exec_driver_sql(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT i.indisvalid AND n.nspname = current_schema()"
            )
            .scalars()
            .all()
        )
        problems += [f"index {name} is invalid (rebuild it with REINDEX)" for name in invalid]
        return "PostgreSQL: every table read through, no invalid index", problems


def make_url_safe(url: str) -> str:
    """The URL as it may be shown: password masked."""
    return make_url(url).render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class Database:
    """An engine plus its session factory; built once per command or service."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # the landscape's index follows every write of a study, in its transaction
        event.listen(self._sessions, "before_commit", index.reindex_marked)
        event.listen(self._sessions, "after_rollback", index.forget_marks)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, auto_upgrade: bool) -> Database:
    db = Database(url)
    try:
        ensure_schema(db.engine, auto_upgrade=auto_upgrade)
    except BaseException:
        db.dispose()
        raise
    return db

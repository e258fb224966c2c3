"""Engines, sessions and migrations for SQLite (embedded) and PostgreSQL (shared).

`session_scope()` is the one place that commits. Store functions take a Session and
never commit, so a page of a poll is written whole or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.exc import DatabaseError as DriverDatabaseError
from sqlalchemy.orm import Session, sessionmaker

from monitor.domain import UserError
from monitor.paths import resource_dir

MIGRATIONS_DIR = resource_dir("migrations")


class DatabaseError(Exception):
    """The database cannot be used as it is (unreachable, wrong schema version)."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_connection.cursor()
    # WAL lets `ctmonitor status` read while a poll writes; busy_timeout rides out short locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
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


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    heads = script.get_heads()
    if len(heads) != 1:
        raise DatabaseError(f"migrations have {len(heads)} heads; expected exactly one")
    return heads[0]


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def ensure_schema(engine: Engine, *, auto_upgrade: bool) -> None:
    """Bring the schema to head, or refuse with a message that says how."""
    try:
        current = current_revision(engine)
    except DriverDatabaseError as exc:  # unreachable, refused, or a file that is no SQLite database
        raise DatabaseError(f"cannot open the database: {first_line(exc)}") from None
    head = head_revision()
    if current == head:
        return
    if not auto_upgrade:
        raise DatabaseError(
            f"the database schema is at {current or 'nothing (empty database)'}, ctmonitor needs {head}: "
            "run `ctmonitor db upgrade`"
        )
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise DatabaseError(f"migrating the database failed: {first_line(exc)}") from None


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

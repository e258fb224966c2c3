"""One writer at a time: a lock that works on SQLite and PostgreSQL and dies with its holder.

PostgreSQL: a session-level advisory lock on a dedicated connection, so two machines
sharing one database (a failover pair) cannot both poll. Advisory locks are shared by a
whole database; the key names the schema ctmonitor's tables are in too, so two
deployments in two schemas of one database never block each other. SQLite: an exclusive `flock`
on a file beside the database. Both are released by the operating system or the server
when the holding process dies, so a killed poll never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url


class LockBusy(Exception):
    """Another ctmonitor process holds the lock."""


def _pg_key(name: str, schema: str) -> int:
    digest = hashlib.sha256(f"ctmonitor:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str = "writer") -> Iterator[None]:
    """Hold the named lock for the duration of the block, or raise LockBusy at once."""
    backend = engine.dialect.name
    if backend == "postgresql":
        conn = engine.connect()
        try:
            key = _pg_key(name, conn.execute(text("SELECT current_schema()")).scalar() or "")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            conn.commit()
            if not got:
                raise LockBusy(f"another ctmonitor process holds the {name} lock on this database")
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        finally:
            conn.close()
        return
    if backend == "sqlite":
        database = make_url(str(engine.url)).database
        if not database or database == ":memory:":
            yield  # a private in-memory database has no second writer
            return
        path = Path(f"{database}.{name}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockBusy(f"another ctmonitor process holds the {name} lock ({path})") from None
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return
    raise NotImplementedError(f"no lock for {backend}")

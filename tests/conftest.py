"""Shared fixtures: real SQLite and PostgreSQL databases built by `alembic upgrade head`,
the local API server on 127.0.0.1, and the real study records in tests/data/.

PostgreSQL tests run against $CTMONITOR_TEST_PG_URL (default: the local server, database
`test`), each in a schema of its own. Without a reachable server they are skipped,
unless CTMONITOR_REQUIRE_PG=1 (as in CI), where that is a failure.
"""

from __future__ import annotations

import atexit
import copy
import gc
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from monitor.config import ApiSettings, QuerySettings, Settings, SyncSettings
from monitor.registry.localdata import load_records
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database, open_database

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("CTMONITOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach beyond this machine: any socket connect to a non-loopback address fails."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not str(address[0]).startswith(_LOOPBACK):
            raise AssertionError(f"test tried to connect to {address[0]}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None


def pg_url_for_schema() -> Iterator[str]:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if os.environ.get("CTMONITOR_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL is required (CTMONITOR_REQUIRE_PG=1) but {PG_URL} is not reachable")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin_engine().begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin_engine().begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


_ADMIN: Engine | None = None


def admin_engine() -> Engine:
    """The test process's own connection to the server, kept open, for making and dropping
    schemas (a new connection each time costs a server process and ~17 ms)."""
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = create_engine(PG_URL, pool_pre_ping=True)
        atexit.register(_ADMIN.dispose)
    return _ADMIN


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (no schema yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ctmonitor.db'}"
    else:
        yield from pg_url_for_schema()


@pytest.fixture(scope="session")
def _sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite database per test process, built by `alembic upgrade head`: each test's
    database is a copy of it (SQLite's backup API), a fifth of the migrations' time."""
    path = tmp_path_factory.mktemp("schema") / "head.db"
    open_database(f"sqlite:///{path}", auto_upgrade=True).dispose()
    return path


_PG_HEAD: tuple[str, str] | None = None  # (schema name, the statements that make it) per test process


def _pg_at_head() -> tuple[str, str] | None:
    """One PostgreSQL schema per test process, built by `alembic upgrade head` and read back
    by pg_dump as the statements that make it (its tables, and the rows the migrations
    wrote: the revision, the link-signing key): each test's schema is made by them (one
    round trip) instead of the migrations. None without pg_dump (each test then migrates)."""
    global _PG_HEAD
    if _PG_HEAD is not None or shutil.which("pg_dump") is None:
        return _PG_HEAD
    url = make_url(PG_URL)
    schema = f"head_{uuid.uuid4().hex[:12]}"
    with admin_engine().begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        sep = "&" if "?" in PG_URL else "?"
        open_database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}", auto_upgrade=True).dispose()
        where = ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]
        dump = subprocess.run(
            ["pg_dump", "--inserts", "--no-owner", "--no-privileges", "-n", schema, *where, url.database],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        with admin_engine().begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    # psql's meta-commands (\restrict) and the schema's own creation are left out
    ddl = "\n".join(
        line for line in dump.splitlines() if not line.startswith(("\\", f"CREATE SCHEMA {schema}"))
    )
    _PG_HEAD = (schema, ddl)
    return _PG_HEAD


def _make_pg_head(db_url: str) -> None:
    """The test's (empty) schema made at head by the process's DDL."""
    head = _pg_at_head()
    if head is None:
        return
    schema, ddl = head
    mine = db_url.rsplit("search_path%3D", 1)[1]
    with admin_engine().begin() as conn:  # every name in the DDL is qualified by its schema
        conn.exec_driver_sql(ddl.replace(f"{schema}.", f"{mine}."))


def _at_head(url: str, request: pytest.FixtureRequest) -> Database:
    if url.startswith("sqlite:///"):
        head = request.getfixturevalue("_sqlite_at_head")
        source, target = sqlite3.connect(head), sqlite3.connect(url.removeprefix("sqlite:///"))
        with target:
            source.backup(target)
        source.close()
        target.close()
    else:
        _make_pg_head(url)
    return open_database(url, auto_upgrade=True)


@pytest.fixture
def database(db_url: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database at schema head, built by the migrations (a copy of a database, or a
    schema made by the DDL of one, they built for this test process)."""
    db = _at_head(db_url, request)
    yield db
    db.dispose()


@pytest.fixture
def second_database(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Database]:
    """Another database of the same kind as `database`, also at schema head."""
    if db_url.startswith("sqlite:///"):
        db = _at_head(f"sqlite:///{tmp_path / 'second.db'}", request)
        yield db
        db.dispose()
        return
    schema = pg_url_for_schema()
    db = _at_head(next(schema), request)
    try:
        yield db
    finally:
        db.dispose()
        next(schema, None)


# -- records -------------------------------------------------------------------------


def registry_records() -> list[dict[str, Any]]:
    """The real /studies and /studies/{id} responses in tests/data/registry (deduplicated)."""
    by_id: dict[str, dict[str, Any]] = {}
    for r in load_records(DATA / "registry"):
        by_id[r["protocolSection"]["identificationModule"]["nctId"]] = r
    return [by_id[k] for k in sorted(by_id)]


def domain_records() -> list[dict[str, Any]]:
    return load_records(DATA / "domain" / "records.jsonl")


def record(nct_id: str) -> dict[str, Any]:
    """A deep copy of one real record, safe to modify in a test."""
    for r in registry_records() + domain_records():
        if r["protocolSection"]["identificationModule"]["nctId"] == nct_id:
            return copy.deepcopy(r)
    raise KeyError(nct_id)


def load_json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


# -- local API -----------------------------------------------------------------------


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.replace(copy.deepcopy(registry_records()), "2026-11-02T09:00:05")
    return reg


@pytest.fixture
def api(registry: Registry) -> Iterator[LocalApiServer]:
    with LocalApiServer(registry) as server:
        yield server


MATCH_ALL = QuerySettings(name="everything", term="ALL")


def make_settings(base_url: str, *, queries: list[QuerySettings] | None = None, **api: Any) -> Settings:
    """Settings for tests: no politeness delay, no real sleeping, small pages."""
    api_values: dict[str, Any] = {
        "base_url": base_url,
        "min_interval_seconds": 0,
        "page_size": 5,
        "backoff_base_seconds": 0,
        "backoff_max_seconds": 0,
        "timeout_seconds": 5,
    }
    api_values.update(api)
    return Settings(
        api=ApiSettings(**api_values), sync=SyncSettings(hold_min_studies=5), queries=queries or [MATCH_ALL]
    )


@pytest.fixture
def settings_for() -> Callable[..., Settings]:
    return make_settings


@pytest.fixture
def config(tmp_path: Path, api: LocalApiServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file for the `ctmonitor` command: the local API, small pages, no waiting,
    one catch-all query; the database comes from CTMONITOR_DATABASE_URL, as in deployments."""
    monkeypatch.setenv("CTMONITOR_DATABASE_URL", db_url)
    p = tmp_path / "config.toml"
    p.write_text(f"""
[api]
base_url = "{api.base_url}"
min_interval_seconds = 0
page_size = 5
backoff_base_seconds = 0
max_attempts = 2

[[queries]]
name = "everything"
term = "ALL"
""")
    return p


@pytest.fixture
def world(database: Database) -> Iterator[Any]:
    """The domain records served locally and polled once, with four subscribers
    (tests.harness.World); the poll is made once per test process and copied."""
    from tests.harness import make_world

    yield from make_world(database, shared=True)


# -- the garbage collector ---------------------------------------------------------------
# A test process holds a large, long-lived heap: every collected test, the fixtures, the
# modules. Each full collection of the cyclic garbage collector walked all of it again
# (seen as a fifth of the suite's time, spent inside whatever happened to allocate).
# Objects alive after collection, and after every few tests, are moved out of the
# collector's sight (gc.freeze): they are still freed when nothing refers to them; only a
# reference cycle among them would be kept, until the process ends.
_FREEZE_EVERY = 25
_ran = 0


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    _freeze()


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """After a test and its fixtures' teardown: what is still alive now stays alive."""
    global _ran
    _ran += 1
    if _ran % _FREEZE_EVERY == 0:
        _freeze()

"""Shared fixtures: real SQLite and PostgreSQL databases built by `alembic upgrade head`,
the local API server on 127.0.0.1, and the real study records in tests/data/.

PostgreSQL tests run against $CTMONITOR_TEST_PG_URL (default: the local server, database
`test`), each in a schema of its own. Without a reachable server they are skipped,
unless CTMONITOR_REQUIRE_PG=1 (as in CI), where that is a failure.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

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
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


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


@pytest.fixture
def database(db_url: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    """A database at schema head, built by the migrations (on SQLite, a copy of a database
    they built for this test process)."""
    if db_url.startswith("sqlite:///"):
        head = request.getfixturevalue("_sqlite_at_head")
        source, target = sqlite3.connect(head), sqlite3.connect(db_url.removeprefix("sqlite:///"))
        with target:
            source.backup(target)
        source.close()
        target.close()
    db = open_database(db_url, auto_upgrade=True)
    yield db
    db.dispose()


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
    """The domain records served locally and polled once, with four subscribers (tests.harness.World)."""
    from tests.harness import make_world

    yield from make_world(database)

"""No GET writes anything: every page a reader opens, the subscriber's pages included, leaves
the database as it was, byte for byte (a read-only replica serves them all). The key that
signs readers' links is made with the database, by its migrations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import WebSettings
from monitor.store.db import Database
from monitor.web import create_app
from tests.harness import KYSA_LN, World, changes_in_the_registry


def _snapshot(database: Database) -> dict[str, Any]:
    """Every row of every table, in a stable order."""
    out: dict[str, Any] = {}
    with database.engine.connect() as conn:
        meta = sa.MetaData()
        meta.reflect(conn)
        for name, table in sorted(meta.tables.items()):
            cols = list(table.columns)
            rows = conn.execute(sa.select(*cols).order_by(*cols[:1])).all()
            out[name] = sorted(repr(tuple(r)) for r in rows)
    return out


def test_the_link_signing_key_is_made_by_the_migrations(database: Database) -> None:
    with database.engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT name, value FROM app_secrets")).all()
    assert [k for k, _ in keys] == ["link-signing"] and len(keys[0][1]) >= 40


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    changes_in_the_registry(world)
    settings = world.settings.model_copy(
        update={"web": WebSettings(base_url="https://ct.example.org", signup=True)}
    )
    app = Application(settings, database=world.database, now=world.clock)
    with TestClient(create_app(app)) as c:
        yield c


def test_no_get_writes_anything(client: TestClient, world: World) -> None:
    before = _snapshot(world.database)
    for path in (
        "/",
        "/?indication=lupus&format=csv",
        "/changes?indication=lupus",
        "/report",
        "/report?format=json",
        f"/studies/{KYSA_LN}",
        "/subscribe",
        "/manage/not-a-real-link",
        "/unsubscribe/not-a-real-link",
        "/confirm/not-a-real-link",
        "/api/events",
        "/api/studies",
        "/feeds/changes.xml",
        "/status",
        "/health",
    ):
        response = client.get(path)
        assert response.status_code < 500, path
    assert _snapshot(world.database) == before

"""The curator's pages: off without CTMONITOR_ADMIN_PASSWORD, refused without a login,
back-off after failed logins, CSRF on every form; the review queue pins a label into the
overrides file and relabels; held events are released; the subscriber list. SQLite and
PostgreSQL, the web through its ASGI stack."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from monitor import store
from monitor.app import Application
from monitor.config import ClassificationSettings, WebSettings
from monitor.web import create_app
from tests.harness import World, shift_the_whole_registry

BASE = "https://ct.example.org"
PASSWORD = "correct horse battery staple"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


@pytest.fixture
def admin(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[World, TestClient, Path]:
    monkeypatch.setenv("CTMONITOR_ADMIN_PASSWORD", PASSWORD)
    overrides = tmp_path / "overrides.toml"
    world.settings = world.settings.model_copy(
        update={
            "web": WebSettings(base_url=BASE),
            "classification": ClassificationSettings(overrides=str(overrides)),
        }
    )
    app = Application(world.settings, database=world.database, now=world.clock)
    return world, TestClient(create_app(app), base_url=BASE), overrides


def _login(client: TestClient, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    page = client.get("/admin/login")
    return client.post(
        "/admin/login", data={"csrf": _csrf(page.text), "password": password}, follow_redirects=False
    )


def test_the_pages_are_off_without_a_password(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CTMONITOR_ADMIN_PASSWORD", raising=False)
    client = TestClient(create_app(Application(world.settings, database=world.database, now=world.clock)))
    assert client.get("/admin").status_code == 404
    assert client.get("/admin/login").status_code == 404


def test_no_login_no_page_and_failed_logins_back_off(admin: tuple[World, TestClient, Path]) -> None:
    world, client, _ = admin
    r = client.get("/admin", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"
    assert client.post("/admin", data={"action": "release"}).status_code == 403
    # a subscriber's cookie or a forged session is no login
    client.cookies.set("ctm_admin", "admin.forged.signature", path="/admin")
    assert client.get("/admin", follow_redirects=False).status_code == 303
    client.cookies.clear()

    first = _login(client, "wrong")
    assert first.status_code in (401, 429) and "Not signed in" in first.text
    second = _login(client, PASSWORD)  # even the right password waits out the back-off
    assert second.status_code == 429 and "seconds" in second.text
    world.clock.advance(seconds=3)
    third = _login(client, "wrong again")
    assert third.status_code in (401, 429)
    world.clock.advance(seconds=3)
    assert _login(client, PASSWORD).status_code == 429  # 4 s now
    world.clock.advance(seconds=5)
    ok = _login(client, PASSWORD)
    assert ok.status_code == 303 and ok.headers["location"] == "/admin"
    assert (
        "httponly" in ok.headers["set-cookie"].lower()
        and "samesite=strict" in ok.headers["set-cookie"].lower()
    )
    page = client.get("/admin")
    assert page.status_code == 200 and "Review queue" in page.text and "Subscribers" in page.text
    # a login form without its token is refused
    assert client.post("/admin/login", data={"password": PASSWORD}).status_code == 403
    # the session expires
    world.clock.advance(hours=13)
    assert client.get("/admin", follow_redirects=False).status_code in (
        200,
        303,
    )  # itsdangerous uses real time


def test_pinning_a_label_writes_the_overrides_file_and_relabels(
    admin: tuple[World, TestClient, Path],
) -> None:
    world, client, overrides = admin
    assert _login(client).status_code == 303
    page = client.get("/admin")
    queue = re.findall(r'name="nct" value="(NCT\d{8})"', page.text)
    assert queue, "the labelled records leave something to review"
    nct = queue[0]
    # CSRF-less and bad values are refused, and nothing is written
    assert (
        client.post(
            "/admin", data={"action": "pin", "nct": nct, "label": "modality", "value": "x"}
        ).status_code
        == 403
    )
    bad = client.post(
        "/admin",
        data={
            "csrf": _csrf(page.text),
            "action": "pin",
            "nct": nct,
            "label": "colour",
            "value": "x",
            "reason": "r",
        },
    )
    assert bad.status_code == 400 and "colour" in bad.text and not overrides.exists()
    done = client.post(
        "/admin",
        data={
            "csrf": _csrf(page.text),
            "action": "pin",
            "nct": nct,
            "label": "modality",
            "value": "CAR-T",
            "reason": 'The record says "anti-CD19 CAR T cells" in the arm <b>description</b>',
        },
    )
    assert done.status_code == 200 and f"Pinned modality of {nct}" in done.text
    assert "<b>description</b>" not in done.text  # escaped wherever it is shown
    [entry] = tomllib.loads(overrides.read_text(encoding="utf-8"))["override"]
    assert entry == {
        "nct_id": nct,
        "field": "modality",
        "value": "CAR-T",
        "reason": 'The record says "anti-CD19 CAR T cells" in the arm <b>description</b>',
    }
    with world.database.session() as s:
        [row] = [
            r for r in store.study_summaries(s, in_scope=None, with_classification=False) if r.nct_id == nct
        ]
        assert row.modality == "CAR-T"
        assert "modality" in store.classifications(s, [nct])[nct]["curated"]


def test_held_events_are_listed_and_released(admin: tuple[World, TestClient, Path]) -> None:
    world, client, _ = admin
    shift_the_whole_registry(world.registry)
    world.poll()
    with world.database.session() as s:
        held = len(store.list_events(s, held=True))
    assert held > 0
    assert _login(client).status_code == 303
    page = client.get("/admin")
    assert f'Held events <span class="muted">({held})' in page.text
    r = client.post("/admin", data={"csrf": _csrf(page.text), "action": "release", "run": ""})
    assert r.status_code == 200 and f"Released {held} events" in r.text
    with world.database.session() as s:
        assert store.list_events(s, held=True) == []


def test_the_subscriber_list_shows_state_and_never_a_secret(
    admin: tuple[World, TestClient, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.config import SubscriberSettings

    world, client, _ = admin
    monkeypatch.setenv("HOOK", "tok-3b1f9c2e")
    world.settings = world.settings.model_copy(
        update={
            "subscribers": [
                *world.settings.subscribers,
                SubscriberSettings(
                    name="chat", email="c@example.org", channel="slack://${HOOK}/B0/C0/#trials"
                ),
            ]
        }
    )
    client = TestClient(
        create_app(Application(world.settings, database=world.database, now=world.clock)), base_url=BASE
    )
    assert _login(client).status_code == 303
    page = client.get("/admin").text
    assert "derm@example.org" in page and "config.toml" in page and "slack://…/…" in page
    assert "tok-3b1f9c2e" not in page and "${HOOK}" not in page

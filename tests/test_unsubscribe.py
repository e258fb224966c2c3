"""Leaving in one click: every digest carries the subscriber's signed link and the
List-Unsubscribe headers (RFC 2369 and RFC 8058); the mail client's POST ends the
subscription without a session, twice is the same as once, and nothing more is sent.
Forged, altered and revoked links are refused without saying whose they were. A real SMTP
server on loopback, the web through its ASGI stack, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from monitor import store
from monitor.app import Application
from monitor.config import WebSettings
from monitor.web import create_app
from tests.harness import PEMPHIGUS, World, changes_in_the_registry
from tests.smtp import SmtpServer

BASE = "https://ct.example.org"


def _link(msg) -> str:  # type: ignore[no-untyped-def]
    header = str(msg["List-Unsubscribe"])
    https = [part.strip(" <>") for part in header.split(",") if part.strip().startswith("<https")]
    assert len(https) == 1, header
    return https[0]


def test_one_click_unsubscribe_ends_the_digest_and_nothing_more_is_sent(world: World, tmp_path: Path) -> None:
    world.settings = world.settings.model_copy(update={"web": WebSettings(base_url=BASE)})
    app = Application(world.settings, database=world.database, now=world.clock)
    with SmtpServer(tmp_path) as server, TestClient(create_app(app)) as client:
        smtp = server.settings(list_unsubscribe="mailto:admin@example.org?subject=unsubscribe")
        world.send(smtp)
        mails = {str(m["To"].addresses[0].addr_spec): m for m in server.messages}
        derm = mails["derm@example.org"]
        link = _link(derm)
        assert link.startswith(f"{BASE}/unsubscribe/")
        assert "<mailto:admin@example.org?subject=unsubscribe>" in str(derm["List-Unsubscribe"])
        assert derm["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = derm.get_body(("plain",)).get_content()
        assert f"Unsubscribe: {link}" in text
        assert "derm" not in link.rsplit("/", 1)[1] and "@" not in link  # the link names nobody
        path = link.removeprefix(BASE)
        # a GET (a link scanner, a preview) changes nothing
        page = client.get(path)
        assert (
            page.status_code == 200
            and "d***@example.org" in page.text
            and "derm@example.org" not in page.text
        )
        with world.database.session() as s:
            assert store.unsubscribed_names(s) == set()
        # the mail client's one-click POST: no session, no form token
        first = client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert first.status_code == 200 and "You are unsubscribed" in first.text
        again = client.post(path, content=b"List-Unsubscribe=One-Click")
        assert again.status_code == 200 and "You are unsubscribed" in again.text
        with world.database.session() as s:
            assert store.unsubscribed_names(s) == {"derm"}

        changes_in_the_registry(world)  # the pemphigus study is suspended: derm would be told
        out = {o.subscriber: o.status for o in world.send(smtp)}
        assert "derm" not in out and out["everything"] == "sent"  # the run no longer counts them
        assert not [m for m in server.messages[len(mails) :] if "derm@example.org" in str(m["To"])]
        assert (
            PEMPHIGUS
            in next(m for m in server.messages[len(mails) :] if "all@example.org" in str(m["To"]))
            .get_body(("plain",))
            .get_content()
        )


def test_forged_altered_and_revoked_links_are_refused(world: World, tmp_path: Path) -> None:
    world.settings = world.settings.model_copy(update={"web": WebSettings(base_url=BASE)})
    app = Application(world.settings, database=world.database, now=world.clock)
    with SmtpServer(tmp_path) as server, TestClient(create_app(app)) as client:
        world.send(server.settings())
        links = {str(m["To"].addresses[0].addr_spec): _link(m).removeprefix(BASE) for m in server.messages}
        derm, lupus = links["derm@example.org"], links["lupus@example.org"]
        assert derm != lupus
        for bad in (
            "/unsubscribe/not-a-token",
            derm[:-2] + ("AA" if not derm.endswith("AA") else "BB"),  # altered signature
            "/unsubscribe/" + derm.rsplit("/", 1)[1].split(".")[0] + "." + lupus.rsplit(".", 1)[1],
        ):
            r = client.post(bad)
            assert r.status_code == 400 and "not valid" in r.text and "derm" not in r.text
        with world.database.session() as s:
            store.revoke_links(s, "derm", world.clock())
        assert client.post(derm).status_code == 400  # revoked: the old link no longer works
        with world.database.session() as s:
            assert store.unsubscribed_names(s) == set()
        # a new digest carries a new, valid link
        assert client.get(lupus).status_code == 200

"""A reader moves their digest to a new address from their own page: a confirmation link
goes to the new address and nothing changes until it is followed; the next digest goes
there. An administrator's entries keep the address config.toml gives them. A real SMTP
server on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from monitor import store
from monitor.app import Application
from monitor.config import WebSettings
from monitor.core.domain import SubscriberStatus
from monitor.publishing import delivery, links
from monitor.web import create_app
from tests.harness import World, changes_in_the_registry
from tests.smtp import SmtpServer

BASE = "https://ct.example.org"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


def test_a_new_address_is_confirmed_from_the_mail_sent_to_it(world: World, tmp_path: Path) -> None:
    with world.database.session() as s:
        row = store.add_signup(s, "old@example.org", {"indications": ["pemphigus"]}, world.clock())
        store.set_status(s, row.name, SubscriberStatus.ACTIVE, world.clock())
        name = row.name
        manage = "/manage/" + links.make_token(s, name, row.link_generation, links.MANAGE)
        s.commit()
    with SmtpServer(tmp_path) as server:
        world.settings = world.settings.model_copy(
            update={"web": WebSettings(base_url=BASE), "smtp": server.settings()}
        )
        app = Application(world.settings, database=world.database, now=world.clock)
        with TestClient(create_app(app), base_url=BASE) as client:
            page = client.get(manage)
            assert "Change my address" in page.text
            bad = client.post(
                manage, data={"csrf": _csrf(page.text), "action": "address", "email": "not an address"}
            )
            assert bad.status_code == 400 and "is not an e-mail address" in bad.text and not server.messages
            asked = client.post(
                manage, data={"csrf": _csrf(page.text), "action": "address", "email": "new@example.org"}
            )
            assert asked.status_code == 200 and "n***@example.org" in asked.text
            (mail,) = server.messages
            assert str(mail["To"]) == "new@example.org"
            link = re.search(rf"{re.escape(BASE)}(/address/\S+)", mail.get_body(("plain",)).get_content())
            assert link
            with world.database.session() as s:
                assert store.get_subscriber(s, name).email == "old@example.org"  # not before confirming
            look = client.get(link.group(1))  # a link scanner's GET changes nothing
            assert look.status_code == 200 and "Yes, use this address" in look.text
            with world.database.session() as s:
                assert store.get_subscriber(s, name).email == "old@example.org"
            done = client.post(link.group(1), data={"csrf": _csrf(look.text)})
            assert done.status_code == 200 and "now goes to n***@example.org" in done.text
            with world.database.session() as s:
                assert store.get_subscriber(s, name).email == "new@example.org"
            forged = client.get(link.group(1)[:-3] + "xyz")
            assert forged.status_code == 400
        # the next digest goes to the new address
        world.send(server.settings())
        changes_in_the_registry(world)
        world.send(server.settings())
        to = [str(m["To"]) for m in server.messages[1:]]
        assert "new@example.org" in to and "old@example.org" not in to


def test_an_administrators_entry_keeps_its_address(world: World, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        world.settings = world.settings.model_copy(
            update={"web": WebSettings(base_url=BASE), "smtp": server.settings()}
        )
        app = Application(world.settings, database=world.database, now=world.clock)
        with world.database.session() as s:
            delivery.sync_file(s, world.settings, world.clock())
            row = store.get_subscriber(s, "derm")
            manage = "/manage/" + links.make_token(s, "derm", row.link_generation, links.MANAGE)
            s.commit()
        with TestClient(create_app(app), base_url=BASE) as client:
            page = client.get(manage)
            assert "Change my address" not in page.text
            refused = client.post(
                manage, data={"csrf": _csrf(page.text), "action": "address", "email": "x@example.org"}
            )
            assert refused.status_code == 400 and "person who runs this monitor" in refused.text
            assert not server.messages

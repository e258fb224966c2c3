"""Subscribers serve themselves: sign up in the browser (double opt-in), get the landscape,
then the changes with their personal links, manage filters, pause, mark as read, leave in
one click; config.toml's subscribers live in the same table. A real SMTP server on
loopback, the web through its ASGI stack, SQLite and PostgreSQL."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from monitor import store
from monitor.app import Application
from monitor.config import SubscriberSettings, WebSettings
from monitor.core.domain import SubscriberStatus
from monitor.store import db as dbmod
from monitor.web import create_app
from tests.harness import KYSA_LN, PEMPHIGUS, World, changes_in_the_registry, edit, suspend
from tests.smtp import SmtpServer

BASE = "https://ct.example.org"
READER = "new.reader@example.org"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _to(server: SmtpServer, address: str) -> list[EmailMessage]:
    return [m for m in server.messages if str(m["To"].addresses[0].addr_spec) == address]


def _link(text: str, kind: str) -> str:
    found = re.search(rf"{re.escape(BASE)}/{kind}/[\w.\-]+", text)
    assert found, f"no {kind} link in:\n{text}"
    return found.group(0).removeprefix(BASE)


def _web(world: World, server: SmtpServer, **web: object) -> tuple[Application, TestClient]:
    world.settings = world.settings.model_copy(
        update={
            "web": WebSettings(base_url=BASE, **web),  # type: ignore[arg-type]
            "smtp": server.settings(list_unsubscribe="mailto:admin@example.org?subject=unsubscribe"),
        }
    )
    app = Application(world.settings, database=world.database, now=world.clock)
    return app, TestClient(create_app(app), base_url=BASE)


def _sign_up(client: TestClient, email: str = READER, **fields: str | list[str]) -> str:
    form = client.get("/subscribe")
    assert form.status_code == 200 and "Subscribe to the digest" in form.text
    r = client.post("/subscribe", data={"csrf": _csrf(form.text), "email": email, **fields})
    return r.text if r.status_code == 200 else f"{r.status_code}: {r.text}"


def test_the_whole_flow_sign_up_confirm_landscape_change_manage_and_leave(
    world: World, tmp_path: Path
) -> None:
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            assert "Check your mail" in _sign_up(client, indication="pemphigus", importance="1")
            [confirmation] = _to(server, READER)
            assert "Confirm" in str(confirmation["Subject"])
            confirm = _link(_text(confirmation), "confirm")

            # before confirming: nothing is sent to them
            out = {o.subscriber for o in world.send()}
            assert len(_to(server, READER)) == 1 and not any(n.startswith("web-") for n in out)

            page = client.get(confirm)  # a mail scanner's GET changes nothing
            assert page.status_code == 200 and "n***@example.org" in page.text and READER not in page.text
            with world.database.session() as s:
                assert [r.status for r in store.subscribers_with_email(s, READER)] == ["pending"]
            done = client.post(confirm, data={"csrf": _csrf(page.text)})
            assert done.status_code == 200 and "You are subscribed" in done.text

            # the first digest is the landscape of what their filters follow
            [first] = [o for o in world.send() if o.subscriber.startswith("web-")]
            assert first.status == "sent" and first.kind == "landscape"
            landscape = _to(server, READER)[-1]
            assert "1 study you follow" in _text(landscape)  # the pemphigus study, nothing else
            assert f"{BASE}/?indication=pemphigus" in _text(landscape)

            # a change: the digest carries both personal links and both unsubscribe headers
            changes_in_the_registry(world)
            world.send()
            digest = _to(server, READER)[-1]
            text = _text(digest)
            assert PEMPHIGUS in text and "Suspended" in text
            header = str(digest["List-Unsubscribe"])
            assert (
                f"<{BASE}/unsubscribe/" in header
                and "<mailto:admin@example.org?subject=unsubscribe>" in header
            )
            assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            manage = _link(text, "manage")
            assert "Change your filters, pause or leave" in digest.get_body(("html",)).get_content()

            # their page: what changed since their last look, then marked as read
            mine = client.get(manage)
            assert mine.status_code == 200 and mine.headers["cache-control"] == "no-store"
            assert "Since your last look" in mine.text and PEMPHIGUS in mine.text
            assert KYSA_LN not in mine.text.split("Your filters")[0]  # another reader's study
            upto = re.search(r'name="upto" value="(\d+)"', mine.text)
            assert upto
            read = client.post(
                manage, data={"csrf": _csrf(mine.text), "action": "read", "upto": upto.group(1)}
            )
            assert "Nothing new since your last look" in read.text

            # the mail client's one-click POST (no session, no form token): nothing more is sent
            leave = re.search(r"<(https://[^>]+/unsubscribe/[^>]+)>", header)
            assert leave
            r = client.post(
                leave.group(1).removeprefix(BASE),
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 200 and "You are unsubscribed" in r.text
            before = len(_to(server, READER))
            edit(world.registry, PEMPHIGUS, lambda ps: ps["statusModule"].update(overallStatus="TERMINATED"))
            world.registry.data_timestamp = "2026-11-09T09:00:04"
            world.poll()
            world.send()
            assert len(_to(server, READER)) == before


def test_the_form_never_tells_whether_an_address_is_subscribed(world: World, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            world.send()  # derm@example.org (config.toml) is subscribed and has had a digest
            known = _sign_up(client, email="derm@example.org", indication="SLE")
            unknown = _sign_up(client, email="someone@example.org", indication="SLE")
            assert known == unknown  # the same page, word for word
            [mail] = _to(server, "derm@example.org")[-1:]
            assert "already subscribed" in _text(mail) and "/manage/" in _text(mail)
            with world.database.session() as s:
                # nothing about derm changed, and no second subscription was made
                [derm] = store.subscribers_with_email(s, "derm@example.org")
                assert derm.name == "derm" and derm.preferences["indications"] == ["pemphigus"]


def test_sign_ups_are_rate_limited_per_address_and_per_client(world: World, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server, signups_per_address_per_day=2, signups_per_client_per_hour=4)
        with client:
            pages = [_sign_up(client, email="victim@example.org") for _ in range(3)]
            assert pages[0] == pages[1] == pages[2]  # the third looks the same...
            assert len(_to(server, "victim@example.org")) == 2  # ...but sends nothing
            assert "Check your mail" in _sign_up(client, email="other@example.org")
            limited = _sign_up(client, email="third@example.org")
            assert limited.startswith("429") and "Too many sign-ups" in limited
            assert not _to(server, "third@example.org")
            world.clock.advance(hours=2)
            assert "Check your mail" in _sign_up(client, email="third@example.org")
            with world.database.session() as s:
                assert (
                    store.count_attempts(
                        s, "signup", world.clock() - __import__("datetime").timedelta(days=1)
                    )
                    == 5
                )
                # the records hold keyed hashes, never an address
                rows = s.execute(
                    __import__("sqlalchemy").text("select address_key, client_key from web_attempts")
                )
                assert all("@" not in a and "testclient" not in c for a, c in rows)


def test_bad_input_is_named_and_forms_without_their_token_are_refused(world: World, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            bad = _sign_up(client, indication="lupuss")
            assert bad.startswith("400") and "lupuss" in bad and "SLE" in bad
            assert 'value="new.reader@example.org"' in bad  # the form comes back filled in
            assert _sign_up(client, email="not-an-address").startswith("400")
            assert _sign_up(client, nct="NCT123").startswith("400")
            # no token, a wrong token, a token without its cookie
            for data, _cookies in (
                ({"email": READER}, None),
                ({"email": READER, "csrf": "0" * 64}, None),
            ):
                r = client.post("/subscribe", data=data)
                assert r.status_code == 403 and "reload the page" in r.text
            token = _csrf(client.get("/subscribe").text)
            fresh = TestClient(client.app, base_url=BASE)
            assert fresh.post("/subscribe", data={"email": READER, "csrf": token}).status_code == 403
            assert not server.messages


def test_the_manage_page_changes_filters_pauses_and_opens_only_its_own_holder(
    world: World, tmp_path: Path
) -> None:
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            _sign_up(client, indication="pemphigus")
            _sign_up(client, email="second@example.org", indication="SLE")
            for address in (READER, "second@example.org"):
                confirm = _link(_text(_to(server, address)[0]), "confirm")
                client.post(confirm, data={"csrf": _csrf(client.get(confirm).text)})
            world.send()
            mine = _link(_text(_to(server, READER)[-1]), "manage")
            theirs = _link(_text(_to(server, "second@example.org")[-1]), "manage")
            page = client.get(mine)
            assert "n***@example.org" in page.text and "s***@example.org" not in page.text
            assert "pemphigus" in page.text.split("Since your last look")[1].split("Your filters")[0]

            # follow one more study by id and widen to SLE; the stored filters change, theirs do not
            saved = client.post(
                mine,
                data={
                    "csrf": _csrf(page.text),
                    "action": "save",
                    "indication": ["pemphigus", "SLE"],
                    "nct": "nct06359041",
                },
            )
            assert saved.status_code == 200 and "filters are saved" in saved.text
            with world.database.session() as s:
                rows = {r.email: r for r in store.list_subscribers(s)}
                assert rows[READER].preferences["indications"] == ["pemphigus", "SLE"]
                assert rows[READER].preferences["nct_ids"] == ["NCT06359041"]
                assert rows["second@example.org"].preferences["indications"] == ["SLE"]
            bad = client.post(mine, data={"csrf": _csrf(page.text), "action": "save", "target": "CD99"})
            assert bad.status_code == 400 and "CD99" in bad.text

            # pause: the digest run skips them and their changes wait
            client.post(mine, data={"csrf": _csrf(page.text), "action": "pause"})
            edit(world.registry, PEMPHIGUS, suspend, posted="2026-11-04")
            world.registry.data_timestamp = "2026-11-05T09:00:04"
            world.poll()
            names = {o.subscriber: o.status for o in world.send()}
            reader = next(r.name for r in app_rows(world) if r.email == READER)
            assert reader not in names
            assert "paused" in client.get(mine).text
            client.post(mine, data={"csrf": _csrf(page.text), "action": "resume"})
            [resumed] = [o for o in world.send() if o.subscriber == reader]
            assert resumed.status == "sent" and PEMPHIGUS in _text(_to(server, READER)[-1])

            # tokens: one kind never passes for another, and an altered one never verifies
            unsubscribe = _link(_text(_to(server, READER)[-1]), "unsubscribe")
            for bad_path in (
                "/manage/" + unsubscribe.rsplit("/", 1)[1],
                "/unsubscribe/" + mine.rsplit("/", 1)[1],
                mine[:-3] + "xyz",
                "/manage/" + mine.rsplit("/", 1)[1].split(".")[0] + "." + theirs.rsplit(".", 1)[1],
            ):
                r = client.get(bad_path)
                assert r.status_code == 400 and "not valid" in r.text and "@" not in r.text.split("<main>")[1]
            # a file-managed subscriber's filters are the administrator's
            derm = _link(_text(_to(server, "derm@example.org")[-1]), "manage")
            page = client.get(derm)
            assert "who runs this monitor sets these filters" in page.text
            r = client.post(derm, data={"csrf": _csrf(page.text), "action": "save", "indication": "SLE"})
            assert r.status_code == 400 and "person who runs this monitor" in r.text


def app_rows(world: World) -> list[store.SubscriberRow]:
    with world.database.session() as s:
        rows = store.list_subscribers(s)
        s.expunge_all()
        return rows


def test_config_subscribers_are_created_updated_and_removed_at_start(world: World) -> None:
    app = Application(world.settings, database=world.database, now=world.clock)
    assert set(app.sync_subscribers()) == {s.name for s in world.settings.subscribers}
    assert app.sync_subscribers() == []  # nothing to do twice
    with world.database.session() as s:
        store.unsubscribe(s, "derm", world.clock())
    edited = [
        SubscriberSettings(name="lupus-team", email="lupus-new@example.org", indications=["SLE"]),
        SubscriberSettings(name="derm", email="derm@example.org", indications=["pemphigus", "SLE"]),
    ]
    app = Application(
        world.settings.model_copy(update={"subscribers": edited}), database=world.database, now=world.clock
    )
    app.sync_subscribers()
    rows = {r.name: r for r in app_rows(world)}
    assert rows["lupus-team"].email == "lupus-new@example.org" and rows["lupus-team"].status == "active"
    assert rows["derm"].status == "unsubscribed"  # the file cannot sign anyone back up
    assert rows["derm"].preferences["indications"] == ["pemphigus", "SLE"]
    assert rows["everything"].status == rows["mg-coordinator"].status == "removed"
    assert {r.managed_by for r in rows.values()} == {"file"}


def test_an_existing_database_upgrades_with_its_delivery_history_intact(db_url: str, tmp_path: Path) -> None:
    """A database from before subscribers lived in it (0009): the file's subscribers, their
    deliveries and who had left come through the upgrade; nothing is re-sent or lost."""
    from tests.harness import make_world

    database = dbmod.open_database(db_url, auto_upgrade=True)
    try:
        gen = make_world(database)
        world = next(gen)
        with SmtpServer(tmp_path) as server:
            world.settings = world.settings.model_copy(update={"smtp": server.settings()})
            world.send()
            changes_in_the_registry(world)
            with world.database.session() as s:
                store.unsubscribe(s, "derm", world.clock())
            world.send()
            sent = len(server.messages)
            settled = {n: world.settled(n) for n in ("lupus-team", "everything", "derm")}
            dbmod.downgrade(database.engine, "0009")
            with database.engine.connect() as c:
                states = dict(
                    c.execute(
                        __import__("sqlalchemy").text("select name, unsubscribed_at from subscriber_states")
                    ).all()
                )
            assert states["derm"] is not None and states["everything"] is None
            dbmod.upgrade(database.engine)
            out = {o.subscriber: o.status for o in world.send()}
            assert set(out.values()) == {"nothing-due"} and "derm" not in out
            assert len(server.messages) == sent
            assert {n: world.settled(n) for n in settled} == settled
            with world.database.session() as s:
                assert store.get_subscriber(s, "derm").status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
                assert store.get_subscriber(s, "everything").email == "all@example.org"  # type: ignore[union-attr]
            # the next change reaches them once, as a changes digest (not a second landscape)
            edit(world.registry, KYSA_LN, lambda ps: ps["designModule"]["enrollmentInfo"].update(count=30))
            world.registry.data_timestamp = "2026-11-09T09:00:04"
            world.poll()
            kinds = {o.subscriber: o.kind for o in world.send() if o.status == "sent"}
            assert kinds["everything"] == kinds["lupus-team"] == "changes" and "derm" not in kinds
        gen.close()
    finally:
        database.dispose()


def test_a_leaked_link_is_replaced_from_the_page_and_by_the_administrator(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            world.send()
            manage = _link(_text(_to(server, "derm@example.org")[-1]), "manage")
            page = client.get(manage)
            r = client.post(manage, data={"csrf": _csrf(page.text), "action": "new-link"})
            assert r.status_code == 200 and "This link no longer works" in r.text
            assert client.get(manage).status_code == 400  # the old link is dead
            fresh = _link(_text(_to(server, "derm@example.org")[-1]), "manage")
            assert fresh != manage and client.get(fresh).status_code == 200
            assert "Your new personal link" in _text(_to(server, "derm@example.org")[-1])

    from monitor.cli import main

    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{world.database.url}"\n'
        '[[subscribers]]\nname = "derm"\nemail = "derm@example.org"\nindications = ["pemphigus"]\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "subscribers"]) == 0
    listed = capsys.readouterr().out
    assert "derm" in listed and "config.toml" in listed
    with world.database.session() as s:
        before = store.get_subscriber(s, "derm").link_generation  # type: ignore[union-attr]
    assert main(["--config", str(config), "subscribers", "--revoke", "derm"]) == 0
    assert "revoked" in capsys.readouterr().out
    with world.database.session() as s:
        assert store.get_subscriber(s, "derm").link_generation == before + 1  # type: ignore[union-attr]
    assert main(["--config", str(config), "subscribers", "--revoke", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "no subscriber named 'nobody'" in err and "Traceback" not in err


def test_a_study_a_reader_follows_from_the_web_is_tracked_by_id_from_the_next_poll(
    world: World, tmp_path: Path
) -> None:
    """A coordinator types the NCT id of a trial the watch queries do not reach."""
    import copy

    from tests.harness import MG

    outsider = "NCT07799977"
    record = copy.deepcopy(world.registry.studies[MG])
    ident = record["protocolSection"]["identificationModule"]
    ident["nctId"], ident["briefTitle"] = outsider, "Knee Osteoarthritis Exercise Programme"
    record["protocolSection"]["conditionsModule"]["conditions"] = ["Knee Osteoarthritis"]
    record["protocolSection"]["armsInterventionsModule"]["interventions"] = [
        {"type": "BEHAVIORAL", "name": "Exercise"}
    ]
    record["protocolSection"].get("descriptionModule", {}).clear()
    world.registry.put(record)
    world.poll()
    with world.database.session() as s:
        assert not store.tracked_ids(s, [outsider])  # no watch query reaches it
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            _sign_up(client, nct=outsider.lower())
            confirm = _link(_text(_to(server, READER)[0]), "confirm")
            client.post(confirm, data={"csrf": _csrf(client.get(confirm).text)})
    world.poll()
    with world.database.session() as s:
        row = store.study_row(s, outsider)
        assert row is not None and row.in_query is False
    page = Application(world.settings, database=world.database, now=world.clock).study_page(outsider)
    assert page.followed_by == 1


def test_the_mailto_unsubscribe_reaches_the_administrator_who_acts_on_it(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monitor.cli import main
    from monitor.config import ScheduleSettings

    with SmtpServer(tmp_path) as server:
        world.settings = world.settings.model_copy(
            update={
                "web": WebSettings(base_url=BASE),
                "smtp": server.settings(),
                "schedule": ScheduleSettings(admin_email="curator@example.org"),
            }
        )
        world.send()
        header = str(_to(server, "derm@example.org")[-1]["List-Unsubscribe"])
        assert (
            "<mailto:curator@example.org?subject=unsubscribe%20derm>" in header
            and f"<{BASE}/unsubscribe/" in header
        )
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "{world.database.url}"\n'
            '[[subscribers]]\nname = "derm"\nemail = "derm@example.org"\nindications = ["pemphigus"]\n',
            encoding="utf-8",
        )
        assert main(["--config", str(config), "subscribers", "--unsubscribe", "derm"]) == 0
        assert "derm: unsubscribed" in capsys.readouterr().out
        changes_in_the_registry(world)
        sent = len(_to(server, "derm@example.org"))
        assert "derm" not in {o.subscriber for o in world.send()}
        assert len(_to(server, "derm@example.org")) == sent


def test_a_reader_follows_a_product_by_any_of_its_names(world: World, tmp_path: Path) -> None:
    """Signed up with "rese-cel" (CABA-201's INN): the preferences keep the canonical name,
    the first digest follows the studies that give CABA-201 (the myasthenia study and the
    pemphigus study's sub-study), and the manage page shows it back."""
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            assert "Check your mail" in _sign_up(client, product="rese-cel", importance="1")
            [confirmation] = _to(server, READER)
            confirm = _link(_text(confirmation), "confirm")
            page = client.get(confirm)
            client.post(confirm, data={"csrf": _csrf(page.text)})
            [first] = [o for o in world.send() if o.subscriber.startswith("web-")]
            assert first.status == "sent" and first.kind == "landscape"
            text = _text(_to(server, READER)[-1])
            assert "2 studies you follow" in text
            assert "By indication: myasthenia gravis 1, pemphigus 1" in text
            assert "product CABA-201 (rese-cel)" in text
            manage = client.get(_link(text, "manage"))
            assert 'value="rese-cel"' in manage.text or "CABA-201" in manage.text


def test_a_reader_chooses_the_registries_on_the_form(world: World, tmp_path: Path) -> None:
    """The sign-up form offers the registries as boxes: the choice is stored, filters the
    digest, and shows ticked on the manage page; a value the form never offers is named."""
    with SmtpServer(tmp_path) as server:
        _app, client = _web(world, server)
        with client:
            form = client.get("/subscribe").text
            assert "Registered on" in form and 'value="ctis"' in form and "EU CTIS" in form
            bad = _sign_up(client, email="other@example.org", registry="scopus")
            assert "registry" in bad and "scopus" in bad
            assert "Check your mail" in _sign_up(client, registry="ctis", importance="1")
            [confirmation] = _to(server, READER)
            confirm = _link(_text(confirmation), "confirm")
            page = client.get(confirm)
            client.post(confirm, data={"csrf": _csrf(page.text)})
            [first] = [o for o in world.send() if o.subscriber.startswith("web-")]
            text = _text(_to(server, READER)[-1])
            assert (
                first.status == "sent" and "0 studies you follow" in text
            )  # this world is on ClinicalTrials.gov only
            assert "registered on EU CTIS" in text
            manage = client.get(_link(text, "manage")).text
            assert re.search(r'name="registry" value="ctis" checked', manage)
        with world.database.session() as s:
            [row] = [r for r in store.list_subscribers(s) if r.name.startswith("web-")]
            assert row.preferences["registries"] == ["ctis"]

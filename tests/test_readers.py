"""Written for its readers: public pages and readers' mail never show the operator's side
(file paths, database URLs, config syntax, commands, internal names); shared links survive
what newsletters add to them; RFC 8058's own form of the one-click unsubscribe works; a
team channel's digest carries no one person's links. SQLite and PostgreSQL, the web
through its ASGI stack, a real SMTP server on loopback."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from monitor import store
from monitor.app import Application
from monitor.config import SubscriberSettings, WebSettings
from monitor.core.domain import SubscriberStatus
from monitor.publishing import delivery
from monitor.web import create_app
from tests.harness import World, changes_in_the_registry
from tests.smtp import SmtpServer

BASE = "https://ct.example.org"
OPERATOR_WORDS = ("ctmonitor poll", "ctmonitor backfill", "config.toml", "[[queries]]", "sqlite:", ".db")


def _client(world: World) -> TestClient:
    world.settings = world.settings.model_copy(update={"web": WebSettings(base_url=BASE, signup=True)})
    return TestClient(create_app(Application(world.settings, database=world.database, now=world.clock)))


def test_an_unknown_study_says_this_monitor_does_not_follow_it(world: World) -> None:
    with _client(world) as client:
        page = client.get("/studies/NCT09999998")
        assert page.status_code == 404
        assert "This monitor does not follow NCT09999998" in page.text
        assert 'href="https://clinicaltrials.gov/study/NCT09999998"' in page.text
        assert 'href="/subscribe?nct=NCT09999998"' in page.text  # sign-up is on: follow it
        assert not [w for w in OPERATOR_WORDS if w in page.text]
        api = client.get("/api/studies/NCT09999998")
        assert api.status_code == 404
        assert api.json() == {
            "error": "This monitor does not follow NCT09999998.",
            "registry_url": "https://clinicaltrials.gov/study/NCT09999998",
        }
        follow = client.get("/subscribe?nct=NCT09999998")
        assert follow.status_code == 200 and 'value="NCT09999998"' in follow.text


def test_public_pages_name_no_database_and_no_command(world: World) -> None:
    changes_in_the_registry(world)
    with _client(world) as client:
        for path in ("/", "/changes", "/status", "/report", "/studies/NCT05938725"):
            text = client.get(path).text
            assert not [w for w in OPERATOR_WORDS if w in text], path


def test_a_shared_link_survives_tracking_parameters_and_the_site_has_an_icon(world: World) -> None:
    with _client(world) as client:
        plain = client.get("/?indication=lupus")
        shared = client.get("/?indication=lupus&utm_source=newsletter&utm_medium=email&fbclid=AbC&gclid=x1")
        assert shared.status_code == 200 and shared.text == plain.text
        assert client.get("/changes?utm_campaign=week48").status_code == 200
        assert client.get("/api/events?fbclid=x").status_code == 200
        assert client.get("/?colour=blue").status_code == 400  # other unknown parameters stay errors
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert 'rel="icon"' in plain.text


def test_the_one_click_unsubscribe_takes_rfc_8058_multipart_form(world: World, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server, _client(world) as client:
        world.send(server.settings())
        derm = next(m for m in server.messages if "derm@example.org" in str(m["To"]))
        link = next(p.strip(" <>") for p in str(derm["List-Unsubscribe"]).split(",") if "https" in p)
        # RFC 8058, section 8: the mail client's POST as multipart/form-data
        boundary = "------------------------0123456789abcdef"
        body = (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            "One-Click\r\n"
            f"--{boundary}--\r\n"
        ).encode()
        done = client.post(
            link.removeprefix(BASE),
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        assert "/manage/" in done.text  # their page, to subscribe again
        with world.database.session() as s:
            assert store.unsubscribed_names(s) == {"derm"}


def test_a_web_reader_is_addressed_by_their_address_alone(world: World, tmp_path: Path) -> None:
    with world.database.session() as s:
        row = store.add_signup(s, "reader@example.org", {"indications": ["pemphigus"]}, world.clock())
        store.set_status(s, row.name, SubscriberStatus.ACTIVE, world.clock())
        s.commit()
        internal = row.name
    with SmtpServer(tmp_path) as server:
        world.settings = world.settings.model_copy(update={"web": WebSettings(base_url=BASE)})
        world.send(server.settings())
        mail = next(m for m in server.messages if "reader@example.org" in str(m["To"]))
        assert str(mail["To"]) == "reader@example.org"  # no internal name as the display name
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert internal not in text and internal not in html.replace("=\n", "")
        # the footer: their own page, every change and the web report for their filters
        assert (
            f"{BASE}/report?indication=pemphigus" in text and f"{BASE}/changes?indication=pemphigus" in text
        )
        file_reader = next(m for m in server.messages if "derm@example.org" in str(m["To"]))
        assert "derm" in str(file_reader["To"])  # an administrator's name for a team stays


def test_a_team_channel_s_digest_carries_no_one_person_s_links(world: World) -> None:
    team = SubscriberSettings(
        name="lupus-channel", email="team@example.org", channel="json://127.0.0.1:9/hook", indications=["SLE"]
    )
    world.settings = world.settings.model_copy(
        update={"web": WebSettings(base_url=BASE), "subscribers": [*world.settings.subscribers, team]}
    )
    classifier = Application(world.settings, database=world.database, now=world.clock).classifier
    with world.database.session() as s:
        delivery.sync_file(s, world.settings, world.clock())
        prepared = delivery.prepare(
            s, world.settings, team, delivery.subscriber_filter(team, classifier), world.clock()
        )
    assert prepared is not None and prepared.rendered is not None
    d = prepared.rendered.digest
    assert d.unsubscribe_url == "" and d.manage_url == ""
    assert "/manage/" not in prepared.rendered.html and "/unsubscribe/" not in prepared.rendered.html


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found
    return found.group(1)


def test_sign_up_previews_how_many_studies_the_filters_follow_and_checks_followed_ids(
    world: World, tmp_path: Path
) -> None:
    with SmtpServer(tmp_path) as server:
        world.settings = world.settings.model_copy(
            update={"web": WebSettings(base_url=BASE, signup=True), "smtp": server.settings()}
        )
        app = Application(world.settings, database=world.database, now=world.clock)
        with TestClient(create_app(app), base_url=BASE) as client:
            form = client.get("/subscribe").text
            preview = client.post(
                "/subscribe",
                data={"csrf": _csrf(form), "email": "", "indication": "pemphigus", "action": "preview"},
            )
            studies = client.get("/api/studies", params={"indication": "pemphigus"}).json()["total"]
            assert preview.status_code == 200 and f"These filters follow <b>{studies} stud" in preview.text
            assert not server.messages  # a preview saves and sends nothing
            # a followed study is checked on the registry (the local stand-in answers 404)
            missing = client.post(
                "/subscribe",
                data={
                    "csrf": _csrf(form),
                    "email": "r@example.org",
                    "nct": "NCT09999997",
                    "action": "subscribe",
                },
            )
            assert missing.status_code == 400
            assert "NCT09999997 is not on ClinicalTrials.gov" in missing.text and not server.messages
            # on the registry but not yet tracked (no watch query reaches it): asked, and accepted
            import copy

            fresh = copy.deepcopy(next(iter(world.registry.studies.values())))
            fresh["protocolSection"]["identificationModule"]["nctId"] = "NCT07799902"
            world.registry.put(fresh)
            with world.database.session() as s:
                assert store.study_row(s, "NCT07799902") is None
            ok = client.post(
                "/subscribe",
                data={
                    "csrf": _csrf(form),
                    "email": "r@example.org",
                    "nct": "NCT07799902",
                    "action": "subscribe",
                },
            )
            assert ok.status_code == 200 and len(server.messages) == 1

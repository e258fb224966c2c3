"""Digests delivered over a real SMTP server on 127.0.0.1, from real polls, on SQLite and PostgreSQL.

The contract: each subscriber gets the events that match their filters, exactly once;
nothing is recorded as delivered before the server accepted it; a failure leaves the
events for the next try; a crash after acceptance repeats a digest rather than lose it.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from monitor import store
from monitor.config import DigestSettings, SmtpSettings, SubscriberSettings
from monitor.core.classify import Classifier
from monitor.core.domain import SubscriberStatus
from monitor.core.filters import StudyFilter
from monitor.publishing import delivery
from monitor.publishing import feed as feeds
from monitor.publishing import report as reporting
from monitor.publishing.mailer import MailError, SmtpMailer
from monitor.registry.client import CtGovClient
from monitor.store.models import DeliveredEvent, Delivery, Event
from monitor.tracking.sync import Syncer
from tests.harness import (
    KYSA_LN,
    MG,
    NEW_ID,
    PEMPHIGUS,
    SUBSCRIBERS,
    World,
    by_recipient,
    changes_in_the_registry,
    edit,
    parts,
    suspend,
)
from tests.smtp import SmtpServer, free_port

# -- the happy path ---------------------------------------------------------------------


def test_first_digest_is_a_landscape_then_each_change_reaches_its_readers_once(
    world: World, tmp_path: Path
) -> None:
    with SmtpServer(tmp_path) as server:
        out = world.send(server.settings())
        assert [o.status for o in out] == ["sent"] * 4
        assert {o.kind for o in out} == {"landscape"}
        mails = by_recipient(server.messages)
        assert set(mails) == {"lupus@example.org", "derm@example.org", "coord@example.org", "all@example.org"}
        text, html = parts(mails["lupus@example.org"])
        assert "starting picture" in mails["lupus@example.org"]["Subject"]
        assert "YOUR STARTING PICTURE" in text and "By modality" in text
        assert "Your starting picture" in html
        # A first sync is not news: no study is listed as new.
        assert "New study:" not in text

        # Nothing happened since: nobody gets mail.
        assert {o.status for o in world.send(server.settings())} == {"nothing-due"}
        assert len(server.messages) == 4

        changes_in_the_registry(world)
        out = {o.subscriber: o for o in world.send(server.settings())}
        assert out["lupus-team"].status == out["derm"].status == out["everything"].status == "sent"
        assert out["mg-coordinator"].status == "nothing-due"
        mails = by_recipient(server.messages[4:])
        assert set(mails) == {"lupus@example.org", "derm@example.org", "all@example.org"}

        lupus_text, lupus_html = parts(mails["lupus@example.org"])
        assert KYSA_LN in lupus_text and NEW_ID in lupus_text and PEMPHIGUS not in lupus_text
        assert "New study:" in lupus_text and "Enrollment" in lupus_text
        assert f'href="https://clinicaltrials.gov/study/{NEW_ID}"' in lupus_html
        assert "1 new study" in mails["lupus@example.org"]["Subject"]

        derm_text, derm_html = parts(mails["derm@example.org"])
        assert PEMPHIGUS in derm_text and KYSA_LN not in derm_text
        assert "Suspended: Recruiting → Suspended" in derm_text
        assert "Manufacturing review" in derm_text and "Manufacturing review" in derm_html
        assert "1 status change" in mails["derm@example.org"]["Subject"]

        all_text, _ = parts(mails["all@example.org"])
        assert all(n in all_text for n in (PEMPHIGUS, KYSA_LN, NEW_ID))
        # Sections in order of importance: new studies, status, then enrollment.
        assert all_text.index("NEW STUDIES") < all_text.index("STATUS CHANGES") < all_text.index("ENROLLMENT")

        # Sent once: a second run sends nothing more.
        assert {o.status for o in world.send(server.settings())} == {"nothing-due"}
        assert len(server.messages) == 7


def test_message_headers(world: World, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        smtp = server.settings(list_unsubscribe="mailto:admin@example.org?subject=unsubscribe")
        world.send(smtp, subscriber="derm")
        (msg,) = server.messages
        assert msg["From"].addresses[0].addr_spec == "ctmonitor@example.org"
        assert msg["Message-ID"].startswith("<ctmonitor.digest.") and msg["Message-ID"].endswith(
            "@example.org>"
        )
        assert msg["Date"] and msg["Auto-Submitted"] == "auto-generated"
        assert msg["List-Unsubscribe"] == "<mailto:admin@example.org?subject=unsubscribe>"
        assert server.inbox.envelopes == [("ctmonitor@example.org", ["derm@example.org"])]


def test_nothing_changed_mail_only_when_asked(world: World, tmp_path: Path) -> None:
    quiet = SubscriberSettings(name="quiet", email="quiet@example.org", indications=["pemphigus"])
    chatty = quiet.model_copy(update={"name": "chatty", "email": "chatty@example.org", "send_empty": True})
    world.settings = world.settings.model_copy(update={"subscribers": [quiet, chatty]})
    with SmtpServer(tmp_path) as server:
        world.send(server.settings())  # landscapes
        edit(world.registry, KYSA_LN, lambda ps: ps["statusModule"].update(overallStatus="COMPLETED"))
        world.poll()  # a lupus change: outside both filters
        out = {o.subscriber: o for o in world.send(server.settings())}
        assert out["quiet"].status == "nothing-due"
        assert out["chatty"].status == "sent" and out["chatty"].kind == "nothing"
        text, _ = parts(server.messages[-1])
        assert "WHAT CHANGED: NOTHING" in text
        # The lupus event is settled for both: a later filter edit will not unearth it.
        with world.database.session() as s:
            assert store.count_pending(s, "quiet") == store.count_pending(s, "chatty") == 0
        lupus = quiet.model_copy(update={"indications": ["lupus nephritis"]})
        world.settings = world.settings.model_copy(update={"subscribers": [lupus, chatty]})
        out = {o.subscriber: o for o in world.send(server.settings())}
        assert out["quiet"].status == "nothing-due"


# -- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["refused", "down", "bad-login", "timeout"])
def test_smtp_failure_leaves_events_pending_and_the_next_send_delivers_them_once(
    world: World, tmp_path: Path, fault: str
) -> None:
    with SmtpServer(tmp_path, login=("ctm", "right")) as server:
        ok = server.settings()
        world.send(ok, subscriber="derm", mailer=SmtpMailer(ok, password="right"))
        changes_in_the_registry(world)

        bad = ok
        if fault == "refused":
            server.inbox.reply = "451 4.3.0 mailbox temporarily unavailable"
        elif fault == "down":
            bad = ok.model_copy(update={"port": free_port()})
        elif fault == "timeout":
            server.inbox.delay = 2.0
            bad = ok.model_copy(update={"timeout_seconds": 0.5})
        password = "wrong" if fault == "bad-login" else "right"
        (out,) = world.send(bad, subscriber="derm", mailer=SmtpMailer(bad, password=password))
        assert out.status == "failed" and out.error
        assert {
            "refused": "451",
            "down": "cannot reach",
            "bad-login": "refused the login",
            "timeout": "timed out",
        }[fault] in out.error
        server.inbox.reply, server.inbox.delay = None, 0.0
        with world.database.session() as s:
            failed = s.scalars(select(Delivery).where(Delivery.status == "failed")).one()
            assert failed.error == out.error
            states = {x.name: x for x in delivery.subscriber_states(s, world.settings)}
        assert states["derm"].last_failure == out.error and states["derm"].pending > 0
        received_before = len(server.messages)
        assert all(PEMPHIGUS not in parts(m)[0] for m in server.messages)

        (retry,) = world.send(ok, subscriber="derm", mailer=SmtpMailer(ok, password="right"))
        assert retry.status == "sent"
        assert len(server.messages) == received_before + 1
        assert "Suspended" in parts(server.messages[-1])[0]
        (again,) = world.send(ok, subscriber="derm", mailer=SmtpMailer(ok, password="right"))
        assert again.status == "nothing-due"


class DiesAfterAcceptance:
    """Hands the message to the real server, then the process 'dies' before recording anything."""

    def __init__(self, real: SmtpMailer) -> None:
        self.real = real

    def send(self, msg: EmailMessage) -> None:
        self.real.send(msg)
        raise SystemExit("killed")


def test_crash_between_acceptance_and_record_repeats_the_digest_and_loses_nothing(
    world: World, tmp_path: Path
) -> None:
    with SmtpServer(tmp_path) as server:
        world.send(server.settings(), subscriber="derm")
        changes_in_the_registry(world)
        with pytest.raises(SystemExit):
            world.send(
                server.settings(),
                subscriber="derm",
                mailer=DiesAfterAcceptance(SmtpMailer(server.settings())),
            )
        assert len(server.messages) == 2
        with world.database.session() as s:
            assert s.scalars(select(Delivery.status).order_by(Delivery.id)).all() == ["sent", "sending"]

        (out,) = world.send(server.settings(), subscriber="derm")
        assert out.status == "sent"
        first, repeat = parts(server.messages[1])[0], parts(server.messages[2])[0]
        assert "Suspended" in first and "Suspended" in repeat  # repeated, not lost
        with world.database.session() as s:
            assert s.scalars(select(Delivery.status).order_by(Delivery.id)).all() == [
                "sent",
                "interrupted",
                "sent",
            ]
        assert world.send(server.settings(), subscriber="derm")[0].status == "nothing-due"


def test_one_failing_subscriber_does_not_hold_back_the_others(world: World, tmp_path: Path) -> None:
    bad = SubscriberSettings(name="bouncing", email="nobody@example.org")
    world.settings = world.settings.model_copy(update={"subscribers": [bad, *SUBSCRIBERS[:2]]})

    class RefusesOne:
        def __init__(self, real: SmtpMailer) -> None:
            self.real = real

        def send(self, msg: EmailMessage) -> None:
            if "nobody@" in str(msg["To"]):
                raise MailError("127.0.0.1 refused the recipient: nobody@example.org: 550 no such user")
            self.real.send(msg)

    with SmtpServer(tmp_path) as server:
        out = world.send(server.settings(), mailer=RefusesOne(SmtpMailer(server.settings())))
        assert [o.status for o in out] == ["failed", "sent", "sent"]
        assert len(server.messages) == 2


# -- TLS and login ------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_with_login(world: World, tmp_path: Path, security: str) -> None:
    with SmtpServer(tmp_path, security=security, login=("ctm", "s3cret")) as server:
        smtp = server.settings()
        (out,) = world.send(smtp, subscriber="derm", mailer=SmtpMailer(smtp, password="s3cret"))
        assert out.status == "sent" and len(server.messages) == 1, out.error

        # A certificate nobody vouches for is refused, with the reason.
        untrusted = smtp.model_copy(update={"ca_file": ""})
        changes_in_the_registry(world)
        (out,) = world.send(untrusted, subscriber="derm", mailer=SmtpMailer(untrusted, password="s3cret"))
        assert out.status == "failed" and "CERTIFICATE_VERIFY_FAILED" in (out.error or "")


def test_login_without_password_in_the_environment_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.core.domain import UserError

    monkeypatch.delenv("CTMONITOR_SMTP_PASSWORD", raising=False)
    smtp = SmtpSettings(host="127.0.0.1", from_address="a@example.org", username="ctm")
    with pytest.raises(UserError, match="CTMONITOR_SMTP_PASSWORD"):
        SmtpMailer(smtp)
    monkeypatch.setenv("CTMONITOR_SMTP_PASSWORD", "from-env")
    assert SmtpMailer(smtp).password == "from-env"


# -- what is never sent, and the size cap --------------------------------------------------


def test_held_events_wait_for_release_and_backfilled_history_is_never_news(
    world: World, tmp_path: Path
) -> None:
    with SmtpServer(tmp_path) as server:
        world.send(server.settings(), subscriber="derm")
        changes_in_the_registry(world)
        with world.database.session() as s:
            run_id = s.scalar(select(func.max(Event.run_id)))
            store.hold_run_events(s, run_id)
            # History from the registry's archive: never mailed as news.
            s.execute(
                Event.__table__.update()
                .where(Event.nct_id == PEMPHIGUS, Event.run_id == run_id)
                .values(held=True)
            )
        (out,) = world.send(server.settings(), subscriber="derm")
        assert out.status == "nothing-due"
        with world.database.session() as s:
            store.release_events(s, run_id=run_id, now=world.clock())
        (out,) = world.send(server.settings(), subscriber="derm")
        assert out.status == "sent" and "Suspended" in parts(server.messages[-1])[0]

        # An event marked as backfilled is not due, even when nothing else is.
        with world.database.session() as s:
            e = s.scalars(select(Event).where(Event.nct_id == PEMPHIGUS)).first()
            s.add(
                Event(
                    nct_id=PEMPHIGUS,
                    run_id=None,
                    snapshot_seq=None,
                    kind="status_change",
                    field="overall_status",
                    item_key="backfill-test",
                    before="NOT_YET_RECRUITING",
                    after="RECRUITING",
                    importance=3,
                    registry_date="2021-01-05",
                    detected_at=e.detected_at,
                    origin="backfill",
                )
            )
        assert world.send(server.settings(), subscriber="derm")[0].status == "nothing-due"


def test_a_change_held_for_review_is_told_once_released_after_later_news_went_out(
    world: World, tmp_path: Path
) -> None:
    """Readers' floors rise with each digest, never past a change still held: the news a
    later poll found goes out first, the held change once released, each exactly once."""
    with SmtpServer(tmp_path) as server:
        world.send(server.settings(), subscriber="derm")  # the landscape
        edit(world.registry, PEMPHIGUS, suspend, posted="2026-11-04")
        world.registry.data_timestamp = "2026-11-05T09:00:04"
        world.clock.advance(days=1)
        held_run = world.poll().run_id
        with world.database.session() as s:
            assert store.hold_run_events(s, held_run)
        edit(world.registry, PEMPHIGUS, lambda ps: ps["designModule"]["enrollmentInfo"].update(count=61))
        world.registry.data_timestamp = "2026-11-06T09:00:04"
        world.clock.advance(days=1)
        world.poll()
        (out,) = world.send(server.settings(), subscriber="derm")
        text, _ = parts(server.messages[-1])
        assert out.status == "sent" and "→ 61" in text and "→ Suspended" not in text
        with world.database.session() as s:
            held_ids = s.scalars(select(Event.id).where(Event.held.is_(True))).all()
            assert held_ids and store.floor_of(s, "derm") < min(held_ids)
        assert world.send(server.settings(), subscriber="derm")[0].status == "nothing-due"
        with world.database.session() as s:
            store.release_events(s, run_id=held_run, now=world.clock())
        (out,) = world.send(server.settings(), subscriber="derm")
        text, _ = parts(server.messages[-1])
        assert out.status == "sent" and "→ Suspended" in text and "→ 61" not in text
        assert world.send(server.settings(), subscriber="derm")[0].status == "nothing-due"
        with world.database.session() as s:
            if s.get_bind().dialect.name == "sqlite":  # PostgreSQL waits while others write
                assert store.floor_of(s, "derm") == s.scalar(select(func.max(Event.id)))


def test_the_frontier_never_passes_a_change_still_being_written(world: World) -> None:
    """A poll and a literature search write changes side by side. One that began as a
    digest run read its frontier, still open when a later change was committed, must stay
    above the frontier, or every floor raised to it would pass that change unseen."""
    from datetime import datetime

    from sqlalchemy import event, insert

    database = world.database
    if database.engine.dialect.name != "postgresql":
        return  # SQLite has one writer at a time: changes commit in the order of their ids
    with database.session() as s:
        nct = s.scalar(select(Event.nct_id).limit(1))
    change = {
        "nct_id": nct,
        "kind": "publication",
        "field": "publications",
        "importance": 2,
        "detected_at": datetime(2026, 11, 6, 9),
    }
    ids: dict[str, int] = {}
    slow = database.engine.connect()
    slow.begin()

    def meanwhile(*_: Any) -> None:  # the moment right after the run's first read
        if ids:
            return
        ids["slow"] = -1
        ids["slow"] = slow.execute(
            insert(Event).values(item_key="a", **change).returning(Event.id)
        ).scalar_one()
        with database.engine.begin() as quick:
            ids["quick"] = quick.execute(
                insert(Event).values(item_key="b", **change).returning(Event.id)
            ).scalar_one()

    event.listen(database.engine, "after_cursor_execute", meanwhile)
    try:
        with database.session() as s:
            front = store.frontier(s)
    finally:
        event.remove(database.engine, "after_cursor_execute", meanwhile)
        slow.commit()
        slow.close()
    assert ids["slow"] < ids["quick"]
    assert front < ids["slow"]


def test_readers_with_the_same_filters_share_one_rendering_each_with_their_own_links(
    world: World, tmp_path: Path
) -> None:
    """A run renders a digest once for every reader it is the same for; each reader's
    message is what rendering theirs alone gives (their own links, nobody else's)."""
    from monitor.config import WebSettings

    by_file = [  # named in their digests: the names stand in too (a short one cannot)
        SubscriberSettings(name=n, email=f"{n}@example.org", indications=["pemphigus"])
        for n in ("pemph-one", "pemph-two", "pq")
    ]
    world.settings = world.settings.model_copy(
        update={"web": WebSettings(base_url="https://monitor.example.org"), "subscribers": by_file}
    )
    names = []
    with world.database.session() as s:
        for i, email in enumerate(["ana@example.org", "bo@example.org", "cy.long.address@example.org"]):
            row = store.add_signup(s, email, {"indications": ["pemphigus"] if i < 2 else []}, world.clock())
            store.set_status(s, row.name, SubscriberStatus.ACTIVE, world.clock())
            names.append(row.name)
    with SmtpServer(tmp_path) as server:
        world.send(server.settings())  # landscapes
        changes_in_the_registry(world)
        previews = delivery.preview(
            world.database,
            world.settings,
            Classifier.from_settings(world.settings),
            now=world.clock(),
            out_dir=tmp_path / "alone",
        )
        assert {o.status for o in previews} == {"preview"}
        sent = world.send(server.settings())
        assert {o.status for o in sent} == {"sent"} and len(sent) == 6
        got = by_recipient(server.messages[-6:])
        emails = ["ana@example.org", "bo@example.org", "cy.long.address@example.org"]
        names += [sub.name for sub in by_file]
        for name, email in zip(names, emails + [sub.email for sub in by_file], strict=True):
            text, html = parts(got[email])
            alone = (tmp_path / "alone" / f"{name}.html").read_text(encoding="utf-8")
            assert html.replace("\r\n", "\n") == alone
            assert text.replace("\r\n", "\n") == (tmp_path / "alone" / f"{name}.txt").read_text(
                encoding="utf-8"
            )
            subject = next(o.subject for o in previews if o.subscriber == name)
            assert next(o.subject for o in sent if o.subscriber == name) == subject
            with world.database.session() as s:
                links = {n: delivery.unsubscribe_url(s, world.settings, n, world.clock()) for n in names}
                page = delivery.manage_url(s, world.settings, name)
            assert links[name] in html and page in html
            assert not any(links[n] in html for n in names if n != name)


def test_a_digest_made_while_a_poll_runs_leaves_that_poll_to_finish_first(
    world: World, tmp_path: Path
) -> None:
    """A poll may end by holding everything it recorded (a registry format shift), so its
    changes are neither mailed, settled nor fed out until it ends; then they go out once."""
    world.settings = world.settings.model_copy(
        update={"subscribers": [SubscriberSettings(name="all", email="all@example.org", send_empty=True)]}
    )
    during: list[tuple[list[delivery.Outcome], int, int]] = []

    def between_pages(_done: int, _expected: int | None, _query: str) -> None:
        # Called after each page is committed, the run still "running": a digest job starts now,
        # and someone reads the feed and asks for a report.
        if not during:
            outcomes = world.send(server.settings())
            with world.database.session() as s:
                feed = feeds.gather(s, StudyFilter(), study_url=world.settings.digest.study_url)
                report = reporting.gather(s, StudyFilter(), now=world.clock(), record=False)
            during.append((outcomes, len(feed.entries), report.change_count))

    with SmtpServer(tmp_path) as server:
        world.send(server.settings())  # the landscape
        edit(world.registry, PEMPHIGUS, suspend, posted="2026-11-04")
        world.registry.data_timestamp = "2026-11-05T09:00:04"
        world.clock.advance(days=1)
        with CtGovClient(world.settings.api) as client:
            summary = Syncer(
                world.database, client, world.settings, now=world.clock, progress=between_pages
            ).poll()
        assert summary.outcome == "ok" and summary.events == 2

        ((out,), fed, reported) = during[0]
        assert out.status == "sent" and out.kind == "nothing" and fed == reported == 0
        text, html = parts(server.messages[-1])
        note = "a poll was still running: the 2 changes it had found so far are left out until it ends"
        assert "Suspended" not in text and note in text and note in html
        assert world.settled("all") == []

        (after,) = world.send(server.settings())
        text, _ = parts(server.messages[-1])
        assert after.status == "sent" and after.kind == "changes" and "Suspended" in text
        assert "still running" not in text
        assert len(world.settled("all")) == 2
        (again,) = world.send(server.settings())
        assert again.kind == "nothing" and "Suspended" not in parts(server.messages[-1])[0]
        with world.database.session() as s:
            assert reporting.gather(s, StudyFilter(), now=world.clock(), record=False).change_count == 2


def test_size_cap_lists_the_most_important_and_counts_the_rest(world: World, tmp_path: Path) -> None:
    world.settings = world.settings.model_copy(update={"digest": DigestSettings(max_items=5)})
    with SmtpServer(tmp_path) as server:
        world.send(server.settings(), subscriber="everything")
        changes_in_the_registry(world)

        def more_sites(ps: dict[str, Any]) -> None:
            locs = ps.setdefault("contactsLocationsModule", {}).setdefault("locations", [])
            locs += [{"facility": f"Site {i}", "city": "Berlin", "country": "Germany"} for i in range(8)]

        edit(world.registry, MG, more_sites, posted="2026-11-05", timestamp="2026-11-06T09:00:00")
        world.poll()
        (out,) = world.send(server.settings(), subscriber="everything")
        assert out.listed == 5 and out.events > 5
        text, html = parts(server.messages[-1])
        more = out.events - 5
        assert (
            f"{more} more changes are not listed here" in text
            and f"{more} more changes are not listed" in html
        )
        assert "Site added: " in text.split("not listed here")[1]  # counted by kind
        assert "Suspended" in text and "New study:" in text  # the most important ones are listed
        # the studies left out are named, each with the headline of its most important change
        left_out = text.split("not listed here")[1]
        assert f"  {MG}  " in left_out and f">{MG}</td>" in html.split("not listed")[1]
        # Every event of the digest is settled (the listed ones recorded each), none left
        # behind, none twice.
        with world.database.session() as s:
            hows = s.execute(
                select(DeliveredEvent.how, func.count())
                .where(DeliveredEvent.delivery_id == s.scalar(select(func.max(Delivery.id))))
                .group_by(DeliveredEvent.how)
            ).all()
            assert dict(hows).get("listed") == 5 and store.count_pending(s, "everything") == 0
        assert world.send(server.settings(), subscriber="everything")[0].status == "nothing-due"


def test_html_size_cap_lists_fewer_items_until_it_fits(world: World, tmp_path: Path) -> None:
    world.settings = world.settings.model_copy(update={"digest": DigestSettings(max_html_kilobytes=20)})
    with SmtpServer(tmp_path) as server:
        world.send(server.settings(), subscriber="everything")
        for nct in list(world.registry.studies)[:40]:
            edit(world.registry, nct, lambda ps: ps["statusModule"].update(overallStatus="COMPLETED"))
        world.registry.data_timestamp = "2026-11-06T09:00:00"
        world.settings = world.settings.model_copy(
            update={"sync": world.settings.sync.model_copy(update={"hold_threshold": 1.0})}
        )
        world.poll()
        (out,) = world.send(server.settings(), subscriber="everything")
        assert out.html_bytes <= 20 * 1024 and 5 <= out.listed < out.events
        # the cap holds for the part as mailed: quoted-printable, every "=" of the styles is "=3D"
        html_part = server.messages[-1].get_body(("html",))
        assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
        assert len(html_part.get_payload().encode()) <= 20 * 1024
        text, _ = parts(server.messages[-1])
        assert f"{out.events - out.listed} more changes are not listed" in text


def test_hostile_strings_from_the_registry_are_escaped(world: World, tmp_path: Path) -> None:
    """Markup in a record never reaches the HTML as markup (the renderer's own escaping of raw
    `<script>` strings is tested in test_render.py; here, the whole path from the registry)."""

    def hostile(ps: dict[str, Any]) -> None:
        ps["identificationModule"]["briefTitle"] = "<script>alert('x')</script> DSG3 & <b>CAART</b> in <18 y"
        ps["statusModule"]["overallStatus"] = "TERMINATED"
        ps["statusModule"]["whyStopped"] = (
            '<img src="http://evil.example/x.png" onerror="steal()"> Funding & "IP"'
        )

    with SmtpServer(tmp_path) as server:
        world.send(server.settings(), subscriber="derm")
        edit(world.registry, PEMPHIGUS, hostile)
        world.poll()
        world.send(server.settings(), subscriber="derm")
        text, html = parts(server.messages[-1])
        lowered = html.lower()
        assert "<script" not in lowered and "<img" not in lowered and "<b>" not in lowered
        assert "evil.example" not in html and "onerror=" not in html
        assert "DSG3 &amp; CAART" in html and "&lt;18 y" in html
        assert "Terminated" in text and "Funding &" in text


def test_a_subscriber_who_follows_protocol_amendments_gets_just_those(world: World, tmp_path: Path) -> None:
    """A coordinator screening for a lupus nephritis CAR T trial wants eligibility and
    endpoint changes, not every site and status line; the words that changed are marked."""
    screening = SubscriberSettings(
        name="screening",
        email="screening@example.org",
        nct_ids=[KYSA_LN],
        kinds=["eligibility_change", "outcome_change", "outcome_added"],
    )
    world.settings = world.settings.model_copy(update={"subscribers": [screening]})
    criteria = "Inclusion Criteria:\n\n* Biopsy-proven lupus nephritis class III or IV\n* Age 18 to 65 years"
    edit(world.registry, KYSA_LN, lambda ps: ps["eligibilityModule"].update(eligibilityCriteria=criteria))
    with SmtpServer(tmp_path) as server:
        world.poll()
        assert [o.kind for o in world.send(server.settings())] == ["landscape"]

        def amend(ps: dict[str, Any]) -> None:
            ps["eligibilityModule"]["eligibilityCriteria"] = criteria.replace("18 to 65", "16 to 70")
            ps["eligibilityModule"]["minimumAge"] = "16 Years"
            ps["outcomesModule"]["primaryOutcomes"].append(
                {"measure": "Complete renal response", "timeFrame": "Week 52"}
            )
            ps["statusModule"]["overallStatus"] = "RECRUITING"

        edit(world.registry, KYSA_LN, amend, posted="2026-11-04", timestamp="2026-11-04T09:00:00")
        world.poll()
        (out,) = world.send(server.settings())
        assert out.status == "sent"
        text, html = parts(server.messages[-1])
        assert "ELIGIBILITY, OUTCOMES AND DESIGN (3)" in text
        flat = " ".join(text.split())
        reworded = "Eligibility: Inclusion criterion reworded: “Age 18 to 65 years” → “Age 16 to 70 years”"
        assert reworded in flat
        assert "Eligibility: Minimum age: 18 Years → 16 Years" in flat
        assert "Outcome added: Primary outcome “Complete renal response” (time frame: Week 52)" in flat
        assert "STATUS CHANGES" not in text and "Now recruiting" not in text  # not a kind they follow
        # in the HTML part, just the changed words are marked, each edit named in words
        assert '<del title="removed"' in html and "Inclusion criterion, reworded:" in html
        assert "18 to 65" not in html.replace("=\n", "")

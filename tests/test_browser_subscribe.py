"""A reader subscribes, confirms, reads and leaves, in a real browser: Playwright driving
the system Chromium against `ctmonitor serve`'s application under uvicorn on 127.0.0.1,
with a real SMTP server on loopback for the mails. Every page is looked at 1280 px and
390 px wide and must not scroll sideways.

Without Chromium the test is skipped, unless CTMONITOR_REQUIRE_BROWSER=1 (CI sets it)."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from monitor.app import Application
from monitor.config import WebSettings
from monitor.web import create_app
from tests.harness import PEMPHIGUS, World, changes_in_the_registry, edit
from tests.smtp import SmtpServer, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-sync",
]
READER = "coordinator@example.org"

if CHROMIUM is None and os.environ.get("CTMONITOR_REQUIRE_BROWSER") != "1":
    pytest.skip("no system Chromium (apt install chromium)", allow_module_level=True)


def _mails(server: SmtpServer) -> list[str]:
    return [
        str(m.get_body(("plain",)).get_content())  # type: ignore[union-attr]
        for m in server.messages
        if str(m["To"].addresses[0].addr_spec) == READER
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_reader_signs_up_confirms_reads_pauses_and_leaves_in_the_browser(
    world: World, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "CTMONITOR_REQUIRE_BROWSER=1 but no chromium on PATH (apt install chromium)"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with SmtpServer(tmp_path) as smtp:
        world.settings = world.settings.model_copy(
            update={"web": WebSettings(base_url=base), "smtp": smtp.settings()}
        )
        app = Application(world.settings, database=world.database, now=world.clock)
        server = uvicorn.Server(
            uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for width in (1280, 390):
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    wide = page.evaluate
                    page.goto(base + "/subscribe")
                    page.screenshot(path=str(tmp_path / f"subscribe-{width}.png"), full_page=True)
                    assert wide("document.documentElement.scrollWidth") <= width
                    page.close()

                page = browser.new_page(viewport={"width": 390, "height": 900})
                page.goto(base + "/subscribe")
                page.fill("input[name=email]", READER)
                page.check("input[name=indication][value=pemphigus]")
                page.click("button:has-text('Subscribe')")
                page.wait_for_load_state("load")
                assert "Check your mail" in page.inner_text("h1")
                [confirmation] = _mails(smtp)
                link = re.search(rf"{re.escape(base)}/confirm/\S+", confirmation)
                assert link

                page.goto(link.group(0))
                page.click("button:has-text('Confirm my subscription')")
                page.wait_for_load_state("load")
                assert "You are subscribed" in page.inner_text("main")

                world.send()  # the landscape
                changes_in_the_registry(world)  # the pemphigus study is suspended

                def plant(ps: dict) -> None:  # type: ignore[type-arg]
                    ps["identificationModule"]["briefTitle"] = (
                        '<script>window.pwned = 1</script>Pemphigus <img src=x onerror="window.pwned = 2">'
                    )

                edit(world.registry, PEMPHIGUS, plant, posted="2026-11-06", timestamp="2026-11-07T09:00:00")
                world.poll()
                world.send()
                html = [
                    str(m.get_body(("html",)).get_content())  # type: ignore[union-attr]
                    for m in smtp.messages
                    if str(m["To"].addresses[0].addr_spec) == READER
                ][-1]
                assert "<script>" not in html and "&lt;script&gt;" in html
                digest = _mails(smtp)[-1]
                assert PEMPHIGUS in digest and "Suspended" in digest
                manage = re.search(rf"{re.escape(base)}/manage/\S+", digest)
                assert manage

                for width in (1280, 390):
                    page.set_viewport_size({"width": width, "height": 900})
                    page.goto(manage.group(0))
                    page.screenshot(path=str(tmp_path / f"manage-{width}.png"), full_page=True)
                    assert page.evaluate("document.documentElement.scrollWidth") <= width
                assert PEMPHIGUS in page.inner_text("main")
                assert "<script>window.pwned = 1</script>" in page.inner_text("main")  # shown, as text
                assert page.evaluate("window.pwned === undefined"), "planted script ran"
                page.click("button:has-text('Mark all as read')")
                page.wait_for_load_state("load")
                assert "Nothing new since your last look" in page.inner_text("main")
                page.click("button:has-text('Pause the digest')")
                page.wait_for_load_state("load")
                assert "paused" in page.inner_text("main")
                page.click("button:has-text('Unsubscribe')")
                page.wait_for_load_state("load")
                assert "You are unsubscribed" in page.inner_text("main")
                sent = len(_mails(smtp))
                world.clock.advance(days=7)
                world.send()
                assert len(_mails(smtp)) == sent
            finally:
                browser.close()
                server.should_exit = True
                thread.join(10)

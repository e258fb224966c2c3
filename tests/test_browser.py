"""ctmonitor's web in a real browser: Playwright driving the system Chromium (Debian's
`chromium` package; `.ci/run` installs it) against `ctmonitor serve`'s application under
uvicorn on 127.0.0.1, over a SQLite world.

A person filters and searches the landscape, opens a study, compares two versions and
follows a digest's link; every page is looked at 1280 px and 390 px wide, and must not
scroll sideways. Hostile text planted in a registry record must never run.

Without Chromium the test is skipped, unless CTMONITOR_REQUIRE_BROWSER=1 (CI sets it),
when a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from monitor.app import Application
from monitor.config import WebSettings
from monitor.web import create_app
from tests.harness import KYSA_LN, PEMPHIGUS, World, changes_in_the_registry, edit
from tests.smtp import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (1280, 390)

if CHROMIUM is None and os.environ.get("CTMONITOR_REQUIRE_BROWSER") != "1":
    pytest.skip("no system Chromium (apt install chromium)", allow_module_level=True)


@pytest.fixture
def site(world: World) -> Iterator[tuple[str, World, Application]]:
    assert CHROMIUM, "CTMONITOR_REQUIRE_BROWSER=1 but no chromium on PATH (apt install chromium)"
    changes_in_the_registry(world)

    def plant(p: dict) -> None:  # type: ignore[type-arg]
        p["identificationModule"]["officialTitle"] = "<script>window.pwned = 1</script>"
        p["statusModule"]["whyStopped"] = 'Manufacturing review <img src=x onerror="window.pwned=2">'

    edit(world.registry, PEMPHIGUS, plant, posted="2026-11-06", timestamp="2026-11-07T09:00:00")
    world.poll()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = world.settings.model_copy(update={"web": WebSettings(base_url=base)})
    app = Application(settings, database=world.database, now=world.clock)
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield base, world, app
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_person_finds_a_study_reads_its_story_and_compares_versions(
    site: tuple[str, World, Application], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _world, app = site
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 900})
                dialogs: list[str] = []
                page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))

                def look(name: str, page=page, width=width) -> None:  # type: ignore[no-untyped-def]
                    page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= width, f"{name} scrolls sideways at {width} px ({wide} px wide)"
                    assert page.evaluate("window.pwned === undefined"), "planted script ran"

                # the landscape: filter by modality, then search
                page.goto(base + "/")
                look("landscape")
                page.click("details.pick:has(input[name=modality]) summary")
                page.check("input[name=modality][value='CAAR-T']")
                page.click("button:has-text('Show')")
                page.wait_for_load_state("load")
                assert "modality=CAAR-T" in page.url
                assert page.locator("table.studies tbody tr").count() == 1
                # an alias keeps its view through the form, and the page names the filter
                page.goto(base + "/?indication=lupus&status=active")
                shown = page.locator("p.sub").inner_text()
                chips = page.locator(".active-filters .chip").all_inner_texts()
                assert any("SLE" in c for c in chips) and any("lupus nephritis" in c for c in chips)
                look("landscape-filtered")
                page.click("button:has-text('Show')")
                page.wait_for_load_state("load")
                assert page.locator("p.sub").inner_text() == shown
                page.locator(".active-filters .chip", has_text="SLE").click()
                page.wait_for_load_state("load")
                assert "SLE" not in page.url and "lupus+nephritis" in page.url
                page.goto(base + "/")
                page.fill("input[name=q]", "desmoglein")
                page.press("input[name=q]", "Enter")
                page.wait_for_load_state("load")
                assert re.search(r"[?&]q=desmoglein", page.url)
                look("search")

                # open the study
                page.click(f"a[href='/studies/{PEMPHIGUS}']")
                page.wait_for_load_state("load")
                assert page.url.endswith(f"/studies/{PEMPHIGUS}")
                assert page.locator("h1").inner_text().startswith("A Phase 1/2")
                assert "Suspended" in page.locator("text=Status timeline").locator("..").inner_text()
                look("study")

                # compare the first and the latest version with the form
                page.select_option("select[name=from]", "#1")
                page.select_option("select[name=to]", "#3")
                page.click("button:has-text('Compare')")
                page.wait_for_load_state("load")
                assert "/compare?from=%231&to=%233" in page.url
                diff = page.locator("table.diff").inner_text()
                assert "Status" in diff and "Suspended" in diff and "Manufacturing review" in diff
                look("compare")

                for path in ("/changes", "/status", f"/studies/{KYSA_LN}", "/report"):
                    page.goto(base + path)
                    look(path.strip("/").replace("/", "-"))

                # a programme: from a study to its product, the product's sponsor, the pipeline
                page.goto(f"{base}/studies/{KYSA_LN}")
                page.click("a[href='/products/kyv-101']")
                page.wait_for_load_state("load")
                assert page.locator("h1").inner_text() == "KYV-101"
                assert "Kyverna Therapeutics" in page.locator("p.sub").inner_text()
                assert page.locator("table.studies tbody tr").count() >= 5
                look("product")
                page.click("a[href='/sponsors/kyverna-therapeutics'] >> nth=0")
                page.wait_for_load_state("load")
                assert page.locator("h1").inner_text() == "Kyverna Therapeutics"
                look("sponsor")
                page.click("nav[aria-label=Main] a[href='/products']")
                page.wait_for_load_state("load")
                assert page.locator("table.pipeline tbody tr").count() > 10
                look("pipeline")
                page.goto(f"{base}/products/rese-cel")  # an alias lands on the canonical page
                assert page.url.endswith("/products/caba-201")
                assert page.locator("h1").inner_text() == "CABA-201 (rese-cel)"
                assert dialogs == []
                page.close()

            # a digest's links: the reader's own change list, and from there the study's page
            out = tmp_path / "digests"
            app.preview_digests(out_dir=out, subscriber="derm")
            html = (out / "derm.html").read_text(encoding="utf-8")
            assert f'href="{base}/changes?indication=pemphigus"' in html
            page = browser.new_page(viewport={"width": 390, "height": 900})
            page.goto(f"{base}/changes?indication=pemphigus")
            page.click(f"a[href='/studies/{PEMPHIGUS}']")
            page.wait_for_load_state("load")
            expect(page.locator("h1")).to_be_visible()
            assert page.url.endswith(f"/studies/{PEMPHIGUS}")
        finally:
            browser.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_report_and_the_digests_fit_the_window_at_1000_and_400_px(
    site: tuple[str, World, Application], tmp_path: Path
) -> None:
    """Opened as files in a browser, as people open a mailed report or a digest: nothing
    clipped, no sideways scrolling of the page (wide tables scroll in their own box),
    chart text readable on a phone, every status its own named colour."""
    from playwright.sync_api import sync_playwright

    _base, _world, app = site
    report = tmp_path / "report.html"
    app.report(app.study_filter(), fmt="html", out=report, record=False)
    digests = tmp_path / "digests"
    app.preview_digests(out_dir=digests, subscriber="everything")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for width in (1000, 400):
                for name, path in (("report", report), ("digest", digests / "everything.html")):
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.goto(path.as_uri())
                    page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= width, f"{name} is {wide} px wide at {width} px"
                    assert page.evaluate("window.pwned === undefined"), "planted script ran"
                    if name == "report":
                        # the smallest chart text, as drawn on the screen
                        smallest = page.evaluate(
                            """Math.min(...[...document.querySelectorAll('svg text')].map(t => {
                                const svg = t.ownerSVGElement;
                                const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
                                return parseFloat(getComputedStyle(t).fontSize) * scale; }))"""
                        )
                        assert smallest >= 10, f"chart text is {smallest:.1f} px at {width} px"
                    page.close()
            # printed on A4: every table within the page's printable width (190 mm, 718 px at
            # 96 dpi), the 13-column study table on a landscape page (277 mm, 1047 px)
            page = browser.new_page()
            page.goto(report.as_uri())
            page.emulate_media(media="print")
            for width, which in ((718, "table:not(.all-studies table)"), (1047, ".all-studies table")):
                page.set_viewport_size({"width": width, "height": 1000})
                over = page.evaluate(
                    "(which) => [...document.querySelectorAll(which)]"
                    ".map(t => t.scrollWidth - t.parentElement.clientWidth)",
                    which,
                )
                assert over and max(over) <= 0, f"a printed table is cut at {width} px: {over}"
            page.pdf(path=str(tmp_path / "report.pdf"), format="A4")
            page.close()
        finally:
            browser.close()
    html = report.read_text(encoding="utf-8")
    assert ">UNKNOWN<" not in html
    legend = re.findall(r'<rect x="[\d.]+" y="\d+" width="12" height="12" fill="(#[0-9a-f]{6})"', html)
    assert legend and len(legend) == len(set(legend))  # no two statuses share a colour
    assert "<th>Product</th>" in html and '<th class="n">Enrollment</th>' in html and "<th>Start</th>" in html

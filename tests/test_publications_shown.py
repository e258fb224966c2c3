"""A paper found in the literature reaches every surface: the study page (with where the
link came from, text escaped), the study's JSON, the digests of those who want it (and not
of those who opted out), the change stream and the feed; posted results are shown with
what was posted."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import SubscriberSettings, WebSettings
from monitor.registry.europepmc import EuropePmcClient
from monitor.registry.literaturestand import LiteratureStandIn, Paper
from monitor.registry.pubmed import PubMedClient
from monitor.web import create_app
from tests.harness import LATER, PEMPHIGUS, World, by_recipient, lit_settings, papers, parts
from tests.smtp import SmtpServer

SUBS = [
    SubscriberSettings(name="derm", email="derm@example.org", indications=["pemphigus"]),
    SubscriberSettings(
        name="derm-quiet", email="quiet@example.org", indications=["pemphigus"], publications=False
    ),
]


def literature_app(world: World, server: LiteratureStandIn) -> Application:
    lit = lit_settings(server.base_url)
    settings = world.settings.model_copy(
        update={"literature": lit, "subscribers": SUBS, "web": WebSettings(base_url="https://ct.example.org")}
    )
    world.settings = settings

    def factory(name: str) -> Any:
        return PubMedClient(lit) if name == "pubmed" else EuropePmcClient(lit)

    return Application(settings, database=world.database, now=world.clock, literature_factory=factory)


def test_a_new_paper_is_told_on_every_surface_to_those_who_want_it(world: World, tmp_path: Path) -> None:
    assert LATER["databank"][0] == PEMPHIGUS
    with LiteratureStandIn(papers()) as server, SmtpServer(tmp_path) as smtp:
        app = literature_app(world, server)
        assert app.literature().ok  # the baseline
        world.send(smtp.settings())  # the first digests: the starting picture
        server.papers.append(Paper.from_json(copy.deepcopy(LATER)))
        world.clock.t = datetime(2026, 11, 24, 13, 0)  # the paper was indexed on the 21st
        assert app.literature().ok
        out = {o.subscriber: o for o in world.send(smtp.settings())}
        assert out["derm"].status == "sent" and out["derm-quiet"].status == "nothing-due"
        mails = by_recipient(smtp.messages[2:])
        text, html = parts(mails["derm@example.org"])
        assert "RESULTS AND PUBLICATIONS" in text
        assert "In the literature: First publication: Payne et al." in " ".join(text.split())
        assert "Desmoglein 3 chimeric autoantibody" in html
        assert '<a href="https://doi.org/10.1038/s41591-026-04001-x">DOI</a>' in html
        assert "PubMed: https://pubmed.ncbi.nlm.nih.gov/41234567/" in text

        with TestClient(create_app(app)) as client:
            page = client.get(f"/studies/{PEMPHIGUS}").text
            assert "Publications (1)" in page and "Linked by PubMed, Europe PMC (cites NCT04422912)" in page
            assert 'href="https://doi.org/10.1038/s41591-026-04001-x"' in page
            assert 'href="https://pubmed.ncbi.nlm.nih.gov/41234567/"' in page
            data = client.get(f"/api/studies/{PEMPHIGUS}").json()
            (pub,) = data["publications"]
            assert pub["pmid"] == "41234567" and sorted(pub["sources"]) == ["europepmc", "pubmed"]
            assert {"label": "DOI", "url": "https://doi.org/10.1038/s41591-026-04001-x"} in pub["links"]
            changes = client.get("/api/events", params={"kind": "publication_found"}).json()
            assert changes["total"] == 1
            (change,) = [e for st in changes["studies"] for e in st["changes"]]
            assert change["nct_id"] == PEMPHIGUS
            assert (change["registry"], change["source"], change["origin"]) == ("ctgov", "pubmed", "pubmed")
            feed = client.get("/feeds/changes.xml", params={"kind": "publication_found"}).text
            assert "First publication: Payne et al." in feed


def test_text_from_elsewhere_is_escaped_on_the_page(world: World) -> None:
    lupus = "NCT06310811"
    with LiteratureStandIn(papers()) as server:
        app = literature_app(world, server)
        assert app.literature(["pubmed"]).ok
        with TestClient(create_app(app)) as client:
            page = client.get(f"/studies/{lupus}").text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;i&gt;in vivo&lt;/i&gt;" in page
    assert "&lt;b&gt;Twelve&lt;/b&gt; patients &amp; their B cells" in page  # the abstract, whole


def test_a_subscriber_may_leave_out_papers() -> None:
    quiet = SUBS[1]
    assert "publication_found" not in quiet.wanted_kinds() and "results_posted" in quiet.wanted_kinds()
    assert SUBS[0].wanted_kinds() == ()  # every kind
    picky = SubscriberSettings(name="p", email="p@example.org", kinds=["status_change", "publication_found"])
    assert picky.model_copy(update={"publications": False}).wanted_kinds() == ("status_change",)


def test_posted_results_are_shown_with_what_was_posted(world: World) -> None:
    from monitor import store
    from tests.conftest import record
    from tests.harness import MG

    raw = copy.deepcopy(world.registry.studies[MG])
    raw["resultsSection"] = record("NCT02210780")["resultsSection"]
    raw["hasResults"] = True
    status = raw["protocolSection"]["statusModule"]
    status["resultsFirstPostDateStruct"] = {"date": "2026-11-03", "type": "ACTUAL"}
    status["lastUpdatePostDateStruct"] = {"date": "2026-11-03", "type": "ACTUAL"}
    world.registry.put(raw)
    world.registry.data_timestamp = "2026-11-03T09:00:04"
    world.poll()
    with world.database.session() as s:
        (e,) = [e for e in store.list_events(s) if e.kind == "results_posted"]
    assert e.nct_id == MG and e.after["posted"]["started"] == 194
    app = Application(
        world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")}),
        database=world.database,
        now=world.clock,
    )
    with TestClient(create_app(app)) as client:
        page = client.get(f"/studies/{MG}").text
        data = client.get(f"/api/studies/{MG}").json()
    assert "First posted 2026-11-03 on ClinicalTrials.gov" in page
    assert f'href="https://clinicaltrials.gov/study/{MG}?tab=results"' in page
    assert "<li>participant flow: 194 started, 181 completed</li>" in page
    assert data["results"]["parts"][2] == "11 outcome measures (1 primary)"
    with TestClient(create_app(app)) as client:
        stream = client.get(f"/studies/{MG}").text  # its changes, in the same words
    assert "results first posted 2026-11-03: participant flow: 194 started, 181 completed" in stream

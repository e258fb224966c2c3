"""Publications found by the trials' registry numbers (issue: what the trials publish).

The real PubMed and Europe PMC clients talk over loopback HTTP to a stand-in that speaks
E-utilities (ESearch JSON, EFetch PubMed XML) and Europe PMC's REST search (cursorMark
pages, HTML in abstracts), with faults; the store is real SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest

from monitor import store
from monitor.app.application import Application
from monitor.core.describe import change_text
from monitor.core.literature import short_citation
from monitor.literature_config import LiteratureSettings
from monitor.registry.answers import RetriesExhausted
from monitor.registry.europepmc import EuropePmcClient
from monitor.registry.literaturestand import LiteratureStandIn, Paper
from monitor.registry.localserver import Fault
from monitor.registry.pubmed import PubMedClient, parse_articles
from monitor.store.db import Database
from tests.harness import LATER, PAPERS, FakeClock, lit_settings, papers, poll


@pytest.fixture
def literature() -> Iterator[LiteratureStandIn]:
    with LiteratureStandIn(papers()) as server:
        yield server


def app_for(database: Database, settings: Any, lit: LiteratureSettings, clock: FakeClock) -> Application:
    s = settings.model_copy(update={"literature": lit})

    def factory(name: str) -> Any:
        return (
            PubMedClient(lit, sleep=lambda _: None)
            if name == "pubmed"
            else EuropePmcClient(lit, sleep=lambda _: None)
        )

    return Application(s, database=database, now=clock, literature_factory=factory)


def track(
    database: Database, settings_for: Any, records: list[dict[str, Any]] | None = None
) -> Iterator[Any]:
    """The domain records served by the registry stand-in and polled once."""
    from monitor.registry.localserver import LocalApiServer, Registry
    from tests.conftest import domain_records

    reg = Registry()
    reg.replace(records or copy.deepcopy(domain_records()), "2026-11-02T09:00:05")
    clock = FakeClock(datetime(2026, 11, 2, 10, 0))
    with LocalApiServer(reg) as api:
        settings = settings_for(api.base_url)
        poll(database, settings, clock)
        yield database, settings, clock


@pytest.fixture
def tracked(database: Database, settings_for: Any) -> Iterator[tuple[Database, Any, FakeClock]]:
    yield from track(database, settings_for)


# -- the clients, over HTTP --------------------------------------------------------------


def test_pubmed_finds_papers_by_databank_number_and_reads_them_whole(literature: LiteratureStandIn) -> None:
    with PubMedClient(lit_settings(literature.base_url)) as client:
        found = client.find(["NCT06347718", "NCT06310811"], None, date(2026, 12, 1))
    by_pmid = {p.pmid: p for p in found}
    assert set(by_pmid) == {"38381673", "40987654"}
    nejm = by_pmid["38381673"]
    assert nejm.title == "CD19 CAR T-Cell Therapy in Autoimmune Disease - A Case Series with Follow-up."
    assert nejm.authors[0] == "Müller F" and nejm.journal == "N Engl J Med" and nejm.date == "2024-02-22"
    assert nejm.doi == "10.1056/NEJMoa2308917" and nejm.mentions == ("NCT06347718",)
    assert nejm.abstract is not None and nejm.abstract.startswith("BACKGROUND: Chimeric antigen receptor")
    # text from elsewhere is kept as written, markup-looking characters and all
    assert "<script>alert('x')</script> & <i>in vivo</i>" in (by_pmid["40987654"].title or "")
    searches = literature.requests_to("/entrez/eutils/esearch.fcgi")
    assert searches[0].params["term"].startswith('"NCT06347718"[si] OR "NCT06347718"[tiab]')
    assert searches[0].params["tool"] == "ctmonitor" and "datetype" not in searches[0].params


def test_pubmed_window_is_by_modification_date_and_sends_the_key(literature: LiteratureStandIn) -> None:
    lit = lit_settings(literature.base_url, email="team@example.org")
    with PubMedClient(lit, api_key="abc123") as client:
        assert client.find(["NCT06347718"], date(2026, 11, 1), date(2026, 12, 1)) == []
        assert [p.pmid for p in client.find(["NCT06347718"], date(2024, 2, 25), date(2024, 3, 5))] == [
            "38381673"
        ]
    params = literature.requests_to("/entrez/eutils/esearch.fcgi")[-1].params
    assert (
        params["datetype"] == "mdat"
        and params["mindate"] == "2024/02/25"
        and params["maxdate"] == "2024/03/05"
    )
    assert params["api_key"] == "abc123" and params["email"] == "team@example.org"


def test_europe_pmc_pages_by_cursor_and_reads_preprints(literature: LiteratureStandIn) -> None:
    literature.papers += [
        Paper.from_json({**PAPERS[0], "pmid": str(50000000 + i), "doi": f"10.1/x{i}", "title": f"Paper {i}"})
        for i in range(1200)
    ]
    with EuropePmcClient(lit_settings(literature.base_url)) as client:
        found = client.find(["NCT06347718", "NCT06384976"], None, date(2026, 12, 1))
    assert len(found) == 1202  # two pages of 1000 and the end
    assert len(literature.requests_to("/europepmc/webservices/rest/search")) == 3
    pre = next(p for p in found if p.source_id == "PPR812345")
    assert pre.kind == "Preprint" and pre.journal == "medRxiv" and pre.pmid is None
    assert pre.key == "doi:10.1101/2025.01.10.25320123" and pre.mentions == ("NCT06384976",)
    nejm = next(p for p in found if p.pmid == "38381673")
    # Europe PMC's HTML section headings are markup: removed, their words kept
    assert nejm.abstract is not None and "<h4>" not in nejm.abstract and "Background" in nejm.abstract


@pytest.mark.parametrize(
    "fault",
    [
        Fault(
            path="/entrez/eutils/esearch.fcgi",
            status=429,
            retry_after="0",
            body='{"error":"API rate limit exceeded"}',
        ),
        Fault(path="/entrez/eutils/efetch.fcgi", status=502),
        Fault(path="/entrez/eutils/efetch.fcgi", truncate=True),
        Fault(path="/entrez/eutils/esearch.fcgi", truncate=True),
        Fault(path="/entrez/eutils/efetch.fcgi", drop=True),
    ],
    ids=["429", "502", "truncated-xml", "truncated-json", "reset"],
)
def test_pubmed_faults_are_retried(literature: LiteratureStandIn, fault: Fault) -> None:
    literature.add_fault(fault)
    with PubMedClient(lit_settings(literature.base_url), sleep=lambda _: None) as client:
        assert [p.pmid for p in client.find(["NCT06347718"], None, date(2026, 12, 1))] == ["38381673"]
        assert client.requests == 3


def test_a_service_that_keeps_failing_gives_up_with_a_reason(literature: LiteratureStandIn) -> None:
    literature.add_fault(Fault(path="/europepmc/webservices/rest/search", status=503, times=10))
    lit = lit_settings(literature.base_url, max_attempts=3)
    with (
        EuropePmcClient(lit, sleep=lambda _: None) as client,
        pytest.raises(RetriesExhausted, match="HTTP 503"),
    ):
        client.find(["NCT06347718"], None, date(2026, 12, 1))


def test_pubmed_xml_with_an_external_entity_is_not_resolved() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
        b"<ArticleTitle>T &e;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    try:
        pubs = parse_articles(body)
    except SyntaxError:
        return  # refused outright: also safe
    assert "root:" not in (pubs[0].title or "")


def test_short_citation_reads_as_a_reader_cites() -> None:
    assert (
        short_citation(["Müller F", "Taubmann J", "Schett G"], "N Engl J Med", "2024")
        == "Müller et al., N Engl J Med 2024"
    )
    assert short_citation(["Payne AS", "Volkov J"], "Nat Med", "2026") == "Payne and Volkov, Nat Med 2026"
    assert short_citation(["KYSA-7 Study Group"], None, "2025") == "KYSA-7 Study Group, 2025"


# -- the search, end to end --------------------------------------------------------------


def _events(database: Database) -> list[Any]:
    with database.session() as s:
        return [e for e in store.list_events(s) if e.kind == "publication_found"]


def test_first_search_lists_without_telling_and_a_later_paper_is_told_once(
    tracked: tuple[Database, Any, FakeClock], literature: LiteratureStandIn
) -> None:
    database, settings, clock = tracked
    app = app_for(database, settings, lit_settings(literature.base_url), clock)
    clock.t = datetime(2026, 11, 10, 13, 0)
    first = app.literature()
    assert first.ok, first.text()
    assert [r.source for r in first.runs] == ["pubmed", "europepmc"]
    assert all(r.baseline == r.studies > 0 for r in first.runs)
    assert _events(database) == []  # old papers are listed, not news
    with database.session() as s:
        listed = store.study_publications(s, "NCT06347718")
        assert [p["pmid"] for p in listed] == ["38381673"]
        assert sorted(listed[0]["sources"]) == ["europepmc", "pubmed"]
        # PubMed's description is kept; Europe PMC's (its own markup, its own wording) fills gaps only
        assert listed[0]["abstract"].startswith("BACKGROUND: Chimeric antigen receptor")
        assert listed[0]["journal"] == "N Engl J Med"
        # found only in a full text: placed by asking again number by number
        assert [p["pmid"] for p in store.study_publications(s, "NCT06359041")] == ["40412345"]
        assert store.study_publications(s, "NCT06359041")[0]["sources"] == ["europepmc"]
        assert [p["key"] for p in store.study_publications(s, "NCT06384976")] == [
            "doi:10.1101/2025.01.10.25320123"
        ]

    literature.papers.append(Paper.from_json(copy.deepcopy(LATER)))
    clock.t = datetime(2026, 11, 24, 13, 0)
    second = app.literature()
    assert second.ok and all(r.baseline == 0 for r in second.runs)
    pubmed_search = literature.requests_to("/entrez/eutils/esearch.fcgi")[-1].params
    assert pubmed_search["mindate"] == "2026/10/11"  # the last search less the 30-day overlap
    found = _events(database)
    assert len(found) == 1  # PubMed told it; Europe PMC's copy of the same paper is not news again
    e = found[0]
    assert e.nct_id == "NCT04422912" and e.importance == 3 and e.origin == "pubmed"
    text = change_text(e.kind, e.field, e.before, e.after)
    assert text.startswith(
        "First publication: Payne et al., Nat Med 2026, ‘Desmoglein 3 chimeric autoantibody"
    )
    assert "(doi:10.1038/s41591-026-04001-x)" in text and text.endswith("found in PubMed")

    timeline = app.history(["NCT04422912"]).text()
    assert "L  In the literature: First publication: Payne et al." in timeline

    clock.t = datetime(2026, 11, 25, 13, 0)
    assert app.literature().ok
    assert len(_events(database)) == 1  # the overlap finds it again; it is not told twice


def test_a_failed_search_keeps_what_it_stored_and_the_next_goes_on(
    tracked: tuple[Database, Any, FakeClock], literature: LiteratureStandIn
) -> None:
    database, settings, clock = tracked
    lit = lit_settings(literature.base_url, terms_per_request=5, max_attempts=2)
    app = app_for(database, settings, lit, clock)
    literature.add_fault(Fault(path="/entrez/eutils/esearch.fcgi", status=500, times=2, skip=3))
    result = app.literature(["pubmed"])
    assert not result.ok and "HTTP 500" in (result.runs[0].error or "")
    with database.session() as s:
        done = store.checked_through(s, "pubmed")
        run = store.recent_literature_runs(s)[0]
    assert 0 < len(done) < result.runs[0].studies  # three batches stored, their studies marked
    assert run.outcome == "failed" and run.finished_at is not None
    again = app.literature(["pubmed"])
    assert again.ok
    assert again.runs[0].baseline == again.runs[0].studies - len(done)
    with database.session() as s:
        assert [p["pmid"] for p in store.study_publications(s, "NCT06347718")] == ["38381673"]
    assert _events(database) == []


def test_a_paper_the_record_already_cites_is_no_news(
    database: Database, settings_for: Any, literature: LiteratureStandIn
) -> None:
    from tests.conftest import domain_records

    records = copy.deepcopy(domain_records())
    raw = next(r for r in records if r["protocolSection"]["identificationModule"]["nctId"] == "NCT04422912")
    raw["protocolSection"]["referencesModule"] = {
        "references": [
            {"pmid": LATER["pmid"], "type": "RESULT", "citation": "Payne AS, et al. Nat Med. 2026."}
        ]
    }
    for db, settings, clock in track(database, settings_for, records):
        app = app_for(db, settings, lit_settings(literature.base_url), clock)
        assert app.literature(["pubmed"]).ok
        literature.papers.append(Paper.from_json(copy.deepcopy(LATER)))
        clock.t = datetime(2026, 11, 24, 13, 0)
        assert app.literature(["pubmed"]).ok
        assert _events(db) == []  # the sponsor's own reference was the news
        with db.session() as s:
            assert [p["pmid"] for p in store.study_publications(s, "NCT04422912")] == [LATER["pmid"]]


def test_unknown_service_is_a_one_line_error(tracked: tuple[Database, Any, FakeClock]) -> None:
    from monitor.core.domain import UserError

    database, settings, clock = tracked
    with pytest.raises(UserError, match="unknown literature service 'scopus'"):
        Application(settings, database=database, now=clock).literature(["scopus"])

"""`ctmonitor serve`: every route through an ASGI client, on SQLite and PostgreSQL.

The world is the domain records polled once, then a week in the registry (a suspension
with its reason, an enrollment update, a new study) polled again, as digests see it.
Pages are read as a person would read them: what the registry says is there, escaped;
a bad filter is a 400 naming the valid values; an unknown study a 404.
"""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import WebSettings
from monitor.store.models import ReportRun
from monitor.web import create_app
from tests.harness import KYSA_LN, NEW_ID, PEMPHIGUS, World, changes_in_the_registry, edit

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def web(world: World) -> Iterator[tuple[TestClient, World]]:
    changes_in_the_registry(world)
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    app = Application(settings, database=world.database, now=world.clock)
    with TestClient(create_app(app)) as client:
        yield client, world


def _ids(html: str) -> list[str]:
    import re

    return re.findall(r'href="/studies/(NCT\d{8})"', html)


# -- the landscape ----------------------------------------------------------------------


def test_the_landscape_lists_the_studies_in_scope_with_counts(web: tuple[TestClient, World]) -> None:
    client, _ = web
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    api = client.get("/api/studies", params={"per_page": 500}).json()
    assert api["total"] > 50 and all(s["in_scope"] for s in api["studies"])
    assert f"{api['total']} studies in scope." in r.text
    assert "By modality" in r.text and "CAAR-T</a> <b>" in r.text


def test_filters_search_sort_and_paging_hold_their_state_in_the_url(web: tuple[TestClient, World]) -> None:
    client, _ = web
    caar = client.get("/", params={"modality": "CAAR-T"}).text
    assert PEMPHIGUS in _ids(caar) and "1 study in scope matching this view." in caar
    assert _ids(client.get("/", params={"q": "desmoglein"}).text)[0] == PEMPHIGUS  # words of the record
    assert PEMPHIGUS in _ids(client.get("/", params={"q": PEMPHIGUS.lower()}).text)
    assert "No study matches" in client.get("/", params={"q": "no such words anywhere"}).text

    by_id = client.get("/api/studies", params={"sort": "nct", "order": "asc", "per_page": 500}).json()
    ids = [s["nct_id"] for s in by_id["studies"]]
    assert ids == sorted(ids)
    page2 = client.get(
        "/api/studies", params={"sort": "nct", "order": "asc", "per_page": 5, "page": 2}
    ).json()
    assert [s["nct_id"] for s in page2["studies"]] == ids[5:10] and page2["pages"] == -(-len(ids) // 5)
    html = client.get("/", params={"sort": "nct", "order": "asc", "per_page": 25, "page": 2}).text
    assert _ids(html)[:3] == ids[25:28]
    assert 'rel="next"' in html and "page=3" in html and "sort=nct" in html  # links keep the view

    lupus = client.get("/api/studies", params={"indication": "SLE", "status": "RECRUITING"}).json()
    assert lupus["total"] and all(
        "SLE" in s["indications"] and s["status"] == "RECRUITING" for s in lupus["studies"]
    )
    bcma = client.get("/api/studies", params={"target": "BCMA", "per_page": 500}).json()["studies"]
    assert bcma and all(any("BCMA" in t for t in s["targets"]) for s in bcma)


def test_downloads_are_the_current_view(web: tuple[TestClient, World]) -> None:
    client, _ = web
    params = {"indication": "SLE", "sort": "nct", "order": "asc"}
    rows = list(csv.DictReader(io.StringIO(client.get("/", params={**params, "format": "csv"}).text)))
    data = client.get("/", params={**params, "format": "json"}).json()
    assert [r["nct_id"] for r in rows] == [s["nct_id"] for s in data["studies"]]
    assert len(rows) == data["total"] and all("SLE" in r["indications"] for r in rows)
    assert "search" not in data["studies"][0]
    every = client.get("/", params={"all": "1", "format": "json"}).json()["studies"]
    flagged = [s for s in every if s["needs_review"]]
    assert flagged and all(s["review"] for s in flagged)  # every row whole, not only the first page's


def test_out_of_scope_studies_show_with_their_reason_when_asked(web: tuple[TestClient, World]) -> None:
    client, _ = web
    every = client.get("/api/studies", params={"all": "1", "per_page": 500}).json()["studies"]
    out = [s for s in every if not s["in_scope"]]
    assert out, "the domain records include near misses"
    html = client.get("/", params={"all": "1", "per_page": 500}).text
    assert out[0]["nct_id"] in _ids(html) and "Out of scope: " in html
    assert out[0]["nct_id"] not in _ids(client.get("/", params={"per_page": 500}).text)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"modality": "CARX"}, "modalities: unknown value 'CARX'; valid: bispecific, CAAR-T, CAR-NK, CAR-T"),
        ({"status": "activ"}, "status: unknown value 'activ'; valid: ACTIVE_NOT_RECRUITING"),
        ({"phase": "9"}, "phase: unknown value '9'; valid: EARLY_PHASE1"),
        ({"sort": "colour"}, "sort: unknown column 'colour'; valid: updated, nct"),
        ({"page": "two"}, "page: 'two' is not a whole number"),
        ({"colour": "red"}, "unknown parameter 'colour'"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_valid_values(
    web: tuple[TestClient, World], params: dict[str, str], named: str
) -> None:
    client, _ = web
    page = client.get("/", params=params)
    assert page.status_code == 400 and named.replace("'", "&#39;") in page.text
    api = client.get("/api/studies", params=params)
    assert api.status_code == 400 and named in api.json()["error"]


# -- a study -------------------------------------------------------------------------------


def test_a_study_page_tells_its_story(web: tuple[TestClient, World]) -> None:
    client, _ = web
    html = client.get(f"/studies/{PEMPHIGUS}").text
    for shown in (
        "CAAR-T",
        "DSG3",
        "Evidence for these labels",
        "Suspended",
        "why stopped: “Manufacturing review”",
        "Status timeline",
        "Changes, newest first",
        "Versions (2)",
        f"https://clinicaltrials.gov/study/{PEMPHIGUS}",
        "United States — ",
    ):
        assert shown in html, shown
    # newest first: the suspension before the first sighting
    log = html[html.index("Changes, newest first") :]
    assert log.index("Manufacturing review") < log.index("First polled")
    data = client.get(f"/api/studies/{PEMPHIGUS}").json()
    assert data["status"] == "SUSPENDED" and data["classification"]["evidence"]
    assert [v["label"] for v in client.get(f"/api/studies/{PEMPHIGUS}/versions").json()] == ["#1", "#2"]


@pytest.mark.parametrize("path", ["/studies/NCT09999999", "/studies/NCT1", "/studies/NCT00000000/compare"])
def test_an_unknown_or_invalid_study_is_a_404(web: tuple[TestClient, World], path: str) -> None:
    client, _ = web
    r = client.get(path)
    assert r.status_code == 404 and "Not found" in r.text
    assert client.get("/api" + path).status_code == 404


def test_a_lowercase_id_redirects_to_the_study(web: tuple[TestClient, World]) -> None:
    client, _ = web
    r = client.get(f"/studies/{PEMPHIGUS.lower()}", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == f"/studies/{PEMPHIGUS}"


def test_compare_shows_before_and_after_and_long_text_word_by_word(web: tuple[TestClient, World]) -> None:
    client, w = web
    html = client.get(f"/studies/{KYSA_LN}/compare", params={"from": "#1", "to": "#2"}).text
    assert "Enrollment" in html and "<ins" in html and "24" in html
    old = w.registry.studies[KYSA_LN]["protocolSection"]["identificationModule"]["briefTitle"]
    edit(
        w.registry,
        KYSA_LN,
        lambda p: p["identificationModule"].update(
            briefTitle=old.replace("Refractory", "Treatment-resistant")
        ),
        posted="2026-11-06",
        timestamp="2026-11-07T09:00:00",
    )
    w.poll()
    html = client.get(f"/studies/{KYSA_LN}/compare").text  # latest against the one before
    # before and after in their own aligned columns, the changed words marked on each side
    row = html.split('<th scope="row">Brief title</th>')[1].split("</tr>")[0]
    before, after = row.split('<td class="words">')[1:3]
    assert '<del title="removed">Refractory</del>' in before and "Treatment-resistant" not in before
    assert '<ins title="added">Treatment-resistant</ins>' in after and "Refractory" not in after
    data = client.get(f"/api/studies/{KYSA_LN}/compare", params={"from": "first"}).json()
    assert data["from"]["label"] == "#1" and {c["kind"] for c in data["changes"]} >= {"enrollment_change"}
    bad = client.get(f"/studies/{KYSA_LN}/compare", params={"from": "r99"})
    assert bad.status_code == 400


# -- changes, report, feed, status --------------------------------------------------------


def test_the_change_stream_groups_by_study_with_the_same_filters(web: tuple[TestClient, World]) -> None:
    client, _ = web
    html = client.get("/changes").text
    assert "Manufacturing review" in html and NEW_ID in _ids(html)
    derm = client.get("/changes", params={"indication": "pemphigus"}).text
    assert set(_ids(derm)) == {PEMPHIGUS}
    status_only = client.get("/api/events", params={"kind": "status_change"}).json()
    assert status_only["studies"] and all(
        e["kind"] == "status_change" for s in status_only["studies"] for e in s["changes"]
    )
    act = client.get("/api/events", params={"importance": "3"}).json()
    assert all(e["importance"] == 3 for s in act["studies"] for e in s["changes"])
    by_registry = client.get("/api/events", params={"by": "registry", "since": "2026-11-04"}).json()
    assert all(e["registry_date"] >= "2026-11-04" for s in by_registry["studies"] for e in s["changes"])
    assert client.get("/changes", params={"kind": "colour"}).status_code == 400


def test_the_report_is_the_command_s_report_and_viewing_it_moves_no_baseline(
    web: tuple[TestClient, World],
) -> None:
    client, w = web
    with w.database.session() as s:
        before = s.scalar(select(func.count()).select_from(ReportRun))
    html = client.get("/report", params={"since": "2026-11-01"})
    assert html.status_code == 200 and html.text.startswith("<!DOCTYPE html>")
    assert "script-src" not in html.headers["content-security-policy"]
    rows = list(
        csv.DictReader(
            io.StringIO(client.get("/report", params={"format": "csv", "modality": "CAAR-T"}).text)
        )
    )
    assert {r["modality"] for r in rows} == {"CAAR-T"}
    assert client.get("/report", params={"format": "json"}).json()["selection"]["matching"] > 50
    with w.database.session() as s:
        assert s.scalar(select(func.count()).select_from(ReportRun)) == before


def test_a_feed_for_any_filter_at_a_stable_url_with_its_self_link(web: tuple[TestClient, World]) -> None:
    client, _ = web
    r = client.get("/feeds/changes.xml", params={"indication": "pemphigus"})
    assert r.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(r.content)
    self_link = next(link for link in root.iter(f"{ATOM}link") if link.get("rel") == "self")
    assert self_link.get("href") == "https://ct.example.org/feeds/changes.xml?indication=pemphigus"
    entries = root.findall(f"{ATOM}entry")
    assert entries and all(PEMPHIGUS in (e.findtext(f"{ATOM}title") or "") for e in entries)
    assert client.get("/feeds/changes.xml", params={"indication": "pemphigus"}).content == r.content


def test_status_and_health(web: tuple[TestClient, World]) -> None:
    client, _ = web
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["ok"] and health.json()["held_events"] == 0
    assert "All well" in client.get("/status").text


def test_health_is_503_when_the_data_goes_stale(web: tuple[TestClient, World]) -> None:
    client, w = web
    w.clock.advance(days=5)
    r = client.get("/health")
    assert r.status_code == 503 and "no successful poll for more than 3 days" in r.json()["problems"]


def test_the_api_is_described(web: tuple[TestClient, World]) -> None:
    client, _ = web
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/studies/{nct}" in spec["paths"]


# -- quality --------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers_and_get_is_the_only_verb(
    web: tuple[TestClient, World],
) -> None:
    client, _ = web
    for path in ("/", f"/studies/{PEMPHIGUS}", "/api/studies", "/nope"):
        h = client.get(path).headers
        assert (
            "script-src" not in h["content-security-policy"]
            and "default-src 'none'" in h["content-security-policy"]
        )
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert h["x-content-type-options"] == "nosniff"
    assert client.post("/").status_code == 405
    assert client.get("/nope").status_code == 404


def test_hostile_registry_text_is_escaped_everywhere(web: tuple[TestClient, World]) -> None:
    client, w = web
    hostile = "<script>alert('x')</script> DSG3 & <img src=x onerror=alert(1)>"

    def plant(p: dict[str, Any]) -> None:
        p["identificationModule"]["briefTitle"] = hostile
        p["sponsorCollaboratorsModule"]["leadSponsor"]["name"] = '"><svg onload=alert(2)>'

    edit(w.registry, PEMPHIGUS, plant, posted="2026-11-06", timestamp="2026-11-07T09:00:00")
    w.poll()
    for path in ("/", f"/studies/{PEMPHIGUS}", "/changes", f"/studies/{PEMPHIGUS}/compare"):
        html = client.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html and "<svg onload" not in html, path
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in client.get(f"/studies/{PEMPHIGUS}").text


def test_with_a_base_url_digests_and_feeds_link_to_the_web(world: World) -> None:
    from monitor.core.filters import StudyFilter
    from monitor.publishing import delivery

    plain = delivery.options(world.settings)
    assert plain.study_url == "https://clinicaltrials.gov/study/{nct_id}" and plain.report_url == ""
    served = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org/")})
    opts = delivery.options(served, StudyFilter(indications=("SLE", "lupus nephritis"), nct_ids=(KYSA_LN,)))
    assert opts.study_url == "https://ct.example.org/studies/{nct_id}"
    assert opts.report_url == (
        f"https://ct.example.org/changes?indication=SLE&indication=lupus+nephritis&study={KYSA_LN}"
    )
    changes_in_the_registry(world)
    feed = Application(served, database=world.database, now=world.clock).feed(StudyFilter())
    assert b"https://ct.example.org/studies/NCT" in feed.document


def test_a_study_gone_from_the_registry_keeps_its_last_change_on_the_stream(
    web: tuple[TestClient, World],
) -> None:
    from tests.harness import poll

    client, w = web
    w.registry.remove(PEMPHIGUS)
    w.registry.data_timestamp = "2026-11-08T09:00:00"
    w.clock.advance(days=1)
    assert poll(w.database, w.settings, w.clock, full=True).outcome == "ok"
    gone = client.get("/api/events", params={"kind": "gone_from_registry"}).json()["studies"]
    assert [s["nct_id"] for s in gone] == [PEMPHIGUS]
    assert PEMPHIGUS not in _ids(client.get("/").text)  # no longer in the landscape
    assert "No longer in the registry" in client.get(f"/studies/{PEMPHIGUS}").text


def test_a_study_page_shows_who_may_enrol_and_what_changed_in_the_criteria(
    web: tuple[TestClient, World],
) -> None:
    client, world = web
    criteria = "Inclusion Criteria:\n\n* Biopsy-proven lupus nephritis class III or IV\n* Age 18 to 65 years"

    def add(ps: dict[str, Any]) -> None:
        ps["eligibilityModule"]["eligibilityCriteria"] = criteria

    def amend(ps: dict[str, Any]) -> None:
        ps["eligibilityModule"]["eligibilityCriteria"] = criteria.replace("18 to 65", "16 to 70")
        ps["outcomesModule"]["primaryOutcomes"][0]["timeFrame"] = "Week 52"

    edit(world.registry, KYSA_LN, add, posted="2026-11-10", timestamp="2026-11-10T09:00:00")
    world.poll()
    edit(world.registry, KYSA_LN, amend, posted="2026-11-11", timestamp="2026-11-11T09:00:00")
    world.poll()

    page = client.get(f"/studies/{KYSA_LN}").text
    assert "Who may enrol" in page and "Inclusion criteria" in page
    assert "<li>Age 16 to 70 years</li>" in page and "18 Years to no maximum" in page
    assert "What is measured" in page and "Week 52" in page
    # the change log names the one reworded criterion, the changed words marked
    assert "1 criterion changed" in page
    marked = '<del title="removed">18</del><ins title="added">16</ins> to <del title="removed">65</del>'
    assert marked in page

    changes = client.get("/changes", params={"kind": "eligibility_change"}).text
    assert "Inclusion criterion, reworded" in changes and "<b>Outcome changed</b>" not in changes
    assert client.get("/changes", params={"kind": "eligibility"}).status_code == 400

    history = client.get(f"/api/studies/{KYSA_LN}/versions").json()
    labels = (
        [v["label"] for v in history["versions"]]
        if isinstance(history, dict)
        else [v["label"] for v in history]
    )
    compare = client.get(f"/studies/{KYSA_LN}/compare", params={"from": labels[-2], "to": labels[-1]}).text
    assert marked in compare and "Time frame" in compare


def test_changes_and_the_report_filter_by_phase(web: tuple[TestClient, World]) -> None:
    client, _ = web
    every = client.get("/api/events", params={"baseline": "1"}).json()["studies"]
    phase2 = client.get("/api/events", params={"phase": "2", "baseline": "1"}).json()["studies"]
    rows = client.get("/api/studies", params={"per_page": 500, "all": "1"}).json()["studies"]
    in_phase2 = {s["nct_id"] for s in rows if "PHASE2" in s["phases"]}
    assert phase2 and {s["nct_id"] for s in phase2} <= in_phase2
    assert len(phase2) < len(every)
    page = client.get("/changes", params={"phase": "PHASE2"}).text
    assert "phase Phase 2" in page and 'name="phase" value="PHASE2"' in page
    report = client.get("/report", params={"phase": "1", "format": "csv"}).text
    phases = {r["phase"] for r in csv.DictReader(io.StringIO(report))}
    assert phases and all("Phase 1" in p for p in phases)
    bad = client.get("/report", params={"phase": "six"})
    assert bad.status_code == 400 and "phase: unknown value" in bad.text


def test_a_first_digest_links_to_the_readers_landscape_and_each_study_page(
    web: tuple[TestClient, World], tmp_path: Any
) -> None:
    client, world = web
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    app = Application(settings, database=world.database, now=world.clock)
    app.preview_digests(out_dir=tmp_path, subscriber="derm")
    html = (tmp_path / "derm.html").read_text(encoding="utf-8")
    text = (tmp_path / "derm.txt").read_text(encoding="utf-8")
    assert "starting picture" in html.lower()
    assert 'href="https://ct.example.org/?indication=pemphigus"' in html
    assert "sortable and filterable: https://ct.example.org/?indication=pemphigus" in text
    # the link opens that very view
    page = client.get("/", params={"indication": "pemphigus"})
    assert page.status_code == 200 and PEMPHIGUS in page.text

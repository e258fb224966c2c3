"""One story of what changed: every surface tells the same changes for the same period and
filters, on SQLite and PostgreSQL, from real records with known changes.

The week: a first poll (the baseline: every study reached at once), then over two days a
suspension with its reason, an enrollment update, a study first posted that week, an
older study that the watch reaches for the first time ("newly found"), and a status
change. The table below asks each surface (the change log, the web's change list and its
API paged to the end, the feed, the report in every format and on the web, a subscriber's
digest) for the same filters and days, and compares the set of (study, kind of change)
and every count shown.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.app.browse import ChangesQuery
from monitor.config import WebSettings
from monitor.core.filters import StudyFilter
from monitor.publishing import delivery
from monitor.web import create_app
from tests.harness import KYSA_LN, MG, NEW_ID, PEMPHIGUS, World, changes_in_the_registry, edit, events

FOUND_ID = "NCT02999901"  # registered in 2023, reached by the watch only this week

Pairs = Counter[tuple[str, str]]


def _found_study(w: World) -> None:
    old = copy.deepcopy(w.registry.studies[MG])
    ps = old["protocolSection"]
    ps["identificationModule"]["nctId"] = FOUND_ID
    ps["identificationModule"]["briefTitle"] = "CD19 CAR T Cells in Refractory Myasthenia Gravis"
    ps["statusModule"]["studyFirstPostDateStruct"] = {"date": "2023-05-02"}
    ps["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2026-11-05"}
    w.registry.put(old)


def _recruit(ps: dict[str, Any]) -> None:
    ps["statusModule"]["overallStatus"] = "RECRUITING"


@pytest.fixture
def week(world: World) -> Iterator[tuple[World, Application, TestClient]]:
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    app = Application(settings, database=world.database, now=world.clock)
    # Every subscriber's first digest (the landscape) goes out after the baseline poll.
    assert {o.kind for o in world.send(mailer=_Sink())} == {"landscape"}
    changes_in_the_registry(world)  # poll on 2026-11-04
    _found_study(world)
    edit(world.registry, KYSA_LN, _recruit, posted="2026-11-05")
    world.registry.data_timestamp = "2026-11-06T09:00:00"
    world.poll()  # 2026-11-05
    with TestClient(create_app(app)) as client:
        yield world, app, client


class _Sink:
    def send(self, msg: Any) -> None:
        pass


FILTERS: list[dict[str, list[str]]] = [
    {},
    {"indication": ["lupus"]},
    {"modality": ["CART"]},
    {"indication": ["myasthenia"]},
    {"indication": ["pemphigus"], "status": ["stopped"]},
]
PERIODS = [
    (date(2026, 11, 4), date(2026, 11, 4)),
    (date(2026, 11, 4), date(2026, 11, 5)),
    (date(2026, 11, 5), None),
]


def _filter(app: Application, params: dict[str, list[str]]) -> StudyFilter:
    names = {"indication": "indications", "modality": "modalities", "status": "statuses"}
    return app.study_filter(**{names[k]: v for k, v in params.items()})


def _qs(params: dict[str, list[str]], since: date, until: date | None, **more: str) -> list[tuple[str, str]]:
    pairs = [(k, v) for k, vals in params.items() for v in vals] + [("since", since.isoformat())]
    if until:
        pairs.append(("until", until.isoformat()))
    return pairs + list(more.items())


def from_events(app: Application, params: dict[str, list[str]], since: date, until: date | None) -> Pairs:
    rows = app.events(since=since, until=until, flt=_filter(app, params)).rows
    return Counter((r["nct_id"], r["kind"]) for r in rows)


def from_api(client: TestClient, params: dict[str, list[str]], since: date, until: date | None) -> Pairs:
    """/api/events, paged with its cursor (3 changes an answer) until it says it is done."""
    out: Pairs = Counter()
    url: str | None = "/api/events"
    query: Any = _qs(params, since, until, limit="3")
    total = None
    while url:
        data = client.get(url, params=query).json()
        total = data["total"] if total is None else total
        assert data["total"] == total  # the same total on every page
        for study in data["studies"]:
            for e in study["changes"]:
                out[(e["nct_id"], e["kind"])] += 1
        url, query = data["next"], None
    assert sum(out.values()) == total
    return out


def from_changes_page(
    client: TestClient, params: dict[str, list[str]], since: date, until: date | None
) -> int:
    html = client.get("/changes", params=_qs(params, since, until)).text
    return int(html.split('<p class="sub">')[1].split(" ")[0])


def from_report(app: Application, params: dict[str, list[str]], since: date, until: date | None) -> Any:
    return json.loads(
        app.report(_filter(app, params), fmt="json", since=since, until=until, record=False).document
    )


def report_pairs(rep: dict[str, Any]) -> Pairs:
    out: Pairs = Counter()
    for s in rep["changes"]:
        for b in s["blocks"]:
            for c in b["changes"]:
                out[(b["nct_id"], c["kind"])] += 1
    return out


def from_feed(app: Application, params: dict[str, list[str]], since: date) -> int:
    entries = app.feed(_filter(app, params), since=datetime.combine(since, datetime.min.time()), limit=1000)
    return sum(len(e.changes) for e in entries.feed.entries)


def test_every_surface_tells_the_same_changes(week: tuple[World, Application, TestClient]) -> None:
    _, app, client = week
    seen_any = False
    for params in FILTERS:
        for since, until in PERIODS:
            expected = from_events(app, params, since, until)
            seen_any |= bool(expected)
            where = f"{params} {since}..{until}"
            assert from_api(client, params, since, until) == expected, where
            assert from_changes_page(client, params, since, until) == sum(expected.values()), where
            rep = from_report(app, params, since, until)
            assert report_pairs(rep) == expected, where
            assert rep["change_total"] == rep["change_count"] == sum(expected.values()), where
            for s in rep["changes"]:  # each heading's "(N)" is what is listed under it
                assert s["events"] == sum(len(b["changes"]) for b in s["blocks"]), where
            web = client.get("/report", params=_qs(params, since, until, format="json")).json()
            assert report_pairs(web) == expected, where
            if until is None:
                assert from_feed(app, params, since) == sum(expected.values()), where
    assert seen_any


def test_filter_words_select_the_same_changes_as_the_labels_they_stand_for(
    week: tuple[World, Application, TestClient],
) -> None:
    _, app, client = week
    since = date(2026, 11, 3)
    for alias, labels in [
        ({"indication": ["lupus"]}, {"indication": ["SLE", "lupus nephritis"]}),
        ({"modality": ["CART"]}, {"modality": ["CAR-T"]}),
        ({"indication": ["myasthenia"]}, {"indication": ["myasthenia gravis"]}),
    ]:
        by_alias = from_api(client, alias, since, None)
        assert by_alias and by_alias == from_api(client, labels, since, None)
        assert by_alias == from_events(app, alias, since, None)


def test_the_baseline_is_not_news_but_can_be_asked_for(week: tuple[World, Application, TestClient]) -> None:
    _world, app, client = week
    first_poll = date(2026, 11, 3)
    assert from_events(app, {}, first_poll, first_poll) == Counter()
    assert (
        client.get("/api/events", params={"since": "2026-11-03", "until": "2026-11-03"}).json()["total"] == 0
    )
    asked = app.events(since=first_poll, until=first_poll, baseline=True).rows
    assert len(asked) > 100 and {r["arrival"] for r in asked} == {"baseline"}
    assert all(r["importance"] == 3 for r in asked)  # recorded as they are; shown only when asked
    page = client.get("/changes", params={"since": "2026-11-03", "until": "2026-11-03", "baseline": "1"}).text
    assert "First reached by the initial sync" in page


def test_new_means_first_posted_in_the_period_and_found_studies_are_counted_apart(
    week: tuple[World, Application, TestClient],
) -> None:
    _world, app, client = week
    rep = from_report(app, {}, date(2026, 11, 4), date(2026, 11, 5))
    assert [s["nct_id"] for s in rep["new_studies"]] == [NEW_ID]
    assert all("2026-11-04" <= s["first_posted"] <= "2026-11-05" for s in rep["new_studies"])
    assert [s["nct_id"] for s in rep["found_studies"]] == [FOUND_ID]
    sections = {s["key"]: s for s in rep["changes"]}
    assert [b["nct_id"] for b in sections["new"]["blocks"]] == [NEW_ID]
    assert [b["nct_id"] for b in sections["found"]["blocks"]] == [FOUND_ID]
    found_line = sections["found"]["blocks"][0]["changes"][0]
    assert found_line["label"] == "Newly found" and found_line["importance"] == 2
    rows = {r["nct_id"]: r for r in app.events(since=date(2026, 11, 4)).rows if r["kind"] == "new_study"}
    assert rows[NEW_ID]["arrival"] == "registered" and rows[FOUND_ID]["arrival"] == "found"
    # "act on it" leaves the found study out, everywhere
    act = client.get("/api/events", params={"since": "2026-11-04", "importance": "3"}).json()
    assert {s["nct_id"] for s in act["studies"]} >= {NEW_ID, PEMPHIGUS}
    assert FOUND_ID not in {s["nct_id"] for s in act["studies"]}
    html = app.report(
        StudyFilter(), fmt="html", since=date(2026, 11, 4), until=date(2026, 11, 5), record=False
    )
    assert "newly found (registered earlier)" in html.document


def test_a_digest_tells_what_the_log_tells_for_its_period(
    week: tuple[World, Application, TestClient],
) -> None:
    world, app, _ = week
    by_id = {e.id: (e.nct_id, e.kind) for e in events(world.database)}
    classifier = app.classifier
    with world.database.session() as s:
        for sub in world.settings.subscribers:
            flt = delivery.subscriber_filter(sub, classifier)
            prepared = delivery.prepare(s, world.settings, sub, flt, world.clock())
            told = (
                Counter(by_id[i] for i in prepared.rendered.digest.all_ids)
                if prepared and prepared.rendered
                else Counter()
            )
            expected = Counter(
                (r["nct_id"], r["kind"])
                for r in app.events(since=date(2026, 11, 3), flt=flt, min_importance=sub.min_importance).rows
            )
            assert told == expected, sub.name
            if prepared and prepared.rendered:
                d = prepared.rendered.digest
                # the chips add up to every change, and each equals its section's count
                assert sum(n for _, n in d.counts) == d.events == sum(expected.values()), sub.name
                for label, n in d.counts:
                    section = next((x for x in d.sections if label.startswith(x.title)), None)
                    assert section is None or section.events == n


def test_until_includes_its_whole_day_on_every_surface(week: tuple[World, Application, TestClient]) -> None:
    """The second poll ran at 10:00 on 4 Nov: "until 4 Nov" includes it in the CLI's and the
    web's report alike, and in the change log and the API."""
    _, app, client = week
    day = date(2026, 11, 4)
    cli = from_report(app, {}, day, day)
    web = client.get(
        "/report", params={"since": "2026-11-04", "until": "2026-11-04", "format": "json"}
    ).json()
    assert cli["change_total"] == web["change_total"] == sum(from_events(app, {}, day, day).values()) > 0
    assert cli["until"] == web["until"] == "2026-11-04"


def test_reports_of_one_period_compare_with_the_same_earlier_report(
    week: tuple[World, Application, TestClient], tmp_path: Any
) -> None:
    _, app, _ = week
    flt = StudyFilter()
    app.report(flt, fmt="md", since=date(2026, 11, 1), until=date(2026, 11, 3), out=tmp_path / "old.md")
    later = {}
    for fmt in ("html", "md", "json"):
        later[fmt] = app.report(
            flt, fmt=fmt, since=date(2026, 11, 4), until=date(2026, 11, 5), out=tmp_path / f"r.{fmt}"
        )
    previous = {fmt: r.report.selection.previous_at for fmt, r in later.items()}
    assert len(set(previous.values())) == 1 and previous["html"] is not None
    # the web's report compares with the same one, and records nothing
    web = app.report(flt, fmt="json", since=date(2026, 11, 4), until=date(2026, 11, 5), record=False)
    assert web.report.selection.previous_at == previous["html"]


def test_changes_page_links_to_older_changes_until_every_one_is_shown(
    week: tuple[World, Application, TestClient],
) -> None:
    _, app, client = week
    total = sum(from_events(app, {}, date(2026, 11, 3), None).values())
    seen = 0
    url: str | None = "/changes?since=2026-11-03&limit=2"
    pages = 0
    while url:
        html = client.get(url).text
        seen += html.count('<span class="imp i')
        pages += 1
        url = (
            html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
            if 'rel="next"' in html
            else None
        )
    assert seen == total and pages == -(-total // 2)


def test_changes_query_pages_are_stable_while_new_changes_arrive(world: World) -> None:
    app = Application(world.settings, database=world.database, now=world.clock)
    changes_in_the_registry(world)
    q = ChangesQuery(limit=2)
    first = app.changes(q)
    assert first.next_cursor is not None
    edit(world.registry, MG, _recruit, posted="2026-11-06")
    world.poll()  # a new change arrives between two pages
    second = app.changes(ChangesQuery(limit=100, before=first.next_cursor))
    ids_first = {e["id"] for _, evs in first.groups for e in evs}
    ids_second = {e["id"] for _, evs in second.groups for e in evs}
    assert not ids_first & ids_second
    assert len(ids_first | ids_second) == first.total


def test_a_page_size_out_of_range_is_a_one_line_error(week: tuple[World, Application, TestClient]) -> None:
    _, _, client = week
    for bad in ("0", "1001", "x"):
        answer = client.get("/api/events", params={"limit": bad})
        assert answer.status_code == 400 and "limit" in answer.json()["error"], bad

"""The landscape as a picture and a list: the numbers analysts compare as columns (sorted as
numbers and dates), in every download (CSV, JSON, XLSX opened with openpyxl), and charts for
the current filters whose figures are the list's, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from openpyxl import load_workbook
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import WebSettings
from monitor.core.describe import status_label
from monitor.web import create_app
from tests.harness import KYSA_LN, MG, PEMPHIGUS, World, edit


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    with TestClient(create_app(Application(settings, database=world.database, now=world.clock))) as c:
        yield c


def test_the_numbers_analysts_compare_are_columns_and_sort_as_numbers(client: TestClient) -> None:
    page = client.get("/").text
    for heading in ("Enrollment", "Start", "Primary completion", "First posted", "Sites"):
        assert f">{heading}</a></th>" in page or f">{heading} " in page, heading
    rows = client.get("/api/studies", params={"sort": "enrollment", "order": "desc", "per_page": 500}).json()
    numbers = [r["enrollment"] for r in rows["studies"] if r["enrollment"] is not None]
    assert len(numbers) > 20 and numbers == sorted(numbers, reverse=True)
    assert any(n >= 100 for n in numbers) and any(n < 10 for n in numbers)  # 9 before 10, as numbers
    posted = client.get("/api/studies", params={"sort": "posted", "per_page": 500}).json()["studies"]
    dates = [r["first_posted"] for r in posted if r["first_posted"]]
    assert dates == sorted(dates)
    assert all(isinstance(r["sites"], int) for r in posted)


def test_every_download_carries_the_same_studies_and_columns(client: TestClient) -> None:
    params = {"indication": "lupus"}
    total = client.get("/api/studies", params=params).json()["total"]
    rows = list(csv.DictReader(io.StringIO(client.get("/", params={**params, "format": "csv"}).text)))
    assert len(rows) == total and {
        "enrollment",
        "start",
        "primary_completion",
        "first_posted",
        "sites",
    } <= set(rows[0])
    data = client.get("/", params={**params, "format": "json"}).json()
    assert data["total"] == total and "enrollment" in data["studies"][0]
    response = client.get("/", params={**params, "format": "xlsx"})
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert 'filename="ctmonitor-studies.xlsx"' in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    table = list(sheet.iter_rows(values_only=True))
    header, body = table[0], table[1:]
    assert len(body) == total
    assert header[:3] == ("NCT id", "Title", "Status") and "Enrollment" in header
    by_id = {r["nct_id"]: r for r in rows}
    enrollment = header.index("Enrollment")
    for line in body:
        expected = by_id[line[0]]["enrollment"]
        assert line[enrollment] == (int(expected) if expected else None)  # numbers stay numbers
    assert all(line[2] and not line[2].isupper() for line in body)  # "Recruiting", not RECRUITING


def test_the_charts_draw_the_lists_numbers_for_the_current_filters(client: TestClient, world: World) -> None:
    for i, nct in enumerate([KYSA_LN, PEMPHIGUS, MG]):  # registration dates the abridged records lack
        posted = f"202{3 + i % 2}-0{i + 2}-10"
        edit(
            world.registry,
            nct,
            lambda ps, d=posted: ps["statusModule"].update(studyFirstPostDateStruct={"date": d}),
        )
    world.poll()
    for params in ({}, {"modality": "CAR-T"}, {"indication": "lupus"}):
        page = client.get("/", params=params).text
        studies = client.get("/api/studies", params={**params, "per_page": 500}).json()["studies"]
        assert "<svg" in page and "Studies by status" in page
        status = Counter(status_label(s["status"]) for s in studies)
        for label, n in status.items():
            assert f"{label} ({n})" in page, (params, label)
        years = Counter(s["first_posted"][:4] for s in studies if s["first_posted"])
        drawn = re.search(r"Registrations per year.*?</svg>", page, re.S)
        if years:
            assert drawn and all(f">{n}</text>" in drawn.group(0) for n in years.values())
        else:  # the bundled records are abridged: many carry no first-posted date
            assert drawn is None
        countries = Counter(c for s in studies for c in s["countries"])
        drawn = re.search(r"Studies with sites, by country.*?</svg>", page, re.S)
        assert drawn and all(f">{n}</text>" in drawn.group(0) for _, n in countries.most_common(12))
        matrix = page.split('<table class="matrix">')[1].split("</table>")[0]
        assert matrix.count("<tr>") - 1 == len({i for s in studies for i in s["indications"] or ["none"]})

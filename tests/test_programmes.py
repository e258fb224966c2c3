"""Programmes: a page per product and per sponsor, and the pipeline of products ×
indications, on the real labelled records polled from the local registry, on SQLite and
PostgreSQL. Every number is the one the landscape, the change list and the API give for
the same product; an alias's address leads to the canonical page; a curator corrects a
product from the admin page and every surface follows."""

from __future__ import annotations

import csv
import io
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import ClassificationSettings, WebSettings
from monitor.core.products import slugify
from monitor.web import create_app
from tests.harness import KYSA_LN, MG, PEMPHIGUS, World, changes_in_the_registry

BASE = "https://ct.example.org"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def web(world: World) -> Iterator[tuple[TestClient, Application]]:
    settings = world.settings.model_copy(update={"web": WebSettings(base_url=BASE)})
    app = Application(settings, database=world.database, now=world.clock)
    with TestClient(create_app(app), base_url=BASE) as c:
        yield c, app


def _landscape(client: TestClient, **params: str) -> set[str]:
    data = client.get("/api/studies", params={**params, "per_page": "500"}).json()
    return {s["nct_id"] for s in data["studies"]}


def test_a_product_page_counts_what_the_landscape_lists(web: tuple[TestClient, Application]) -> None:
    client, _ = web
    page = client.get("/products/kyv-101")
    assert page.status_code == 200
    data = client.get("/api/products/kyv-101").json()
    listed = {s["nct_id"] for s in data["studies"]}
    assert listed == _landscape(client, product="KYV-101") and len(listed) >= 5
    assert f"Studies ({len(listed)})" in page.text
    for nct in listed:
        assert f'href="/studies/{nct}"' in page.text
    assert data["product"]["developer"] == "Kyverna Therapeutics"
    assert data["product"]["name"] == "KYV-101"
    assert data["summary"]["furthest"]["lead_study"] in listed
    # its registrations are on its timeline, oldest first (these thin records give few dates)
    dates = [t["date"] for t in data["timeline"]]
    registered = {s["nct_id"] for s in data["studies"] if s["first_posted"]}
    assert dates == sorted(dates)
    assert {t["study"] for t in data["timeline"] if t["what"] == "registered"} == registered
    assert data["change_total"] == client.get("/api/events", params={"product": "KYV-101"}).json()["total"]
    # the page links its landscape, changes, feed and JSON
    for link in ("/?product=KYV-101", "/changes?product=KYV-101", "/feeds/changes.xml?product=KYV-101"):
        assert f'href="{link}"' in page.text
    feed = client.get("/feeds/changes.xml", params={"product": "kyv101"})
    assert feed.status_code == 200 and "<feed" in feed.text


def test_a_products_changes_are_the_change_lists(world: World, web: tuple[TestClient, Application]) -> None:
    client, _ = web
    changes_in_the_registry(world)  # KYV-101's lupus nephritis study updates its enrollment
    data = client.get("/api/products/kyv-101").json()
    events = client.get("/api/events", params={"product": "kyv 101"}).json()
    ids = [c["id"] for st in events["studies"] for c in st["changes"]]
    assert data["change_total"] == events["total"] > 0
    assert [c["id"] for c in data["changes"]] == sorted(ids, reverse=True)[:20]
    assert any(c["study"] == KYSA_LN and c["kind"] == "enrollment_change" for c in data["changes"])
    page = client.get("/products/kyv-101").text
    assert f'href="/studies/{KYSA_LN}"' in page and "Enrollment" in page


def test_a_study_giving_two_products_is_on_both_pages(web: tuple[TestClient, Application]) -> None:
    client, _ = web
    caba = {s["nct_id"] for s in client.get("/api/products/caba-201").json()["studies"]}
    dsg3 = {s["nct_id"] for s in client.get("/api/products/dsg3-caart").json()["studies"]}
    assert PEMPHIGUS in caba and PEMPHIGUS in dsg3 and MG in caba
    # however the product is typed, the landscape finds the same studies
    for typed in ("CABA-201", "caba201", "rese-cel", "resecabtagene autoleucel"):
        assert _landscape(client, product=typed) == caba, typed


@pytest.mark.parametrize("alias", ["rese-cel", "CABA201", "resecabtagene-autoleucel"])
def test_an_alias_leads_to_the_canonical_page(web: tuple[TestClient, Application], alias: str) -> None:
    client, _ = web
    r = client.get(f"/products/{alias}", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/products/caba-201"
    r = client.get(f"/api/products/{alias}", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/api/products/caba-201"


def test_an_unknown_product_or_sponsor_is_a_readers_404(web: tuple[TestClient, Application]) -> None:
    client, _ = web
    for path in ("/products/no-such-thing", "/sponsors/no-such-sponsor"):
        r = client.get(path)
        assert r.status_code == 404 and "followed here" in r.text and "Traceback" not in r.text
        api = client.get("/api" + path)
        assert api.status_code == 404 and "followed here" in api.json()["error"]


def test_an_unnamed_product_has_a_page_of_its_own(web: tuple[TestClient, Application]) -> None:
    client, _ = web
    rows = client.get("/api/studies", params={"per_page": "500"}).json()["studies"]
    unnamed = [(r["nct_id"], p) for r in rows for p in r["products"] if p.startswith("unnamed ")]
    assert unnamed
    nct, name = unnamed[0]
    data = client.get(f"/api/products/{slugify(name)}").json()
    assert data["product"]["name"] == name and nct in {s["nct_id"] for s in data["studies"]}
    page = client.get(f"/products/{slugify(name)}")
    assert "name no product" in page.text


def test_a_sponsor_page_lists_its_programmes(web: tuple[TestClient, Application]) -> None:
    client, _ = web
    rows = client.get("/api/studies", params={"per_page": "500"}).json()["studies"]
    mine = {r["nct_id"] for r in rows if r["sponsor"] == "Kyverna Therapeutics"}
    data = client.get("/api/sponsors/kyverna-therapeutics").json()
    assert data["sponsor"] == "Kyverna Therapeutics"
    assert {s["nct_id"] for s in data["studies"]} == mine
    assert "KYV-101" in [p["name"] for p in data["programmes"]]
    page = client.get("/sponsors/kyverna-therapeutics")
    assert page.status_code == 200 and 'href="/products/kyv-101"' in page.text
    # the study and landscape pages link the sponsor and the product
    study = client.get(f"/studies/{sorted(mine)[0]}").text
    assert 'href="/sponsors/kyverna-therapeutics"' in study and 'href="/products/kyv-101"' in study


def test_the_pipeline_is_the_views_products_by_indication(web: tuple[TestClient, Application]) -> None:
    client, _ = web
    data = client.get("/api/products", params={"indication": "lupus"}).json()
    view = _landscape(client, indication="lupus")
    assert data["studies"] == len(view)
    seen: set[str] = set()
    for prog in data["products"]:
        seen |= set(prog["studies"])
        for group, cell in prog["indications"].items():
            assert set(cell["studies"]) <= view
            assert cell["lead_study"] in cell["studies"]
            # a cell is the landscape of its product and indication
            of_cell = _landscape(client, indication=group, product=prog["name"])
            assert set(cell["studies"]) == of_cell & view, (prog["name"], group)
    assert seen == view
    # named products first, each furthest first; unnamed ones after
    named = [p["name"].startswith("unnamed ") for p in data["products"]]
    assert named == sorted(named)
    # downloads: one row per product, the same columns
    table = list(csv.reader(io.StringIO(client.get("/products?indication=lupus&format=csv").text)))
    assert table[0][:2] == ["Product", "Modality"] and len(table) == len(data["products"]) + 1
    assert table[0][7:] == data["indications"]
    xlsx = client.get("/products", params={"indication": "lupus", "format": "xlsx"})
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet.max_row == len(data["products"]) + 1
    html = client.get("/products", params={"indication": "lupus"}).text
    assert f"{len(data['products'])} products in {len(view)} studies" in html
    assert client.get("/products", params={"format": "pdf"}).status_code == 400


def test_a_curator_corrects_a_product_with_a_reason(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTMONITOR_ADMIN_PASSWORD", PASSWORD)
    overrides = tmp_path / "overrides.toml"
    settings = world.settings.model_copy(
        update={
            "web": WebSettings(base_url=BASE),
            "classification": ClassificationSettings(overrides=str(overrides)),
        }
    )
    app = Application(settings, database=world.database, now=world.clock)
    client = TestClient(create_app(app), base_url=BASE)
    login = client.get("/admin/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', login.text)
    assert csrf
    client.post("/admin/login", data={"csrf": csrf.group(1), "password": PASSWORD})
    page = client.get("/admin")
    assert "Correct a product" in page.text
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert token
    rows = client.get("/api/studies", params={"per_page": "500"}).json()["studies"]
    nct = next(r["nct_id"] for r in rows if r["products"][0].startswith("unnamed "))
    done = client.post(
        "/admin",
        data={
            "csrf": token.group(1),
            "action": "pin",
            "label": "product",
            "nct": nct,
            "value": "rese-cel",
            "reason": "the sponsor's press release names the product",
        },
    )
    assert done.status_code == 200
    [entry] = tomllib.loads(overrides.read_text(encoding="utf-8"))["override"]
    assert entry["value"] == "CABA-201 (rese-cel)" and entry["reason"].startswith("the sponsor's")
    assert "the sponsor&#39;s press release" in done.text  # listed with its reason
    assert nct in {s["nct_id"] for s in client.get("/api/products/caba-201").json()["studies"]}
    assert nct in _landscape(client, product="rese-cel")
    study = client.get(f"/api/studies/{nct}").json()
    assert study["products"] == ["CABA-201 (rese-cel)"] and "product" in study["curated"]

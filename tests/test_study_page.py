"""A study page leads with what a clinician reads first (brief title, status, the brief
summary, its life as one bar), and a comparison reads in aligned before and after
columns, a big trial's site churn counted per country with each site folded under it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import WebSettings
from monitor.web import create_app
from tests.harness import KYSA_LN, MG, PEMPHIGUS, World, changes_in_the_registry, edit


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    with TestClient(create_app(Application(settings, database=world.database, now=world.clock))) as c:
        yield c


def test_the_page_leads_with_title_status_summary_and_the_study_s_life(client: TestClient) -> None:
    page = client.get(f"/studies/{KYSA_LN}").text
    h1 = page.index("<h1>")
    assert page.index("In brief") > h1 and page.index("Status over time") > page.index("In brief")
    assert page.index("Status over time") < page.index("<h2>Labels</h2>")
    assert "Active, not recruiting" in page[h1 : page.index("In brief")]
    assert "<svg" in page and "Today" in page


def test_a_comparison_keeps_before_and_after_apart(world: World, client: TestClient) -> None:
    changes_in_the_registry(world)  # the pemphigus study is suspended, with its reason
    page = client.get(f"/studies/{PEMPHIGUS}/compare").text
    row = page.split('<th scope="row">Why stopped</th>')[1].split("</tr>")[0]
    before, after = row.split("<td")[1:3]
    assert "(none)" in before and "Manufacturing review" not in before
    assert "Manufacturing review" in after and "none" not in after


def test_many_site_changes_are_counted_per_country_with_each_site_folded(
    world: World, client: TestClient
) -> None:
    def open_sites(ps: dict[str, Any]) -> None:
        locations = ps.setdefault("contactsLocationsModule", {}).setdefault("locations", [])
        for i in range(12):
            locations.append(
                {
                    "facility": f"Klinik {i}",
                    "city": f"Stadt {i}",
                    "country": "Germany",
                    "status": "RECRUITING",
                }
            )
        locations.append({"facility": "Hôpital Saint-Louis", "city": "Paris", "country": "France"})

    edit(world.registry, MG, open_sites, posted="2026-11-05")
    world.poll()
    page = client.get(f"/studies/{MG}/compare").text
    germany = page.split('<th scope="row">Sites, Germany</th>')[1].split("</tr>")[0]
    assert "<details><summary>12 added</summary>" in germany
    assert germany.count("<li>") == 12 and "Klinik 7" in germany
    assert '<th scope="row">Sites, France</th>' in page
    assert page.count('<th scope="row">Sites, ') == 2  # a row per country, not per site

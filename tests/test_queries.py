"""The default watch queries mean on the registry what they mean here.

The local server searches each query parameter over the fields the registry searches
(its published search areas), so a query that finds a study here finds it there. Each
scenario puts realistic records in the registry, runs the shipped queries through the
real client over HTTP, and checks what they reach.
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest

from monitor.config import QuerySettings, default_queries
from monitor.registry.client import CtGovClient
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.watch_queries import MAX_QUERY_CHARS, _encoded_length
from tests.conftest import DATA, make_settings, record

BASE_RECORD = "NCT05147467"  # a real /studies record, reshaped per scenario


def study(
    nct: str,
    *,
    title: str,
    conditions: list[str],
    interventions: list[dict[str, Any]],
    summary: str = "",
    detailed: str = "",
) -> dict[str, Any]:
    raw = record(BASE_RECORD)
    ps = raw["protocolSection"]
    ps["identificationModule"].update(nctId=nct, briefTitle=title, officialTitle=title)
    ps["identificationModule"].pop("acronym", None)
    ps["conditionsModule"] = {"conditions": conditions, "keywords": []}
    ps["armsInterventionsModule"] = {"interventions": interventions}
    ps["descriptionModule"] = {
        "briefSummary": summary or title,
        **({"detailedDescription": detailed} if detailed else {}),
    }
    raw.pop("derivedSection", None)
    return raw


def reached(records: list[dict[str, Any]], queries: list[QuerySettings] | None = None) -> set[str]:
    registry = Registry()
    registry.replace(copy.deepcopy(records), "2026-11-02T09:00:05")
    found: set[str] = set()
    with (
        LocalApiServer(registry) as api,
        CtGovClient(make_settings(api.base_url, page_size=50).api) as client,
    ):
        for q in queries or default_queries():
            for params in q.searches():
                for page in client.iter_pages(params):
                    found |= {s["protocolSection"]["identificationModule"]["nctId"] for s in page.studies}
    return found


def test_a_car_named_only_in_the_detailed_description_is_reached() -> None:
    hidden = study(
        "NCT07000001",
        title="A Study of XQ-118 in Refractory Systemic Lupus Erythematosus",
        conditions=["Systemic Lupus Erythematosus"],
        interventions=[{"type": "BIOLOGICAL", "name": "XQ-118 injection"}],
        summary="An open-label study of XQ-118 in adults with refractory SLE.",
        detailed="XQ-118 is an autologous anti-CD19 chimeric antigen receptor T-cell product.",
    )
    assert "NCT07000001" in reached([hidden])
    # The registry's BasicSearch (query.term) does not search the detailed description:
    # without the explicit AREA[DetailedDescription] the study would be missed, here as there.
    plain = QuerySettings(name="plain", term='"chimeric antigen receptor"', cond="lupus")
    assert "NCT07000001" not in reached([hidden], [plain])


def test_antiretroviral_cart_does_not_flood_the_queries() -> None:
    hiv = study(
        "NCT07000002",
        title="Early cART and Immune Recovery in Adults With HIV-1",
        conditions=["HIV-1 Infection"],
        interventions=[
            {"type": "DRUG", "name": "cART", "otherNames": ["combination antiretroviral therapy"]}
        ],
        summary="Participants start cART (combination antiretroviral therapy) within 7 days of diagnosis.",
    )
    car = study(
        "NCT07000003",
        title="CART-19 Cells in Refractory Myasthenia Gravis",
        conditions=["Myasthenia Gravis"],
        interventions=[{"type": "BIOLOGICAL", "name": "CART-19 cells"}],
    )
    assert reached([hiv, car]) == {"NCT07000003"}


def _engager_products() -> list[dict[str, str]]:
    with (DATA / "domain" / "products.csv").open(encoding="utf-8") as f:
        return [
            row for row in csv.DictReader(f) if row["modality"].startswith("bispecific")
        ]  # not "NOT a TCE"


@pytest.mark.parametrize("product", _engager_products(), ids=lambda p: p["product"])
def test_every_labelled_engager_in_an_autoimmune_study_is_reached(product: dict[str, str]) -> None:
    """As such records are written: the product's code, its target written the way the
    labelled data writes it (CD19xCD3, one word), and a condition, nothing else."""
    raw = study(
        "NCT07000010",
        title=f"{product['product']} in Adults With Active Systemic Lupus Erythematosus",
        conditions=["Systemic Lupus Erythematosus"],
        interventions=[
            {"type": "DRUG", "name": product["product"], "description": f"a {product['target']} antibody"}
        ],
    )
    assert reached([raw]) == {"NCT07000010"}


@pytest.mark.parametrize(
    "written",
    ["CD19xCD3", "CD3xCD20", "BCMAxCD3", "CD19 x CD3", "CD19/CD3", "CD19-CD3", "CD20×CD3", "CD19xCD3xCD28"],
)
def test_an_unknown_engager_is_reached_however_its_targets_are_written(written: str) -> None:
    raw = study(
        "NCT07000011",
        title="ZK-4410 in Refractory Rheumatoid Arthritis",
        conditions=["Rheumatoid Arthritis"],
        interventions=[{"type": "BIOLOGICAL", "name": f"ZK-4410 ({written} antibody)"}],
    )
    assert reached([raw]) == {"NCT07000011"}


def test_a_long_or_list_is_split_into_requests_of_a_safe_length_with_the_same_result() -> None:
    codes = [f'"ZZ-{n:04d}"' for n in range(400)]
    q = QuerySettings(name="long", intr=" OR ".join(codes), cond="lupus OR myositis")
    searches = q.searches()
    assert len(searches) > 1
    assert all(_encoded_length(p) <= MAX_QUERY_CHARS for p in searches)
    assert all(p["query.cond"] == "lupus OR myositis" for p in searches)
    assert [c for p in searches for c in p["query.intr"].split(" OR ")] == codes  # every term, once, in order
    records = [
        study(
            f"NCT070001{n:02d}",
            title=f"ZZ-{n * 7:04d} in lupus",
            conditions=["Lupus"],
            interventions=[{"type": "DRUG", "name": f"ZZ-{n * 7:04d}"}],
        )
        for n in range(50)
    ]
    assert reached(records, [q]) == {r["protocolSection"]["identificationModule"]["nctId"] for r in records}


def test_the_default_queries_fit_in_one_request_each() -> None:
    assert all(len(q.searches()) == 1 for q in default_queries())
    assert Path(__file__).parent.parent.joinpath("config.toml").exists()


def test_the_classifier_does_not_take_antiretroviral_cart_for_a_car() -> None:
    """cART next to T cells (an HIV trial measuring CD4 T-cell recovery) is no CAR T; a real
    CAR T in people living with HIV, named with a strong CAR word, still is."""
    from monitor.core.classify import Classifier
    from monitor.core.normalize import to_study

    classifier = Classifier()
    hiv = study(
        "NCT07000004",
        title="cART T Cell Recovery in Lupus Patients Living With HIV",
        conditions=["HIV Infections", "Systemic Lupus Erythematosus"],
        interventions=[
            {
                "type": "DRUG",
                "name": "cART T cells recovery regimen",
                "description": "combination antiretroviral therapy",
            }
        ],
    )
    label = classifier.classify(to_study(hiv))
    assert label.modality is None and not label.in_scope
    car = study(
        "NCT07000005",
        title="CD19 CAR-T Cells in Lupus Patients Receiving Antiretroviral Therapy",
        conditions=["Systemic Lupus Erythematosus"],
        interventions=[{"type": "BIOLOGICAL", "name": "CD19 CAR-T cells"}],
    )
    assert classifier.classify(to_study(car)).modality == "CAR-T"

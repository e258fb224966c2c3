"""One product, however it is typed: its code with or without the hyphen, any case, with a
space, finds the same studies in the CLI's --product and --search, the web's product filter
and search, and the API (a first step of the product entity: the codes are compared as
letters and digits)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import WebSettings
from monitor.web import create_app
from tests.harness import World


@pytest.fixture
def client(world: World) -> Iterator[tuple[TestClient, Application]]:
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    app = Application(settings, database=world.database, now=world.clock)
    with TestClient(create_app(app)) as c:
        yield c, app


def _ids(client: TestClient, **params: str) -> set[str]:
    data = client.get("/api/studies", params={**params, "per_page": "500"}).json()
    return {s["nct_id"] for s in data["studies"]}


@pytest.mark.parametrize(
    "code,spellings",
    [("KYV-101", ["kyv101", "KYV 101", "Kyv-101"]), ("CABA-201", ["caba201", "CABA 201", "caba-201"])],
)
def test_a_product_code_is_found_however_it_is_typed(
    client: tuple[TestClient, Application], code: str, spellings: list[str]
) -> None:
    web, app = client
    expected = _ids(web, product=code)
    assert expected, code
    assert expected == _ids(web, q=code)
    for spelling in spellings:
        assert _ids(web, product=spelling) == expected, spelling
        assert _ids(web, q=spelling) == expected, spelling
        assert {r["nct_id"] for r in app.studies(products=[spelling]).rows} == expected
        assert {r["nct_id"] for r in app.studies(search=spelling).rows} == expected
    assert not _ids(web, product="kyv1010")  # a longer code is another product

"""The registrations of one trial that a record names (the first step of following a trial
across registries): each registry's number recognised by its own format, whatever type
the sponsor gave it, and linked to its registry; shown on the study page and in the API."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from monitor.app import Application
from monitor.config import WebSettings
from monitor.core.normalize import to_study
from monitor.core.registrations import Registration, recognise, registrations
from monitor.registry.localdata import load_records
from monitor.web import create_app
from tests.conftest import DATA
from tests.harness import KYSA_LN, World, edit


@pytest.mark.parametrize(
    "text,registry,number",
    [
        ("2024-510663-34-00", "ctis", "2024-510663-34-00"),
        ("CTIS2023-507385-11-00", "ctis", "2023-507385-11-00"),  # as WHO ICTRP exports write it
        ("EudraCT 2019-001588-63", "eudract", "2019-001588-63"),
        ("chictr2300071234", "chictr", "ChiCTR2300071234"),
        ("jRCT2031230123", "jrct", "jRCT2031230123"),
        ("ISRCTN12345678", "isrctn", "ISRCTN12345678"),
        ("ACTRN12620000123456", "anzctr", "ACTRN12620000123456"),
        ("DRKS00031234", "drks", "DRKS00031234"),
    ],
)
def test_each_registry_number_is_recognised_by_its_format(text: str, registry: str, number: str) -> None:
    assert recognise(text) == [Registration(registry, number)]


@pytest.mark.parametrize(
    "text", ["P60DK020579", "2023-A00386-39", "KYSA-8", "IRB 2021-0345", "CAR-T-2023-01"]
)
def test_other_numbers_are_not_registrations(text: str) -> None:
    assert recognise(text) == []


def test_a_real_record_names_its_eudract_registration() -> None:
    studies = {s.nct_id: s for s in (to_study(r) for r in load_records(DATA / "registry"))}
    study = studies["NCT02552212"]  # lists "2015-001894-41" typed EUDRACT_NUMBER
    regs = registrations(study)
    assert regs[0] == Registration("ctgov", "NCT02552212")
    assert Registration("eudract", "2015-001894-41") in regs
    assert regs[1].url.endswith("2015-001894-41")
    grant = studies["NCT00763412"]  # an NIH grant number is no registration
    assert registrations(grant) == [Registration("ctgov", "NCT00763412")]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_study_page_and_api_list_the_trials_registrations(world: World) -> None:
    def register_in_the_eu(ps: dict) -> None:  # type: ignore[type-arg]
        ps["identificationModule"]["secondaryIdInfos"] = [
            {"id": "2024-512345-22-00", "type": "CTIS"},
            {"id": "KYV101-LN-01", "type": "OTHER"},
        ]

    edit(world.registry, KYSA_LN, register_in_the_eu, posted="2026-11-04", timestamp="2026-11-04T09:00:00")
    world.poll()
    settings = world.settings.model_copy(update={"web": WebSettings(base_url="https://ct.example.org")})
    client = TestClient(create_app(Application(settings, database=world.database, now=world.clock)))
    data = client.get(f"/api/studies/{KYSA_LN}").json()
    assert [(r["registry"], r["id"]) for r in data["registrations"]] == [
        ("ctgov", KYSA_LN),
        ("ctis", "2024-512345-22-00"),
    ]
    page = client.get(f"/studies/{KYSA_LN}").text
    assert "Also registered as" in page and "EU CTIS 2024-512345-22-00" in page
    assert "EUCT=2024-512345-22-00" in page
    # the landscape's rows, its API and its downloads name them too (the studies row keeps them)
    rows = {r["nct_id"]: r for r in client.get("/api/studies", params={"per_page": "500"}).json()["studies"]}
    assert [r["id"] for r in rows[KYSA_LN]["registrations"]] == [KYSA_LN, "2024-512345-22-00"]
    assert [r["registry"] for r in rows["NCT06359041"]["registrations"]] == ["ctgov"]
    csv_text = client.get("/", params={"format": "csv"}).text
    header, *lines = csv_text.splitlines()
    assert header.endswith(",also_registered")
    assert next(line for line in lines if line.startswith(KYSA_LN)).endswith(",EU CTIS 2024-512345-22-00")


def test_studies_stored_before_are_given_their_registrations_without_events(world: World) -> None:
    """A database from before registrations were kept gains them by the re-derivation of the
    next poll (a new normalizer version), not as changes."""
    from sqlalchemy import update

    from monitor import store
    from monitor.store.models import StudyRow

    def register_in_the_eu(ps: dict) -> None:  # type: ignore[type-arg]
        ps["identificationModule"]["secondaryIdInfos"] = [{"id": "ChiCTR2300071234", "type": "REGISTRY"}]

    edit(world.registry, KYSA_LN, register_in_the_eu, posted="2026-11-04", timestamp="2026-11-04T09:00:00")
    world.poll()
    with world.database.session() as s, s.begin():  # as the upgrade leaves them
        s.execute(update(StudyRow).values(registrations=None, classified_with="an older normalizer"))
    with world.database.session() as s:
        before = len(store.list_events(s))
    world.poll()
    with world.database.session() as s:
        row = store.study_row(s, KYSA_LN)
        assert row is not None and row.registrations == ("chictr:ChiCTR2300071234",)
        assert row.registered_on == "ctgov"
        assert len(store.list_events(s)) == before

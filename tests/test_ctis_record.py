"""EU CTIS records read as studies: the samples written from real records' shapes (current
and pre-2024 "CTIS1"), with CTIS's traps: two status vocabularies, DD/MM/YYYY dates,
member states with their own statuses, contacts never read."""

from __future__ import annotations

import json

import pytest

from monitor.config import Settings
from monitor.core import ctis
from monitor.core.classify import Classifier
from monitor.core.registrations import registrations
from tests.conftest import DATA

SAMPLES = DATA / "registries"


def sample(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def test_a_current_record_reads_as_a_study() -> None:
    st = ctis.to_study(sample("ctis-retrieve-2099-500202-23-00.json"))
    assert st.nct_id == "2099-500202-23-00"
    assert st.brief_title is not None and st.brief_title.startswith("A Study of Rapcabtagene Autoleucel")
    assert st.acronym == "AUTOGRAPH - SLE/LN"
    # the public status code, not the application status ("Authorised"), read with its own words
    assert (st.overall_status, st.registry_status) == ("RECRUITING", "Ongoing, recruiting")
    assert st.phases == ("PHASE2",)  # code 4: therapeutic exploratory
    assert st.conditions == ("Systemic lupus erythematosus", "Lupus nephritis")
    assert st.lead_sponsor == "Novartis Pharma AG" and st.lead_sponsor_class == "INDUSTRY"
    (product,) = st.interventions
    assert product.name == "Rapcabtagene autoleucel" and "YTB323" in product.other_names
    assert product.type == "BIOLOGICAL"
    assert st.start_date is not None and st.start_date.date == "2024-09-04"
    assert st.last_update_post_date == "2026-05-29"  # publishDate with nine fraction digits
    # its other registrations: the NCT number it names (a UTN is no registry number)
    assert [(r.registry, r.id) for r in registrations(st)] == [
        ("ctis", "2099-500202-23-00"),
        ("ctgov", "NCT06581198"),
    ]
    # each member state with its public status; Norway joined later (AM-1)
    states = {s.country: s.status for s in st.sites if s.key.startswith("msc|")}
    assert len(states) == 12 and states["Norway"] in ("NOT_YET_RECRUITING", "RECRUITING")
    assert set(states.values()) <= {"NOT_YET_RECRUITING", "RECRUITING"}
    assert st.criteria[0].section == "Inclusion" and st.criteria[0].text == "Age 18 to 75 years."
    assert st.outcomes[0].type == "PRIMARY"


def test_contacts_are_never_read() -> None:
    raw = (SAMPLES / "ctis-retrieve-2099-500202-23-00.json").read_bytes()
    st = ctis.from_bytes(raw)
    text = json.dumps(st.to_dict())
    assert "@example.org" not in text and "+00 000" not in text and "Keller" not in text


def test_a_ctis_only_engager_trial_is_in_scope() -> None:
    st = ctis.to_study(sample("ctis-retrieve-2099-500404-45-00.json"))
    assert not [r for r in registrations(st) if r.registry == "ctgov"]  # registered on CTIS only
    label = Classifier.from_settings(Settings()).classify(st)
    assert label.in_scope and label.modality == "bispecific", label.reason


def test_every_sample_record_decodes() -> None:
    for path in sorted(SAMPLES.glob("ctis-retrieve-*.json")):
        st = ctis.from_bytes(path.read_bytes())
        assert st.overall_status is not None and st.sites and st.lead_sponsor, path.name
    label = Classifier.from_settings(Settings()).classify(
        ctis.to_study(sample("ctis-retrieve-2099-500101-12-00.json"))
    )
    assert label.in_scope and label.modality == "CAR-T"


def test_a_record_from_before_the_relaunch_reads_through_its_own_shape() -> None:
    st = ctis.to_study(sample("ctis-legacy-ctis1-2099-500505-56-00.json"))
    assert st.nct_id == "2099-500505-56-00"
    assert (st.overall_status, st.registry_status) == ("RECRUITING", "Authorised, recruiting")
    assert st.phases == ("PHASE2",) and st.last_update_post_date == "2024-05-06"
    assert st.enrollment_count == 29
    label = Classifier.from_settings(Settings()).classify(st)
    assert not label.in_scope  # an oncology CAR-T


@pytest.mark.parametrize(
    "value,iso",
    [
        ("12/08/2024", "2024-08-12"),
        ("2024-06-17", "2024-06-17"),
        ("2024-06-17T12:42:53.34", "2024-06-17"),
        ("2025-09-16T03:39:42.531268872", "2025-09-16"),
        ("", None),
        ("8/12/2024", None),
        (20240812, None),
    ],
)
def test_dates_are_read_by_their_own_shape(value: object, iso: str | None) -> None:
    assert ctis.iso_date(value) == iso


def test_an_unknown_status_code_is_no_status() -> None:
    assert ctis.public_status(13) == (None, None)
    assert ctis.public_status("Ongoing, recruitment ended") == (
        "Ongoing, recruitment ended",
        "ACTIVE_NOT_RECRUITING",
    )


@pytest.mark.parametrize("body", [b"[]", b'{"ctNumber": "2019-001588-63"}', b"{not json"])
def test_a_record_without_a_ctis_number_is_refused_in_one_line(body: bytes) -> None:
    with pytest.raises(ctis.CtisRecordError):
        ctis.from_bytes(body)

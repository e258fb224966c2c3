"""EU CTIS records read as studies: the samples written from real records' shapes (current
and pre-2024 "CTIS1"), with CTIS's traps: two status vocabularies, DD/MM/YYYY dates,
member states with their own statuses, contacts never read."""

from __future__ import annotations

import copy
import json

import pytest

from monitor.config import Settings
from monitor.core import ctis, ctis_history
from monitor.core.classify import Classifier
from monitor.core.describe import change_text
from monitor.core.diff import diff
from monitor.core.normalize import tracked_view
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


def test_the_applications_are_read_in_the_readers_words() -> None:
    study = ctis.to_study(sample("ctis-retrieve-2099-500202-23-00.json"))
    mods = {m.key: m for m in study.modifications}
    assert list(mods) == ["IN", "SM-1", "AM-1", "NSM-1"]  # in the order they were submitted
    added = mods["AM-1"]
    assert (added.kind, added.submitted, added.decided, added.decisions) == (
        "Member state added",
        "2025-10-06",
        "2026-01-14",
        (("Norway", "authorised"),),
    )
    assert change_text("modification", "modifications", None, added.to_json()) == (
        "Member state added AM-1: submitted 2025-10-06; decided 2026-01-14 (authorised in Norway)"
    )
    assert "authorised in 11 member states" in change_text(
        "modification", "modifications", None, mods["SM-1"].to_json()
    )


def test_a_new_modification_and_its_decision_are_changes_and_an_unchanged_list_is_none() -> None:
    rec = sample("ctis-retrieve-2099-500101-12-00.json")
    before = ctis.to_study(rec)
    assert not diff(before, ctis.to_study(copy.deepcopy(rec)))
    submitted = copy.deepcopy(rec)
    submitted["authorizedApplication"]["applicationInfo"].append(
        {
            "businessKey": "SM-2",
            "type": "SUBSTANTIAL MODIFICATION",
            "submissionDate": "2026-11-02",
            "decisions": [],
        }
    )
    pending = ctis.to_study(submitted)
    [told] = diff(before, pending)
    assert told.kind == "modification" and told.key == "SM-2"
    assert change_text(told.kind, told.field, told.before, told.after) == (
        "Substantial modification SM-2: submitted 2026-11-02; not yet decided"
    )
    decided = copy.deepcopy(submitted)
    decided["authorizedApplication"]["applicationInfo"][-1].update(
        decisionDate="2026-12-01",
        decisions=[{"mscName": "Germany", "decision": "authorized_conditions"}],
    )
    [told] = diff(pending, ctis.to_study(decided))
    assert change_text(told.kind, told.field, told.before, told.after) == (
        "Substantial modification SM-2: decided 2026-12-01 (authorised with conditions in Germany)"
    )
    # a study without applications hashes as it did before they were read
    assert "modifications" not in tracked_view(ctis.to_study({"ctNumber": "2099-500999-99-00"}))


def test_the_records_own_history_is_dated_oldest_first() -> None:
    items = ctis_history.history(sample("ctis-retrieve-2099-500202-23-00.json"))
    days = [d for d, _ in items]
    assert days == sorted(days)
    said = [(d, change_text(c.kind, c.field, c.before, c.after)) for d, c in items]
    # the arrays come newest-first in one country, oldest-first in another: both read in order
    assert ("2024-06-03", "+ Member state, Spain (Under evaluation)") in said
    assert ("2024-08-02", "Member state, Spain: Under evaluation → Authorised") in said
    assert (
        "2026-01-14",
        "Member state added AM-1: submitted 2025-10-06; decided 2026-01-14 (authorised in Norway)",
    ) in said
    # every change is unique on its snapshot (the store's key): country and day, or the application
    assert len({(c.kind, c.field, c.key) for _, c in items}) == len(items)


def test_two_moves_of_a_member_state_on_one_day_are_two_changes() -> None:
    rec = sample("ctis-retrieve-2099-500101-12-00.json")
    info = rec["authorizedApplication"]["authorizedPartsII"][0]["mscInfo"]
    info["clinicalTrialStatusHistory"] += [
        {"trialStatus": "Halted", "trialStatusDate": "2025-03-03T09:00:00.1"},
        {"trialStatus": "Authorised", "trialStatusDate": "2025-03-03T16:00:00.2"},
    ]
    moves = [c for d, c in ctis_history.history(rec) if d == "2025-03-03"]
    assert [(c.before["status"], c.after["status"]) for c in moves] == [
        ("Authorised", "Halted"),
        ("Halted", "Authorised"),
    ]
    assert len({c.key for c in moves}) == 2

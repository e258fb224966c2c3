"""The differ: each kind of registry edit yields exactly the change a reader expects, and nothing else."""

from __future__ import annotations

import copy
from typing import Any

from monitor.core.diff import diff
from monitor.core.domain import EventKind, FieldChange
from monitor.core.normalize import content_hash, to_study
from tests.conftest import record, registry_records


def changes(raw: dict[str, Any], edit) -> list[FieldChange]:  # type: ignore[no-untyped-def]
    after = copy.deepcopy(raw)
    edit(after["protocolSection"], after)
    a, b = to_study(raw), to_study(after)
    result = diff(a, b)
    # the hash and the differ agree: no change <=> same hash
    assert (content_hash(a) == content_hash(b)) == (result == [])
    return result


def test_same_record_has_no_changes() -> None:
    for raw in registry_records():
        assert diff(to_study(raw), to_study(copy.deepcopy(raw))) == []


def test_recruitment_opens() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["statusModule"]["overallStatus"] = "RECRUITING"

    (c,) = changes(record("NCT06171568"), edit)
    assert c.kind == EventKind.STATUS
    assert c.before == {"status": "NOT_YET_RECRUITING", "last_known": None}
    assert c.after == {"status": "RECRUITING", "last_known": None}
    assert c.importance == 3


def test_suspension_with_a_reason_is_two_changes() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["statusModule"]["overallStatus"] = "SUSPENDED"
        ps["statusModule"]["whyStopped"] = "Manufacturing hold"

    kinds = [c.kind for c in changes(record("NCT06171568"), edit)]
    assert kinds == [EventKind.STATUS, EventKind.WHY_STOPPED]


def test_enrollment_becomes_actual() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["designModule"]["enrollmentInfo"] = {"count": 12, "type": "ACTUAL"}

    (c,) = changes(record("NCT06171568"), edit)
    assert c.kind == EventKind.ENROLLMENT
    assert c.before == {"count": 400, "type": "ESTIMATED"} and c.after == {"count": 12, "type": "ACTUAL"}


def test_date_slips_and_its_type_changes() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["statusModule"]["primaryCompletionDateStruct"] = {"date": "2026-06", "type": "ESTIMATED"}
        ps["statusModule"]["startDateStruct"]["type"] = "ACTUAL"

    result = changes(record("NCT06171568"), edit)
    assert [(c.kind, c.field) for c in result] == [
        (EventKind.DATE, "start_date"),
        (EventKind.DATE, "primary_completion_date"),
    ]
    assert result[1].after == {"date": "2026-06", "type": "ESTIMATED"}


def test_phase_moves_from_1_to_1_2() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["designModule"]["phases"] = ["PHASE2", "PHASE1"]

    (c,) = changes(record("NCT00973089"), edit)
    assert c.kind == EventKind.PHASE and c.before == ["NA"] and c.after == ["PHASE1", "PHASE2"]


def test_sites_added_removed_and_status_changed() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        locs = ps["contactsLocationsModule"]["locations"]
        locs[0]["status"] = "ACTIVE_NOT_RECRUITING"
        removed = locs.pop(1)
        locs.append(
            {"facility": "Charité Berlin", "city": "Berlin", "country": "Germany", "status": "RECRUITING"}
        )
        assert removed["facility"]

    result = changes(record("NCT03475563"), edit)
    kinds = sorted(c.kind.value for c in result)
    assert kinds == ["site_added", "site_removed", "site_status_change"]
    added = next(c for c in result if c.kind == EventKind.SITE_ADDED)
    assert added.after == {"site": "Charité Berlin, Berlin, Germany", "status": "RECRUITING"}


def test_conditions_and_interventions_added_and_removed() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["conditionsModule"]["conditions"].append("Lupus Nephritis")
        ps["armsInterventionsModule"]["interventions"].append({"type": "BIOLOGICAL", "name": "KYV-101"})

    result = changes(record("NCT06171568"), edit)
    assert {(c.kind, c.after) for c in result} == {
        (EventKind.CONDITION_ADDED, "Lupus Nephritis"),
        (EventKind.INTERVENTION_ADDED, "Biological: KYV-101"),
    }


def test_results_posted() -> None:
    def edit(ps, raw):  # type: ignore[no-untyped-def]
        raw["hasResults"] = True
        ps["statusModule"]["resultsFirstPostDateStruct"] = {"date": "2026-10-01", "type": "ACTUAL"}

    (c,) = changes(record("NCT06171568"), edit)
    assert c.kind == EventKind.RESULTS_POSTED and c.after["first_posted"] == "2026-10-01"


def test_sponsor_and_collaborator_changes() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["sponsorCollaboratorsModule"]["leadSponsor"] = {
            "name": "Kyverna Therapeutics",
            "class": "INDUSTRY",
        }
        ps["sponsorCollaboratorsModule"].setdefault("collaborators", []).append(
            {"name": "Stanford University", "class": "OTHER"}
        )

    result = changes(record("NCT06171568"), edit)
    assert [(c.kind, c.field) for c in result] == [
        (EventKind.SPONSOR, "lead_sponsor"),
        (EventKind.SPONSOR, "collaborators"),
    ]


def test_a_status_that_flips_back_is_recorded_as_what_it_is() -> None:
    raw = record("NCT06171568")
    suspended = copy.deepcopy(raw)
    suspended["protocolSection"]["statusModule"]["overallStatus"] = "SUSPENDED"
    a, b = to_study(raw), to_study(suspended)
    assert diff(a, b)[0].after["status"] == "SUSPENDED"
    assert diff(b, a)[0].after["status"] == "NOT_YET_RECRUITING"


def test_unknown_flip_changes_status_and_keeps_last_known() -> None:
    def edit(ps, _):  # type: ignore[no-untyped-def]
        ps["statusModule"]["overallStatus"] = "UNKNOWN"
        ps["statusModule"]["lastKnownStatus"] = "NOT_YET_RECRUITING"

    (c,) = changes(record("NCT06171568"), edit)
    assert c.after == {"status": "UNKNOWN", "last_known": "NOT_YET_RECRUITING"}

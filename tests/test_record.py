"""What ctmonitor reads of a record, declared once (monitor.core.record): typed decoding of
the registry's bytes, with the tolerance old records need and a clear refusal of the rest."""

from __future__ import annotations

import copy

import orjson
import pytest
from sqlalchemy import func, select

from monitor.core import record
from monitor.core.normalize import RecordError, content_hash, to_study
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.models import StudyRow
from tests.conftest import domain_records, registry_records
from tests.conftest import record as real_record
from tests.harness import FakeClock, edit, events, poll


@pytest.mark.parametrize(
    "raw",
    registry_records() + domain_records(),
    ids=lambda r: r["protocolSection"]["identificationModule"]["nctId"],
)
def test_a_record_reads_the_same_from_its_bytes_and_parsed(raw: dict) -> None:
    from_bytes = to_study(orjson.dumps(raw))
    assert from_bytes == to_study(raw)
    assert content_hash(from_bytes) == content_hash(to_study(copy.deepcopy(raw)))


def test_text_is_decoded_exactly_as_sent() -> None:
    raw = real_record("NCT03475563")
    criteria = (
        "Inclusion Criteria:\n\n* Aged \\<18 Years, eGFR ≥ 30 mL/min/1.73 m²\n* `CD19`+ B cells\u00a0absent"
    )
    raw["protocolSection"]["eligibilityModule"] = {"eligibilityCriteria": criteria}
    decoded = record.decode(orjson.dumps(raw))
    assert decoded.protocolSection.eligibilityModule.eligibilityCriteria == criteria
    study = to_study(orjson.dumps(raw))
    assert [c.text for c in study.criteria] == [
        "Aged <18 Years, eGFR ≥ 30 mL/min/1.73 m²",
        "`CD19`+ B cells absent",
    ]


def test_fields_ctmonitor_does_not_read_are_skipped() -> None:
    raw = real_record("NCT02552212")
    plain = to_study(raw)
    raw["resultsSection"]["participantFlowModule"]["groups"] = [{"id": "FG000", "title": 7}]
    raw["annotationSection"] = {"annotationModule": {"unpostedAnnotation": [None, 3]}}
    raw["protocolSection"]["statusModule"]["expandedAccessInfo"] = {"hasExpandedAccess": "no"}
    raw["protocolSection"]["identificationModule"]["orgStudyIdInfo"] = ["not", "an", "object"]
    raw["protocolSection"]["aNewModule"] = {"anything": [1, 2, {"x": None}]}
    assert to_study(orjson.dumps(raw)) == plain


def test_modules_and_fields_may_be_absent_or_null() -> None:
    raw = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT01000001", "briefTitle": None, "nctIdAliases": None},
            "statusModule": {"overallStatus": "COMPLETED", "startDateStruct": None},
            "designModule": None,
            "contactsLocationsModule": {"locations": [None, {"city": "Lyon", "country": "France"}]},
            "eligibilityModule": None,
        },
        "derivedSection": None,
        "hasResults": None,
    }
    study = to_study(orjson.dumps(raw))
    assert study.nct_id == "NCT01000001" and study.brief_title is None and study.start_date is None
    assert [s.label() for s in study.sites] == ["Lyon, France"]
    assert study.modules == () and study.has_results is False and study.enrollment_count is None


def test_numbers_and_booleans_written_as_strings_are_read() -> None:
    raw = real_record("NCT03475563")
    raw["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": "30", "type": "ESTIMATED"}
    raw["protocolSection"].setdefault("eligibilityModule", {})["healthyVolunteers"] = "false"
    study = to_study(orjson.dumps(raw))
    assert study.enrollment_count == 30 and study.enrollment_type == "ESTIMATED"
    assert study.healthy_volunteers is False
    raw["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": "about thirty", "type": "ESTIMATED"}
    assert to_study(orjson.dumps(raw)).enrollment_count is None  # unknown, as the sentinel 99999999 is


@pytest.mark.parametrize(
    ("module", "name", "value", "path"),
    [
        (
            "identificationModule",
            "briefTitle",
            {"text": "a title"},
            "$.protocolSection.identificationModule.briefTitle",
        ),
        ("statusModule", "overallStatus", 3, "$.protocolSection.statusModule.overallStatus"),
        (
            "contactsLocationsModule",
            "locations",
            "Lyon",
            "$.protocolSection.contactsLocationsModule.locations",
        ),
        (
            "conditionsModule",
            "conditions",
            ["Lupus", ["Nephritis"]],
            "$.protocolSection.conditionsModule.conditions[1]",
        ),
    ],
)
def test_a_field_of_the_wrong_type_is_refused_naming_the_study_and_the_field(
    module: str, name: str, value: object, path: str
) -> None:
    raw = real_record("NCT03475563")
    raw["protocolSection"].setdefault(module, {})[name] = value
    for given in (orjson.dumps(raw), raw):
        with pytest.raises(RecordError) as exc:
            to_study(given)
        message = str(exc.value)
        assert "NCT03475563" in message and path in message
        assert "\n" not in message


def test_a_record_without_an_nct_id_is_refused() -> None:
    raw = real_record("NCT03475563")
    del raw["protocolSection"]["identificationModule"]["nctId"]
    with pytest.raises(RecordError, match="without a valid nctId"):
        to_study(orjson.dumps(raw))


def test_a_mistyped_record_is_refused_alone_and_read_once_mended(
    database: Database, registry: Registry, api: LocalApiServer, settings_for
) -> None:
    """One record of a shape the API does not document: the rest of the poll is stored
    (another study's change is recorded), that study keeps what we had, the run fails in
    one line naming study and field, and once the registry mends the record its change
    arrives, once."""
    settings = settings_for(api.base_url)
    clock = FakeClock()
    first = poll(database, settings, clock)
    assert first.outcome == "ok"
    n = first.new_studies

    def break_it(ps: dict) -> None:
        ps["statusModule"]["overallStatus"] = {"value": "RECRUITING"}

    def suspend(ps: dict) -> None:
        ps["statusModule"]["overallStatus"] = "SUSPENDED"

    def mend_it(ps: dict) -> None:
        ps["statusModule"]["overallStatus"] = "RECRUITING"

    edit(registry, "NCT03475563", break_it)
    edit(registry, "NCT06171568", suspend)
    clock.advance(days=1)
    failed = poll(database, settings, clock)
    assert failed.outcome == "failed"
    assert failed.error.startswith("1 record(s) refused, the rest stored: study NCT03475563 is not of")
    assert "$.protocolSection.statusModule.overallStatus" in failed.error and "\n" not in failed.error
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(StudyRow)) == n
        assert s.get(StudyRow, "NCT03475563").overall_status == "UNKNOWN"  # as it was
        assert s.get(StudyRow, "NCT06171568").overall_status == "SUSPENDED"
    suspended = [e for e in events(database) if e.nct_id == "NCT06171568" and e.kind == "status_change"]
    assert len(suspended) == 1

    clock.advance(days=1)
    still = poll(database, settings, clock)  # the registry has not mended it: refused again, nothing new
    assert still.outcome == "failed" and still.events == 0

    edit(registry, "NCT03475563", mend_it, posted="2026-11-04", timestamp="2026-11-04T09:00:04")
    clock.advance(days=1)
    mended = poll(database, settings, clock)
    assert mended.outcome == "ok"
    status = [e for e in events(database) if e.kind == "status_change"]
    assert sorted(e.nct_id for e in status) == ["NCT03475563", "NCT06171568"]  # each change once


def test_what_doctor_checks_is_what_is_declared_and_all_of_it_is_fetched() -> None:
    """READS (the paths `ctmonitor doctor` checks the registry sends) are declared in
    monitor.core.record, and every declared field is inside what a poll asks for."""
    from monitor.config import DEFAULT_FIELDS
    from monitor.core.normalize import READS

    assert [r.path for r in READS if not record.declares(r.path)] == []
    leaves = {
        p for p in record.declared_paths() if not any(q.startswith(p + ".") for q in record.declared_paths())
    }
    unfetched = [p for p in leaves if not any(p == f or p.startswith(f + ".") for f in DEFAULT_FIELDS)]
    assert unfetched == []
    assert "protocolSection.sponsorCollaboratorsModule.leadSponsor.class" in leaves


def test_every_declared_field_has_the_type_the_registry_documents() -> None:
    """The declarations follow the API's OpenAPI spec (2.0.5, tests/data): each field
    declared in monitor.core.record exists there at the same path, with the same type."""
    import typing
    from pathlib import Path

    import yaml

    spec = yaml.safe_load((Path(__file__).parent / "data" / "openapi-2.0.5.yaml").read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]

    def resolve(node: dict) -> dict:
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        return node

    def documented(path: str) -> dict:
        node = resolve(schemas["Study"])
        for part in path.split("."):
            if node.get("type") == "array":
                node = resolve(node["items"])
            node = resolve(node["properties"][part])
        return node

    json_type = {str: "string", int: "integer", bool: "boolean", list: "array"}

    def declared(path: str) -> set[str]:
        kind: typing.Any = record.StudyRecord
        for part in path.split("."):
            while typing.get_origin(kind) is list:
                kind = typing.get_args(kind)[0]
            kind = record._struct_of(kind) or kind
            names = dict(zip(kind.__struct_encode_fields__, kind.__struct_fields__, strict=True))
            kind = typing.get_type_hints(kind)[names[part]]
        out = set()
        for a in typing.get_args(kind) or (kind,):
            origin = typing.get_origin(a) or a
            if a is not type(None):
                out.add(
                    "object" if record._struct_of(a) is not None and origin is not list else json_type[origin]
                )
        return out

    for path in sorted(record.declared_paths()):
        spec_type = documented(path).get("type", "object")
        assert spec_type in declared(path), f"{path}: the spec says {spec_type}, declared {declared(path)}"
    # the one field read more leniently than documented: a count written as words is kept as unknown
    assert declared("protocolSection.designModule.enrollmentInfo.count") == {"integer", "string"}

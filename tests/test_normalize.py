"""Normalizing real registry records: what we keep, and what must never look like a change."""

from __future__ import annotations

import copy

import pytest

from monitor.core.domain import PartialDate, Study
from monitor.core.normalize import (
    RecordError,
    clean_text,
    content_hash,
    mesh_id,
    raw_hash,
    text_key,
    to_study,
)
from tests.conftest import domain_records, load_json, record, registry_records


def test_unknown_status_keeps_the_last_known_status() -> None:
    st = to_study(record("NCT03475563"))
    assert st.overall_status == "UNKNOWN"
    assert st.last_known_status == "RECRUITING"
    assert st.phases == ()  # observational: no phases
    assert st.study_type == "OBSERVATIONAL"


def test_withdrawn_study_with_partial_untyped_start_date() -> None:
    st = to_study(record("NCT00973089"))
    assert st.overall_status == "WITHDRAWN"
    assert st.why_stopped == "recruiting or enrolling participants has halted prematurely and will not resume"
    assert st.start_date == PartialDate("2010-05", None)
    assert st.start_date.precision == "month"
    assert st.primary_completion_date == PartialDate("2015-03", "ACTUAL")
    assert st.enrollment_count == 0 and st.enrollment_type == "ACTUAL"
    assert st.phases == ("NA",)


def test_sites_keep_their_recruitment_status() -> None:
    st = to_study(record("NCT03475563"))
    site = next(s for s in st.sites if s.city == "Sabadell")
    assert site.facility == "Hospital Universitari Parc Taulí"
    assert site.status == "RECRUITING"
    assert site.country == "Spain"
    assert "Spain" in st.countries


def test_results_and_mesh_from_a_completed_phase3_record() -> None:
    st = to_study(record("NCT02552212"))
    assert st.has_results is True
    assert st.results_first_post_date
    assert st.phases == ("PHASE3",)
    assert {m.id for m in st.condition_mesh} >= {"D013166", "D025241"}  # zero padding removed


def test_mesh_ids_in_both_registry_formats_are_the_same_descriptor() -> None:
    assert mesh_id("D000013166") == mesh_id("D013166") == "D013166"
    assert mesh_id("D000071378") == "D000071378"  # a nine-digit descriptor stays nine digits
    assert mesh_id(None) is None


def test_enrollment_sentinel_means_unknown() -> None:
    raw = record("NCT06171568")
    raw["protocolSection"]["designModule"]["enrollmentInfo"] = {"count": 99999999, "type": "ESTIMATED"}
    st = to_study(raw)
    assert st.enrollment_count is None and st.enrollment_type is None


def test_thin_records_without_most_modules_still_normalize() -> None:
    for raw in domain_records():
        st = to_study(raw)
        assert st.nct_id.startswith("NCT") and st.overall_status


def test_minimal_record_with_only_an_id() -> None:
    st = to_study({"protocolSection": {"identificationModule": {"nctId": "nct01234567"}}})
    assert st.nct_id == "NCT01234567"
    assert st.sites == () and st.phases == () and st.start_date is None and st.has_results is False


@pytest.mark.parametrize(
    "bad", [{}, {"protocolSection": {}}, {"protocolSection": {"identificationModule": {"nctId": "12345"}}}]
)
def test_record_without_an_nct_id_is_an_error(bad: dict) -> None:
    with pytest.raises(RecordError):
        to_study(bad)


def test_text_cleaning_undoes_markdown_escapes_entities_and_spacing() -> None:
    assert (
        clean_text("DSG3 chimeric autoantibody receptor T cells \\[DSG3-CAART\\]")
        == "DSG3 chimeric autoantibody receptor T cells [DSG3-CAART]"
    )
    assert clean_text("  a\n\n  b &lt;c&gt; &#x2F; ") == "a b <c> /"
    assert clean_text("<p>Lupus</p>") == "Lupus"
    assert clean_text("   ") is None
    assert text_key("Sjögren's Syndrome") == text_key("sjogren s  syndrome")


@pytest.mark.parametrize("length", [20, 400])  # short texts go through a cache, long ones do not
def test_text_cleaning_is_the_same_for_short_and_long_text(length: int) -> None:
    pad = "x" * length
    # every kind of Unicode space folds to one; an escape written as an entity is still undone
    assert clean_text(f"\u2003{pad}\u00a0\t\r\n a\u3000 b ") == f"{pad} a b"
    assert clean_text(f"{pad} &#92;[CAR-T&#92;]") == f"{pad} [CAR-T]"
    assert clean_text(f"{pad} <b>CD19</b>&amp;BCMA") == f"{pad} CD19&BCMA"  # an inline tag parts no words
    assert clean_text(f"{pad} plain, single-spaced text") == f"{pad} plain, single-spaced text"


def test_history_version_in_html_normalizes_like_the_v2_record() -> None:
    version = load_json("history_NCT04280705_v0.trajnovd.json")["study"]
    st = to_study(version)
    assert st.nct_id == "NCT04280705"
    assert st.brief_summary and "<p>" not in st.brief_summary and "&#x2F;" not in st.brief_summary


def test_round_trip_through_the_stored_form() -> None:
    for raw in registry_records():
        st = to_study(raw)
        assert Study.from_dict(st.to_dict()) == st


def test_reformatting_changes_the_raw_hash_but_not_the_content_hash() -> None:
    raw = record("NCT03475563")
    before = to_study(raw)
    shuffled = copy.deepcopy(raw)
    ps = shuffled["protocolSection"]
    ps["contactsLocationsModule"]["locations"].reverse()
    ps["conditionsModule"]["conditions"] = [c.upper() + "  " for c in ps["conditionsModule"]["conditions"]]
    ps["identificationModule"]["briefTitle"] = "  " + ps["identificationModule"]["briefTitle"].replace(
        " ", "\n "
    )
    ps["statusModule"]["statusVerifiedDate"] = "2020-01"  # not tracked: re-verification is no news
    shuffled["derivedSection"]["conditionBrowseModule"]["meshes"][0]["id"] = "D003324"
    after = to_study(shuffled)
    assert raw_hash(raw) != raw_hash(shuffled)
    assert content_hash(before) == content_hash(after)


def test_tracked_change_moves_the_content_hash() -> None:
    raw = record("NCT06171568")
    changed = copy.deepcopy(raw)
    changed["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    assert content_hash(to_study(raw)) != content_hash(to_study(changed))

"""What a coordinator checks after the status: who may enrol, what is measured, how the
study is designed, what is published. Real records (tests/data/registry, from the
registry's API), each edited the way sponsors amend protocols; a reformatting alone must
never make an event."""

from __future__ import annotations

import copy
import json
from typing import Any

from monitor.core.describe import change_edits, change_text
from monitor.core.diff import diff
from monitor.core.domain import EventKind, FieldChange
from monitor.core.normalize import content_hash, to_study
from monitor.core.protocol import criteria
from tests.conftest import DATA, record

CF = "NCT00763412"  # a randomized trial: 5 inclusion and 6 exclusion criteria, ages 12-24, 3 primary outcomes
WITH_RESULTS = "NCT02552212"  # 31 outcomes, two RESULT publications


def changes(nct: str, edit) -> list[FieldChange]:  # type: ignore[no-untyped-def]
    raw = record(nct)
    after = copy.deepcopy(raw)
    edit(after["protocolSection"])
    a, b = to_study(raw), to_study(after)
    out = diff(a, b)
    assert (content_hash(a) == content_hash(b)) == (out == [])
    return out


def criteria_text(ps: dict[str, Any]) -> str:
    return ps["eligibilityModule"]["eligibilityCriteria"]


def set_criteria(ps: dict[str, Any], text: str) -> None:
    ps["eligibilityModule"]["eligibilityCriteria"] = text


def test_the_criteria_are_read_one_by_one_in_their_sections() -> None:
    items = to_study(record(CF)).criteria
    assert [c.section for c in items] == ["Inclusion"] * 5 + ["Exclusion"] * 6
    assert items[0].text == "Male or females 12 -24 years old"
    # the registry's Markdown escape is undone; the comparison it guards is kept
    assert "fasting blood glucose <126 mg/dl" in items[2].text


def test_a_criterion_added() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        set_criteria(
            ps,
            criteria_text(ps).replace(
                "\n\nExclusion Criteria:",
                "\n* Stable dose of hydroxychloroquine for 8 weeks\n\nExclusion Criteria:",
            ),
        )

    (c,) = changes(CF, edit)
    assert c.kind == EventKind.ELIGIBILITY and c.field == "criteria" and c.importance == 2
    assert c.before == []
    assert c.after == [{"section": "Inclusion", "text": "Stable dose of hydroxychloroquine for 8 weeks"}]
    assert change_text(c.kind, c.field, c.before, c.after) == (
        "Inclusion criterion added: “Stable dose of hydroxychloroquine for 8 weeks”"
    )


def test_a_criterion_removed() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        set_criteria(ps, criteria_text(ps).replace("* Patients with active ABPA on steroids\n", ""))

    (c,) = changes(CF, edit)
    assert c.before == [{"section": "Exclusion", "text": "Patients with active ABPA on steroids"}]
    assert c.after == []
    assert "Exclusion criterion removed" in change_text(c.kind, c.field, c.before, c.after)


def test_a_criterion_reworded_is_one_edit_with_the_changed_words_marked() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        set_criteria(
            ps,
            criteria_text(ps).replace(
                "systemic steroids for more than 28 days during the 6 months",
                "systemic steroids for more than 14 days during the 3 months",
            ),
        )

    (c,) = changes(CF, edit)
    text = change_text(c.kind, c.field, c.before, c.after)
    assert text.startswith(
        "Exclusion criterion reworded: “Patients who have received systemic steroids for more than 28"
    )
    ((what, pieces),) = change_edits(c.kind, c.field, c.before, c.after)
    assert what == "Exclusion criterion, reworded"
    assert [t for op, t in pieces if op == "del"] == ["28", "6"]
    assert [t for op, t in pieces if op == "ins"] == ["14", "3"]
    # only the changed criterion is named: not the other ten
    assert len(c.before) == len(c.after) == 1


def test_an_age_limit_changed_is_structured() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        ps["eligibilityModule"]["maximumAge"] = "30 Years"

    (c,) = changes(CF, edit)
    assert (c.kind, c.field, c.before, c.after) == (
        EventKind.ELIGIBILITY,
        "maximum_age",
        "24 Years",
        "30 Years",
    )
    assert change_text(c.kind, c.field, c.before, c.after) == "Maximum age: 24 Years → 30 Years"


def test_sex_and_healthy_volunteers() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        ps["eligibilityModule"]["sex"] = "FEMALE"
        ps["eligibilityModule"]["healthyVolunteers"] = True

    texts = [change_text(c.kind, c.field, c.before, c.after) for c in changes(CF, edit)]
    assert texts == ["Sex: All → Female", "Accepts healthy volunteers: no → yes"]


def test_a_primary_endpoint_s_time_frame_changed() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        ps["outcomesModule"]["primaryOutcomes"][0]["timeFrame"] = "1 year"

    (c,) = changes(CF, edit)
    assert c.kind == EventKind.OUTCOME_CHANGE and c.importance == 2
    assert c.before["time_frame"] == "2 year/end of study" and c.after["time_frame"] == "1 year"
    assert change_text(c.kind, c.field, c.before, c.after) == (
        "Primary outcome “BMI”: time frame “2 year/end of study” → “1 year”"
    )


def test_a_secondary_outcome_added_ranks_below_a_primary_one() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        ps["outcomesModule"]["secondaryOutcomes"].append(
            {"measure": "HbA1c", "description": "Glycated haemoglobin", "timeFrame": "2 years"}
        )
        ps["outcomesModule"]["primaryOutcomes"].append(
            {"measure": "Insulin secretion", "timeFrame": "2 years"}
        )

    out = changes(CF, edit)
    assert [(c.kind, c.after["type"], c.importance) for c in out] == [
        (EventKind.OUTCOME_ADDED, "PRIMARY", 2),
        (EventKind.OUTCOME_ADDED, "SECONDARY", 1),
    ]
    assert change_text(out[1].kind, out[1].field, out[1].before, out[1].after) == (
        "Secondary outcome “HbA1c” (time frame: 2 years)"
    )


def test_a_primary_endpoint_re_worded_in_place_is_one_change() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        ps["outcomesModule"]["primaryOutcomes"][1]["measure"] = "Body Composition by DEXA"

    (c,) = changes(CF, edit)
    assert c.kind == EventKind.OUTCOME_CHANGE
    assert (c.before["measure"], c.after["measure"]) == ("Body Composition", "Body Composition by DEXA")


def test_a_results_publication_added_is_ranked_high() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        ps["referencesModule"]["references"].append(
            {
                "pmid": "39000001",
                "type": "RESULT",
                "citation": "Doe J, et al. Long-term outcomes of the trial. N Engl J Med. 2026;394:1-12.",
            }
        )

    (c,) = changes(WITH_RESULTS, edit)
    assert c.kind == EventKind.PUBLICATION_ADDED and c.importance == 3
    assert c.after == {
        "type": "RESULT",
        "pmid": "39000001",
        "citation": "Doe J, et al. Long-term outcomes of the trial. N Engl J Med. 2026;394:1-12.",
    }
    assert change_text(c.kind, c.field, c.before, c.after).startswith("Results publication: Doe J")


def test_a_background_reference_is_a_detail_and_a_corrected_citation_is_nothing() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        refs = ps["referencesModule"]["references"]
        refs[0]["citation"] = refs[0]["citation"].replace(".", ". ", 1) + " Erratum in: ibid."
        refs.append({"pmid": "12345678", "type": "BACKGROUND", "citation": "Background paper."})

    (c,) = changes(WITH_RESULTS, edit)
    assert c.kind == EventKind.PUBLICATION_ADDED and c.importance == 1


def test_a_switch_to_a_randomised_masked_design() -> None:
    raw = record(CF)
    info = raw["protocolSection"]["designModule"]["designInfo"]
    info.update(
        allocation="NON_RANDOMIZED", interventionModel="SINGLE_GROUP", maskingInfo={"masking": "NONE"}
    )

    after = copy.deepcopy(raw)
    after["protocolSection"]["designModule"]["designInfo"].update(
        allocation="RANDOMIZED", interventionModel="PARALLEL", maskingInfo={"masking": "DOUBLE"}
    )
    out = diff(to_study(raw), to_study(after))
    assert [change_text(c.kind, c.field, c.before, c.after) for c in out] == [
        "Allocation: Non-randomized → Randomized",
        "Intervention model: Single group assignment → Parallel assignment",
        "Masking: None (open label) → Double",
    ]
    assert {c.kind for c in out} == {EventKind.DESIGN} and {c.importance for c in out} == {2}


def test_reformatting_the_criteria_is_no_change() -> None:
    """Bullets, numbering, blank lines, spacing, case of a heading, Markdown escapes and
    the history versions' HTML lists: the same criteria each time."""

    def reformat(ps):  # type: ignore[no-untyped-def]
        text = criteria_text(ps)
        text = (
            text.replace("\n* ", "\n- ")
            .replace("\n\n", "\n\n\n")
            .replace("Inclusion Criteria:", "INCLUSION CRITERIA")
        )
        text = text.replace("\\<126", "&lt;126").replace("glucose pattern", "glucose  pattern")
        set_criteria(ps, text + "\n")
        ps["eligibilityModule"]["maximumAge"] = "24 years"
        ps["outcomesModule"]["primaryOutcomes"][1]["description"] = "Reporting % of Fat and Lean  body mass "

    assert changes(CF, reformat) == []

    def numbered(ps):  # type: ignore[no-untyped-def]
        lines, n = [], 0
        for line in criteria_text(ps).split("\n"):
            if line.startswith("* "):
                n += 1
                line = f"{n}. {line[2:]}"
            elif line.endswith("Criteria:"):
                n = 0
            lines.append(line)
        set_criteria(ps, "\n".join(lines))

    assert changes(CF, numbered) == []

    def as_html(ps):  # type: ignore[no-untyped-def]
        html, open_list = [], False
        for line in criteria_text(ps).split("\n"):
            if line.startswith("* "):
                if not open_list:
                    html.append("<ul>")
                    open_list = True
                html.append(
                    f"<li>{line[2:].replace(chr(92) + '<', '&lt;').replace(chr(92) + '>', '&gt;')}</li>"
                )
            elif line.strip():
                if open_list:
                    html.append("</ul>")
                    open_list = False
                html.append(f"<p>{line}</p>")
        html.append("</ul>" if open_list else "")
        set_criteria(ps, "".join(html))

    assert changes(CF, as_html) == []


def test_a_history_version_in_html_reads_as_the_markdown_record() -> None:
    history = DATA / "history" / "NCT04280705"
    html = json.loads((history / "v3.json").read_text())["study"]
    markdown = json.loads((history / "current.json").read_text())
    old, new = to_study(html), to_study(markdown)
    assert old.criteria == new.criteria and len(new.criteria) > 10
    assert diff(old, new) == []


def test_criteria_moved_around_are_a_detail() -> None:
    def edit(ps):  # type: ignore[no-untyped-def]
        text = criteria_text(ps)
        a = "* Patients with evidence of liver dysfunction\n"
        b = "* Patients with active ABPA on steroids\n"
        set_criteria(ps, text.replace(a, "").replace(b, b + a))

    (c,) = changes(CF, edit)
    assert c.before == c.after == [] and c.importance == 1
    assert change_text(c.kind, c.field, c.before, c.after) == "the same criteria, listed in another order"


def test_a_paragraph_of_criteria_is_compared_sentence_by_sentence() -> None:
    text = (
        "Adults aged 18 to 70 years with systemic lupus erythematosus meeting the 2019 EULAR/ACR criteria "
        "and a SLEDAI-2K score of at least 8 at screening. Patients must have failed at least two standard "
        "therapies including glucocorticoids and one immunosuppressant. Adequate renal function with an eGFR "
        "of 30 mL/min or more is required."
    )
    items = criteria(text)
    assert len(items) == 3
    edited = text.replace("at least two standard", "at least one standard")
    old, new = to_study(_with_criteria(text)), to_study(_with_criteria(edited))
    (c,) = [c for c in diff(old, new) if c.kind == EventKind.ELIGIBILITY]
    assert len(c.before) == len(c.after) == 1 and "failed at least one standard" in c.after[0]["text"]


def _with_criteria(text: str) -> dict[str, Any]:
    raw = record(CF)
    set_criteria(raw["protocolSection"], text)
    return raw


def test_every_real_record_reads_and_compares_with_itself() -> None:
    from tests.conftest import registry_records

    for raw in registry_records():
        s = to_study(raw)
        assert diff(s, to_study(copy.deepcopy(raw))) == []
        if "eligibilityModule" in raw["protocolSection"]:
            assert s.criteria, s.nct_id


def test_the_diff_command_shows_only_the_changed_criteria_word_by_word() -> None:
    from datetime import datetime

    from monitor.app.study import CompareResult
    from monitor.core.timeline import Version, compare

    raw = record(CF)
    after = copy.deepcopy(raw)
    set_criteria(
        after["protocolSection"],
        criteria_text(after["protocolSection"]).replace(
            "stable within 5% for 3 months", "stable within 10% for 3 months"
        ),
    )
    old = Version(1, "poll", None, "2026-10-01", datetime(2026, 10, 2), to_study(raw))
    new = Version(2, "poll", None, "2026-11-01", datetime(2026, 11, 2), to_study(after))
    text = CompareResult(CF, old, new, compare(CF, old, new), versions=2).text()
    assert text.splitlines()[1:] == [
        "  Eligibility: 1 criterion changed",
        "    Inclusion criterion, reworded: Weight must be stable within [-5%-]{+10%+} for 3 months prior to "
        "initiation visit",
    ]


def test_diff_of_a_large_multi_site_study_counts_sites_per_country() -> None:
    """A multinational trial closes 30 sites and opens 2: the other changes stay readable."""
    from datetime import datetime

    from monitor.app.study import CompareResult
    from monitor.core.timeline import Version, compare

    raw = record(WITH_RESULTS)
    for loc in raw["protocolSection"]["contactsLocationsModule"]["locations"]:
        loc["status"] = "RECRUITING"
    after = copy.deepcopy(raw)
    ps = after["protocolSection"]
    locations = ps["contactsLocationsModule"]["locations"]
    for loc in locations[:30]:
        loc["status"] = "COMPLETED"
    locations += [
        {"facility": "Charité", "city": "Berlin", "country": "Germany", "status": "RECRUITING"},
        {"facility": "LMU Klinikum", "city": "Munich", "country": "Germany", "status": "RECRUITING"},
    ]
    ps["statusModule"]["overallStatus"] = "ACTIVE_NOT_RECRUITING"
    old = Version(1, "poll", None, "2026-10-01", datetime(2026, 10, 2), to_study(raw))
    new = Version(2, "poll", None, "2026-11-01", datetime(2026, 11, 2), to_study(after))
    comparison = compare(WITH_RESULTS, old, new)
    text = CompareResult(WITH_RESULTS, old, new, comparison, versions=2).text()
    lines = text.splitlines()
    assert lines[0].endswith(": 33 changes")
    assert "  Status: Completed → Active, not recruiting" in lines
    assert "  Sites (32 changes; --sites lists each):" in lines
    summary = lines[lines.index("  Sites (32 changes; --sites lists each):") + 1 :]
    assert summary == ["    United States: 30 now Completed", "    Germany: 2 added"]
    assert not any(line.startswith("  Site status") for line in lines)
    every = CompareResult(WITH_RESULTS, old, new, comparison, versions=2, all_sites=True).text()
    assert len([ln for ln in every.splitlines() if ln.startswith("  Site status, ")]) == 30


def test_the_criteria_key_is_each_criterion_keyed_and_joined() -> None:
    """criteria_key folds ASCII criteria in one pass; it must equal keying each criterion
    (with its section marks) and joining them, whatever the text."""
    import random

    from monitor.core.domain import Criterion
    from monitor.core.protocol import criteria_key, loose_key

    def one_by_one(items: list[Criterion]) -> str:
        parts, section = [], None
        for c in items:
            if c.section != section:
                parts.append(f"[{c.section.lower()}]")
                section = c.section
            parts.append(loose_key(c.text))
        return " ".join(parts)

    rng = random.Random(5)
    words = [
        "Age",
        "≥18",
        "SLE",
        "eGFR  <30",
        "ＣＤ19",
        "ﬁbrosis",
        "Straße",
        "B-cell",
        "\u00a0",
        "x",
        "[x]",
        "  ",
    ]
    for _ in range(3000):
        items = [
            Criterion(
                rng.choice(["", "Inclusion", "Exclusion"]), " ".join(rng.choices(words, k=rng.randint(1, 4)))
            )
            for _ in range(rng.randint(0, 6))
        ]
        assert criteria_key(items) == one_by_one(items)

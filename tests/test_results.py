"""Posted results told with what was posted: the participant flow, the baseline count, the
outcome measures and the adverse-event totals, read from the registry's real results sections."""

from __future__ import annotations

import copy

from monitor.core.describe import change_text
from monitor.core.diff import diff
from monitor.core.domain import EventKind
from monitor.core.normalize import to_study
from monitor.core.results import parts, results_url
from tests.conftest import record


def test_a_real_results_section_is_summarised() -> None:
    study = to_study(record("NCT02210780"))
    r = study.results
    assert r is not None and r.flow and r.baseline and r.adverse_events
    assert (r.started, r.completed, r.analysed) == (194, 181, 194)
    assert len(r.outcomes) == 11 and [o.type for o in r.outcomes].count("PRIMARY") == 1
    assert r.at_risk == 194 and r.deaths == 0
    assert parts(r.to_json()) == [
        "participant flow: 194 started, 181 completed",
        "baseline characteristics of 194 participants",
        "11 outcome measures (1 primary)",
        f"adverse events: serious in {r.serious_affected} of 194",
    ]
    assert results_url("NCT02210780") == "https://clinicaltrials.gov/study/NCT02210780?tab=results"


def test_results_posted_says_what_was_posted() -> None:
    raw = record("NCT02210780")
    before = copy.deepcopy(raw)
    del before["resultsSection"]
    before["hasResults"] = False
    (change,) = [c for c in diff(to_study(before), to_study(raw)) if c.kind == EventKind.RESULTS_POSTED]
    text = change_text(change.kind.value, change.field, change.before, change.after)
    assert text.startswith("results first posted 2020-05-07: participant flow: 194 started, 181 completed;")
    assert "11 outcome measures (1 primary)" in text


def test_revised_results_are_a_change_of_their_own() -> None:
    raw = record("NCT02210780")
    revised = copy.deepcopy(raw)
    measures = revised["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"]
    measures.append({**measures[-1], "title": "Serum IgE at Week 52", "type": "SECONDARY"})
    (change,) = diff(to_study(raw), to_study(revised))
    assert change.kind == EventKind.RESULTS_UPDATED and change.importance == 2
    text = change_text(change.kind.value, change.field, change.before, change.after)
    assert text == "Results revised: 1 outcome measure posted: “Serum IgE at Week 52”"


def test_results_first_read_by_a_newer_version_are_a_baseline_not_a_revision() -> None:
    from monitor.core.decide import CurrentState, baseline_for

    raw = record("NCT02210780")
    old = to_study(raw)
    state = CurrentState(
        nct_id=old.nct_id,
        content_hash="x",
        raw_hash="y",
        snapshot_count=1,
        in_query=True,
        gone=False,
        merged_into=None,
        overall_status="COMPLETED",
        last_update_post_date="2020-05-07",
        in_scope=True,
        fields_version=2,
    )
    assert "results" in baseline_for(state, old)
    revised = copy.deepcopy(raw)
    revised["resultsSection"]["outcomeMeasuresModule"]["outcomeMeasures"].pop()
    assert diff(old, to_study(revised), baseline=baseline_for(state, old)) == []

"""The poll's decision for one record, rule by rule: given what is stored and what the
registry sent, what is written (a new row, a snapshot, which events, a merge) or nothing.

Each row of the table is one situation a poll meets; the records are real registry
records (tests/data), edited the way the registry edits them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from monitor.core.classify import Classifier
from monitor.core.decide import CurrentState, Decision, decide, match, untouched
from monitor.core.domain import EventKind
from monitor.core.normalize import content_hash, raw_hash, raw_json, to_study
from tests.conftest import make_settings, record

STUDY = "NCT06171568"  # a CAR T study in lupus, in scope
OTHER = "NCT05938725"  # KYSA-1, in scope too

CLASSIFIER = Classifier.from_settings(make_settings("http://127.0.0.1:9"))


def stored(raw: dict[str, Any], **over: Any) -> CurrentState:
    """The stored state of a study whose last snapshot is `raw` (polled twice so far)."""
    study = to_study(raw)
    state = CurrentState(
        nct_id=study.nct_id,
        content_hash=content_hash(study),
        raw_hash=raw_hash(raw_json(raw)),
        snapshot_count=2,
        in_query=True,
        gone=False,
        merged_into=None,
        overall_status=study.overall_status,
        last_update_post_date=study.last_update_post_date,
        in_scope=CLASSIFIER.classify(study).in_scope,
    )
    return replace(state, **over)


def edited(raw: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    edit(out["protocolSection"])
    return out


def recruiting(ps: dict[str, Any]) -> None:
    ps["statusModule"]["overallStatus"] = "RECRUITING"


def reformatted(_ps: dict[str, Any]) -> None:
    """Bytes move, content does not: the registry's derived section changed."""


def bytes_only(raw: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    out.setdefault("derivedSection", {})["miscInfoModule"] = {"versionHolder": "2099-01-01"}
    return out


def renumbered(raw: dict[str, Any], old_id: str, new_id: str) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    ident = out["protocolSection"]["identificationModule"]
    ident["nctId"] = new_id
    ident["nctIdAliases"] = [old_id]
    return out


def off_topic(ps: dict[str, Any]) -> None:
    """The record now describes a small-molecule study in heart failure: out of scope."""
    ps["conditionsModule"] = {"conditions": ["Heart Failure"], "keywords": []}
    ps["armsInterventionsModule"] = {
        "interventions": [{"type": "DRUG", "name": "Dapagliflozin"}],
        "armGroups": [],
    }
    ps["identificationModule"]["briefTitle"] = "Dapagliflozin in Heart Failure"
    ps["identificationModule"]["officialTitle"] = "Dapagliflozin in Heart Failure"
    ps.get("descriptionModule", {}).update(
        briefSummary="Dapagliflozin in heart failure.", detailedDescription=""
    )


def decision_for(
    raw: dict[str, Any], current: dict[str, CurrentState], previous: dict[str, Any] | None, *, in_query: bool
) -> Decision | None:
    study = to_study(raw)
    blob = raw_json(raw)
    item = match(study, blob, raw_hash(blob), content_hash(study), current)
    prior = to_study(previous) if previous is not None and item.needs_previous else None
    return decide(item, prior, CLASSIFIER.classify(study), in_query=in_query)


BASE = record(STUDY)
NEW_ID = "NCT09999901"

# (situation, fetched record, stored state by id, stored previous record, reached by the queries,
#  expected: None for untouched, else (is_new, snapshot_seq, event kinds, merges))
CASES: list[tuple[str, dict[str, Any], dict[str, CurrentState], dict[str, Any] | None, bool, Any]] = [
    ("a study never seen", BASE, {}, None, True, (True, 1, [EventKind.NEW_STUDY], None)),
    ("the same bytes again", BASE, {STUDY: stored(BASE)}, BASE, True, None),
    (
        "a status change",
        edited(BASE, recruiting),
        {STUDY: stored(BASE)},
        BASE,
        True,
        (False, 3, [EventKind.STATUS], None),
    ),
    (
        "bytes moved, tracked content did not: a snapshot, no event",
        bytes_only(BASE),
        {STUDY: stored(BASE)},
        BASE,
        True,
        (False, 3, [], None),
    ),
    (
        "same bytes, no longer reached by the queries",
        BASE,
        {STUDY: stored(BASE)},
        BASE,
        False,
        (False, None, [EventKind.LEFT_QUERY], None),
    ),
    (
        "same bytes, reached again by the queries",
        BASE,
        {STUDY: stored(BASE, in_query=False)},
        BASE,
        True,
        (False, None, [EventKind.REJOINED_QUERY], None),
    ),
    (
        "a study that had gone is back",
        BASE,
        {STUDY: stored(BASE, gone=True)},
        BASE,
        True,
        (False, None, [EventKind.RESTORED], None),
    ),
    (
        "renumbered: the new id lists the tracked one as an alias",
        renumbered(BASE, STUDY, NEW_ID),
        {STUDY: stored(BASE)},
        BASE,
        True,
        (True, 1, [EventKind.ID_CHANGED], STUDY),
    ),
    (
        "renumbered and edited at once",
        renumbered(edited(BASE, recruiting), STUDY, NEW_ID),
        {STUDY: stored(BASE)},
        BASE,
        True,
        (True, 1, [EventKind.ID_CHANGED, EventKind.STATUS], STUDY),
    ),
    (
        "an alias that was itself merged away is not followed",
        renumbered(BASE, STUDY, NEW_ID),
        {STUDY: stored(BASE, merged_into="NCT09999902")},
        None,
        True,
        (True, 1, [EventKind.NEW_STUDY], None),
    ),
    (
        "a study that moves out of scope says so",
        edited(BASE, off_topic),
        {STUDY: stored(BASE, in_scope=True)},
        BASE,
        True,
        "left_scope",
    ),
]


@pytest.mark.parametrize(
    ("record_", "current", "previous", "in_query", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision(
    record_: dict[str, Any],
    current: dict[str, CurrentState],
    previous: dict[str, Any] | None,
    in_query: bool,
    expected: Any,
) -> None:
    d = decision_for(record_, current, previous, in_query=in_query)
    if expected is None:
        assert d is None
        return
    assert d is not None
    if expected == "left_scope":
        kinds = [c.kind for c in d.changes]
        assert EventKind.LEFT_SCOPE in kinds and d.snapshot_seq == 3 and not d.is_new
        return
    is_new, seq, kinds, merges = expected
    assert (d.is_new, d.snapshot_seq, [c.kind for c in d.changes], d.merges) == (is_new, seq, kinds, merges)


def test_untouched_asks_only_the_hash_the_membership_and_gone() -> None:
    state = stored(BASE)
    rhash = state.raw_hash
    assert untouched(state, rhash, True)
    assert not untouched(None, rhash, True)
    assert not untouched(state, "other", True)
    assert not untouched(state, rhash, False)
    assert not untouched(replace(state, gone=True), rhash, True)


def test_the_stored_version_is_needed_only_when_the_content_moved() -> None:
    current = {STUDY: stored(BASE)}
    for raw, needed in ((bytes_only(BASE), False), (edited(BASE, recruiting), True)):
        study = to_study(raw)
        blob = raw_json(raw)
        assert match(study, blob, raw_hash(blob), content_hash(study), current).needs_previous is needed


def test_a_second_study_is_decided_on_its_own() -> None:
    """Two records of one page do not see each other's state."""
    other = record(OTHER)
    current = {STUDY: stored(BASE)}
    d = decision_for(other, current, None, in_query=True)
    assert d is not None and d.is_new and [c.kind for c in d.changes] == [EventKind.NEW_STUDY]

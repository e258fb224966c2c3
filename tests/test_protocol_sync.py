"""Protocol amendments through real polls (local API over HTTP, SQLite and PostgreSQL), and
the upgrade path: a database from before these fields were tracked gains them as a
baseline at its next poll, without a single event for them."""

from __future__ import annotations

import copy
from typing import Any

from sqlalchemy import update

from monitor.app.runs import summary_text
from monitor.config import SubscriberSettings
from monitor.core.domain import EventKind
from monitor.core.filters import StudyFilter
from monitor.publishing import report as reporting
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store import db as dbmod
from monitor.store.db import Database, open_database
from monitor.store.models import StudyRow
from tests.conftest import registry_records
from tests.harness import FakeClock, edit, events, poll

CF = "NCT00763412"
WITH_RESULTS = "NCT02552212"
NEW_KINDS = {
    EventKind.ELIGIBILITY,
    EventKind.OUTCOME_ADDED,
    EventKind.OUTCOME_REMOVED,
    EventKind.OUTCOME_CHANGE,
    EventKind.DESIGN,
    EventKind.PUBLICATION_ADDED,
    EventKind.PUBLICATION_REMOVED,
}


def amend(ps: dict[str, Any]) -> None:
    """A typical protocol amendment: wider ages, a new criterion, a shorter primary endpoint."""
    elig = ps["eligibilityModule"]
    elig["maximumAge"] = "30 Years"
    elig["eligibilityCriteria"] = elig["eligibilityCriteria"].replace(
        "\n\nExclusion Criteria:",
        "\n* Stable insulin-free glucose control for 3 months\n\nExclusion Criteria:",
    )
    ps["outcomesModule"]["primaryOutcomes"][0]["timeFrame"] = "1 year"


def publish(ps: dict[str, Any]) -> None:
    ps["referencesModule"]["references"].append(
        {
            "pmid": "39000001",
            "type": "RESULT",
            "citation": "Doe J, et al. Final results. Lancet. 2026;407:1-9.",
        }
    )


def test_amendments_and_a_results_paper_are_polled_as_ranked_events(
    database: Database, api: LocalApiServer, registry: Registry, settings_for
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    poll(database, settings, clock)
    edit(registry, CF, amend)
    edit(registry, WITH_RESULTS, publish)

    def reformat(ps: dict[str, Any]) -> None:  # the registry re-renders a record: nothing to report
        elig = ps["eligibilityModule"]
        elig["eligibilityCriteria"] = (
            elig["eligibilityCriteria"].replace("\n* ", "\n- ").replace("\n\n", "\n")
        )

    edit(registry, "NCT04207047", reformat)
    clock.advance(days=1)
    summary = poll(database, settings, clock)
    assert summary.outcome == "ok" and summary.baselined == 0
    got = sorted((e.nct_id, e.kind, e.field, e.importance) for e in events(database, summary.run_id))
    assert got == [
        (CF, "eligibility_change", "criteria", 2),
        (CF, "eligibility_change", "maximum_age", 2),
        (CF, "outcome_change", "outcomes", 2),
        (WITH_RESULTS, "publication_added", "references", 3),
    ]
    crit = next(e for e in events(database, summary.run_id) if e.field == "criteria")
    assert crit.after == [
        {"section": "Inclusion", "text": "Stable insulin-free glucose control for 3 months"}
    ]
    # a report of just the period's eligibility changes
    with database.session() as s:
        rep = reporting.gather(
            s,
            StudyFilter(include_out_of_scope=True),
            now=clock(),
            record=False,
            kinds=("eligibility_change",),
        )
    assert [(c.key, [b.nct_id for b in c.blocks]) for c in rep.changes] == [("protocol", [CF])]
    assert [c.kind for c in rep.changes[0].blocks[0].changes] == ["eligibility_change"] * 2
    # one more poll of the same registry: nothing again
    clock.advance(days=1)
    assert poll(database, settings, clock, full=True).events == 0


def _without(raw: dict[str, Any], modules: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for m in modules:
        out["protocolSection"].pop(m, None)
    return out


OLD_LIST = ("outcomesModule", "referencesModule", "ipdSharingStatementModule", "eligibilityModule")


def test_a_database_from_before_gains_the_new_fields_without_events(
    db_url: str, registry: Registry, settings_for
) -> None:
    # Polled by the earlier ctmonitor: records fetched without the new parts (one study
    # with its eligibility, as a config that asked for it would have fetched it).
    records = registry_records()
    registry.replace(
        [
            _without(
                r, OLD_LIST[:3] if r["protocolSection"]["identificationModule"]["nctId"] == CF else OLD_LIST
            )
            for r in records
        ],
        "2026-11-02T09:00:05",
    )
    clock = FakeClock()
    with LocalApiServer(registry) as api:
        settings = settings_for(api.base_url)
        database = open_database(db_url, auto_upgrade=True)
        try:
            poll(database, settings, clock)
            with database.session() as s:  # labelled by the earlier normalizer
                s.execute(update(StudyRow).values(classified_with="vocabulary-before-0007"))
        finally:
            database.dispose()
        engine = dbmod.make_engine(db_url)
        dbmod.downgrade(engine, "0006")  # the schema the earlier ctmonitor had
        engine.dispose()

        # Upgraded; the registry now sends whole records (their dates did not move), and
        # CF's sponsor amended a criterion since the last poll.
        registry.replace(copy.deepcopy(records), "2026-11-03T09:00:05")
        edit(registry, CF, amend, timestamp="2026-11-03T09:00:05")
        database = open_database(db_url, auto_upgrade=True)
        try:
            clock.advance(days=1)
            summary = poll(database, settings, clock)
            assert summary.outcome == "ok"
            assert summary.mode == "full"  # every study fetched again, once
            new = [e for e in events(database, summary.run_id) if e.kind in NEW_KINDS]
            # CF's stored record held its eligibility: that change is real and reported;
            # its outcomes were never fetched before: a baseline, not "outcome changed".
            assert sorted((e.nct_id, e.field) for e in new) == [(CF, "criteria"), (CF, "maximum_age")]
            assert summary.baselined == len(records)
            assert "gained their eligibility, outcomes and publications as a baseline" in summary_text(
                summary
            )

            # From now on these parts are tracked like any other.
            edit(registry, WITH_RESULTS, publish, posted="2026-11-04", timestamp="2026-11-04T09:00:05")
            clock.advance(days=1)
            after = poll(database, settings, clock)
            assert after.mode == "incremental" and after.baselined == 0
            assert [(e.nct_id, e.kind) for e in events(database, after.run_id)] == [
                (WITH_RESULTS, "publication_added")
            ]
        finally:
            database.dispose()


def test_a_subscriber_s_kinds_are_checked_and_the_valid_ones_named() -> None:
    import pytest

    with pytest.raises(
        ValueError, match=r"unknown value 'eligibility'; valid: new_study, .*eligibility_change"
    ):
        SubscriberSettings(name="x", email="x@example.org", kinds=["eligibility"])
    assert SubscriberSettings(name="x", email="x@example.org", kinds=["Outcome_Added"]).kinds == [
        "outcome_added"
    ]

"""Upgrading the normalizer repairs what is stored, and tells nobody of it.

Scenario: ctmonitor ran with the old text cleaner (anything between `<` and `>` was a
tag), so stored titles and sponsors lost their comparisons. After the upgrade the next
poll re-derives every stored study from the raw records we kept: the words are the
registry's again, and no change event is made for it. A real change made afterwards is
recorded once, in the registry's words.

The one event a repair can make is a scope event, when the repaired words move a study
into or out of the landscape (as a vocabulary edit does): subscribers must learn of a
study they were never shown.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from monitor.core import normalize
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.models import StudyRow
from tests.harness import FakeClock, edit, events, poll

_OLD_TAG = re.compile(r"<[^>]{1,200}>")
_OLD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")


def _old_clean(text: str) -> str | None:
    """The cleaner of normalizer version 1, as it was."""
    if "<" in text:
        text = _OLD_TAG.sub(" ", text)
    if "&" in text:
        text = html.unescape(text)
    if "\\" in text:
        text = _OLD_ESCAPE.sub(r"\1", text)
    return " ".join(text.split()) or None


TITLE = "CD19 CAR T Cells in Adults \\<65 Years With Refractory Lupus Nephritis (eGFR \\>30 mL/min)"


def test_an_upgrade_repairs_stored_text_without_events(
    database: Database, api: LocalApiServer, registry: Registry, settings_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(api.base_url)
    clock = FakeClock()
    edit(registry, "NCT05147467", lambda ps: ps["identificationModule"].update(briefTitle=TITLE))

    with monkeypatch.context() as old:
        old.setattr(normalize, "clean_cached", _old_clean)
        old.setattr("monitor.core.classify.NORMALIZER_VERSION", "1")
        first = poll(database, settings, clock)
    assert first.outcome == "ok"
    with database.session() as s:
        damaged = s.get(StudyRow, "NCT05147467")
        assert damaged.brief_title == "CD19 CAR T Cells in Adults \\ 30 mL/min)"  # what v1 stored
        old_version = damaged.classified_with

    clock.advance(days=1)
    second = poll(database, settings, clock)
    assert second.outcome in ("ok", "unchanged")
    # No field changed: the repair is not news. The damaged title had lost "Lupus
    # Nephritis", so the study was out of scope; now it is in, and that, which users do see
    # change, is announced once as a relabel, not as an edit of the study.
    repair = [(e.nct_id, e.kind, e.origin) for e in events(database, second.run_id)]
    assert repair == [("NCT05147467", "entered_scope", "reclassify")]
    with database.session() as s:
        repaired = s.get(StudyRow, "NCT05147467")
        assert repaired.brief_title == (
            "CD19 CAR T Cells in Adults <65 Years With Refractory Lupus Nephritis (eGFR >30 mL/min)"
        )
        assert repaired.classified_with != old_version
        assert all(
            v != old_version for v in s.scalars(select(StudyRow.classified_with))
        )  # every study re-derived

    # A real change afterwards: one event, in the registry's words.
    clock.advance(days=1)
    reason = "Paused for patients aged \\<18 years; enrolment of adults \\>=18 years continues"
    edit(
        registry,
        "NCT05147467",
        lambda ps: ps["statusModule"].update(overallStatus="SUSPENDED", whyStopped=reason),
        posted="2026-11-04",
        timestamp="2026-11-04T09:00:04",
    )
    third = poll(database, settings, clock)
    changes = [(e.kind, e.after) for e in events(database, third.run_id)]
    assert changes == [
        ("status_change", {"status": "SUSPENDED", "last_known": None}),
        (
            "why_stopped_change",
            "Paused for patients aged <18 years; enrolment of adults >=18 years continues",
        ),
    ]

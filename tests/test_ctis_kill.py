"""A real `ctmonitor poll --registry ctis` process killed mid-poll (issue 35's fault matrix):
what it stored stays whole, and the next poll records every trial once."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor import store
from monitor.app.application import Application
from monitor.ctis_config import CtisSettings
from monitor.registry.ctis import CtisClient
from monitor.registry.ctisstand import CtisStandIn
from monitor.registry.localserver import Fault
from monitor.store.db import Database
from monitor.store.models import PollRun, StudyRow
from tests.conftest import DATA, make_settings
from tests.harness import kill_when, once_unlocked


def test_a_ctis_poll_killed_mid_run_loses_nothing_and_duplicates_nothing(
    database: Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((DATA / "registries").glob("ctis-retrieve-*.json"))
    ]
    with CtisStandIn(records) as eu:
        monkeypatch.setenv("CTMONITOR_DATABASE_URL", db_url)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[ctis]\nbase_url = "{eu.base_url}"\npage_size = 1\nmin_interval_seconds = 0\n'
            'searches = ["CAR T", "autoleucel", "T-cell engager"]\n\n[[queries]]\nname = "x"\nterm = "ALL"\n'
        )
        eu.add_fault(Fault(path="/ctis-public-api/retrieve/", delay=60, skip=2))  # the third record hangs

        def stored() -> int:
            with database.session() as s:
                return s.scalar(select(func.count()).select_from(StudyRow)) or 0

        kill_when(config, lambda: stored() >= 2, "poll", "--registry", "ctis")
        assert stored() == 2
        eu.faults.clear()
        ctis = CtisSettings(
            base_url=eu.base_url, min_interval_seconds=0, searches=["CAR T", "autoleucel", "T-cell engager"]
        )
        app = Application(
            make_settings("http://127.0.0.1:9").model_copy(update={"ctis": ctis}),
            database=database,
            now=lambda: datetime(2026, 11, 2, 12, 0),
            ctis_client_factory=lambda: CtisClient(ctis),
        )
        summary = once_unlocked(lambda: app.poll(registry="ctis").summary)
    assert summary.outcome == "ok", summary.error
    with database.session() as s:
        assert list(s.scalars(select(PollRun.outcome).order_by(PollRun.id))) == ["crashed", "ok"]
        kinds = Counter((e.nct_id, e.kind) for e in store.list_events(s))
    assert all(n == 1 for n in kinds.values())
    assert sum(1 for (_, k) in kinds if k == "new_study") == stored() == 4

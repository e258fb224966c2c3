"""The landscape answered by the database (store.landscape over the index that every write
of a study keeps) is the landscape the rows answer (core.landscape.view): the same rows in
the same order, the same totals, counts, charts and cursors, for filters, searches and
sorts of every kind, on SQLite (FTS5) and PostgreSQL (pg_trgm); and a change a poll
writes is in the index when its transaction commits."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from monitor import store
from monitor.app import Application
from monitor.app.overview import summary_dict
from monitor.core.landscape import SORT_KEYS, LandscapeQuery, antigens, view
from monitor.core.trials import fold
from tests.harness import World, edit


def _rows(world: World) -> list[dict[str, Any]]:
    with world.database.session() as s:
        found = store.study_summaries(s, in_scope=None, with_classification=False)
    out = []
    for r in found:
        d = summary_dict(r, fields=r._fields)
        d["search"] = r.search_text or ""
        out.append(d)
    return out


def _expected(rows: list[dict[str, Any]], q: LandscapeQuery, *, counts: bool = True) -> Any:
    return view(fold([r for r in rows if q.include_out_of_scope or r["in_scope"]]), q, counts=counts)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["nct_id"] for r in rows]


# searches a reader types: a word, part of one, a code however it is written, a short one,
# two words, an accent, a word found nowhere
WORDS = [
    "lupus",
    "cd19",
    "kyv",
    "KYV-101",
    "caba 201",
    "caba201",
    "car-t",
    "ab",
    "t",
    "NCT0",
    "myasthenia gravis",
]
WORDS += ["São", "zzzz-not-there", "bcma", "university hospital", "-", "c"]


def _queries(rows: list[dict[str, Any]], n: int) -> list[dict[str, list[str]]]:
    """Queries drawn (seeded) from the labels the rows carry, and a few they do not."""
    rng = random.Random(37)
    pool = {
        "modality": sorted({r["modality"] for r in rows if r["modality"]}),
        "target": [*sorted(antigens(t for r in rows for t in r["targets"])), "bcma"],
        "indication": sorted({t for r in rows for t in r["indications"]}),
        "status": ["RECRUITING", "completed", "active", "SUSPENDED"],
        "phase": sorted({t for r in rows for t in r["phases"]}),
        "country": [*sorted({t for r in rows for t in r["countries"]})[:20], "germany"],
        "source": ["autologous", "allogeneic", "in vivo"],
        "product": [*sorted({t for r in rows for t in r["products"]})[:30], "kyv101", "CABA 201"],
        "sponsor": ["univers", "Kyverna", "hospital", "ø", "Novartis"],
        "registry": ["ctgov", "ctis"],
    }
    out = []
    for _ in range(n):
        params: dict[str, list[str]] = {}
        for kind in rng.sample(sorted(pool), rng.randint(0, 3)):
            params[kind] = rng.sample(pool[kind], min(len(pool[kind]), rng.randint(1, 2)))
        if rng.random() < 0.5:
            params["q"] = [rng.choice(WORDS)]
        if rng.random() < 0.3:
            params["all"] = ["1"]
        if rng.random() < 0.15:
            params["review"] = ["1"]
        params["sort"] = [rng.choice(sorted(SORT_KEYS))]
        params["order"] = [rng.choice(["asc", "desc"])]
        params["per_page"] = [rng.choice(["25", "50"])]
        params["page"] = [rng.choice(["1", "1", "2"])]
        out.append(params)
    return out


def test_the_database_answers_every_view_as_the_rows_do(world: World) -> None:
    app = Application(world.settings, database=world.database, now=world.clock)
    rows = _rows(world)
    assert len(rows) > 100
    checked = 0
    for params in _queries(rows, 120):
        q = app.landscape(LandscapeQuery.from_params(params), counts=False, marks=False).query
        got = app.landscape(q, complete=True)
        want = _expected(rows, q)
        where = f"for {params}"
        assert got.total == want.total, where
        assert _ids(got.rows) == _ids(want.rows), where
        assert _ids(got.matching) == _ids(want.matching), where
        assert got.next_cursor == want.next_cursor, where
        assert (got.by_modality, got.by_indication, got.picture) == (
            want.by_modality,
            want.by_indication,
            want.picture,
        ), where
        assert (got.by_registry, got.on_several) == (want.by_registry, want.on_several), where
        if want.next_cursor:  # the API's next page, after the cursor
            after = dataclasses.replace(q, cursor=want.next_cursor)
            got_next = app.landscape(after, counts=False, marks=False)
            assert _ids(got_next.rows) == _ids(_expected(rows, after, counts=False).rows), where
        checked += bool(want.total)
    assert checked > 60  # most views hold studies: the comparison is not of empty pages


def test_a_polled_change_is_in_the_landscape_when_its_poll_commits(world: World) -> None:
    app = Application(world.settings, database=world.database, now=world.clock)
    suspended = LandscapeQuery.from_params({"status": ["SUSPENDED"], "all": ["1"]})
    before = {r["nct_id"] for r in app.landscape(suspended, complete=True).matching}
    nct = next(r["nct_id"] for r in _rows(world) if r["status"] == "RECRUITING")
    edit(world.registry, nct, lambda ps: ps["statusModule"].update(overallStatus="SUSPENDED"))
    world.poll()
    after = app.landscape(suspended, complete=True)
    assert {r["nct_id"] for r in after.matching} == before | {nct}
    # the counts moved with it: a cached count never outlives the write it counts
    assert after.picture is not None
    assert dict(after.picture.by_status)["SUSPENDED"] == len(before) + 1
    searched = app.landscape(LandscapeQuery.from_params({"q": [nct.lower()], "all": ["1"]}))
    assert _ids(searched.rows) == [nct]


def test_a_rolled_back_write_leaves_the_index_as_it_was(world: World) -> None:
    with world.database.session() as s:
        version = store.index_version(s)
    with pytest.raises(RuntimeError), world.database.session() as s:
        nct = _rows(world)[0]["nct_id"]
        store.mark_gone(s, nct)
        raise RuntimeError("the run dies before it commits")
    with world.database.session() as s:
        assert store.index_version(s) == version
    app = Application(world.settings, database=world.database, now=world.clock)
    assert nct in {
        r["nct_id"] for r in app.landscape(LandscapeQuery(include_out_of_scope=True), complete=True).matching
    }


def test_db_check_finds_a_study_the_index_lost_and_reclassify_mends_it(world: World) -> None:
    from sqlalchemy import delete

    from monitor.store.index_tables import StudyKey

    with world.database.session() as s:
        assert store.consistency_problems(s) == []
        nct = _rows(world)[0]["nct_id"]
        s.execute(delete(StudyKey).where(StudyKey.nct_id == nct))
    with world.database.session() as s:
        assert store.consistency_problems(s) == [
            "the landscape's index: 1 studies without an entry, 0 entries behind their study, "
            "0 entries of studies not stored (ctmonitor reclassify --all rewrites it)"
        ]
    app = Application(world.settings, database=world.database, now=world.clock)
    app.reclassify(everything=True)
    with world.database.session() as s:
        assert store.consistency_problems(s) == []

"""The landscape answered by the database (store.landscape over the index that every write
of a study keeps) is the landscape the rows answer (core.landscape.view): the same rows in
the same order, the same totals, counts, charts and cursors, for filters, searches and
sorts of every kind, on SQLite (FTS5) and PostgreSQL (pg_trgm); and a change a poll
writes is in the index when its transaction commits."""

from __future__ import annotations

from typing import Any

import pytest

from monitor import store
from monitor.app import Application
from monitor.core.landscape import LandscapeQuery
from tests.harness import World, edit, landscape_rows, views_agree


def _rows(world: World) -> list[dict[str, Any]]:
    return landscape_rows(world.database)


def test_the_database_answers_every_view_as_the_rows_do(world: World) -> None:
    app = Application(world.settings, database=world.database, now=world.clock)
    assert len(_rows(world)) > 100
    assert views_agree(app, 120) > 60  # most views hold studies: the comparison is not of empty pages


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
    assert [r["nct_id"] for r in searched.rows] == [nct]


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


def test_the_server_counts_the_landing_pages_after_a_poll_before_a_reader_asks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ctmonitor serve` keeps the landscape's, the products page's and the feed's counts
    ready: a poll moves them, the server counts them again by itself, and the reader who
    comes next is answered from what it counted (the same answer, never a stale one)."""
    import threading
    import time

    from starlette.testclient import TestClient

    from monitor.app import browse
    from monitor.publishing import feed as feeds
    from monitor.web import create_app

    counted: list[str] = []
    lock = threading.Lock()

    def spy(name: str, real: Any) -> Any:
        def counting(*args: Any, **kw: Any) -> Any:
            with lock:
                counted.append(name)
            return real(*args, **kw)

        return counting

    monkeypatch.setattr(store, "landscape_tally", spy("landscape", store.landscape_tally))
    monkeypatch.setattr(feeds, "gather", spy("feed", feeds.gather))
    browse._CACHE.clear()
    browse._HEAVY.clear()

    def settle() -> None:
        """The server's own thread has counted the landscape and the feed as the database
        is now (each is cached under the versions it was counted at: app.browse); no
        reader has asked, so only that thread can have counted them."""
        with world.database.session() as s:
            index, changes = store.index_version(s), store.changes_version(s)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            keys = list(browse._CACHE)  # (database, version, what, ...): app.browse.per_version
            charted = any(k[1:3] == (index, "counts") and k[-1] is True for k in keys)  # with charts
            if charted and any(k[1:3] == (changes, "feed") for k in keys):
                return
            time.sleep(0.02)
        raise AssertionError(f"not counted ahead of readers: {counted}")

    app = Application(world.settings, database=world.database, now=world.clock)
    with TestClient(create_app(app, warm_every=0.05)) as client:
        settle()
        with lock:
            assert counted.count("landscape") == counted.count("feed") == 1
            before = len(counted)
        for path in ("/", "/feeds/changes.xml", "/products"):
            assert client.get(path).status_code == 200
        with lock:
            assert len(counted) == before  # every landing page answered from the counts

        nct = next(r["nct_id"] for r in _rows(world) if r["status"] == "RECRUITING")
        edit(world.registry, nct, lambda ps: ps["statusModule"].update(overallStatus="SUSPENDED"))
        world.poll()
        settle()
        with lock:
            before = len(counted)
        page = client.get("/?status=SUSPENDED&all=1").text
        assert nct in page
        assert client.get("/").status_code == 200 and client.get("/feeds/changes.xml").status_code == 200
        with lock:
            assert counted[before:] == ["landscape"]  # only the view nobody had asked for yet


def test_a_poll_that_writes_many_studies_refreshes_the_planner_statistics(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL plans a count over a search of 100,000 studies in minutes without its
    statistics (a server whose autovacuum is off, or has not come round yet): a poll that
    writes many studies gathers them itself before readers count."""
    from sqlalchemy import text

    from monitor.tracking import pages
    from tests.harness import make_world

    monkeypatch.setattr(pages, "ANALYZE_AFTER", 100)  # the 157 studies of the domain records
    world = make_world(database)
    next(world)
    try:
        with database.session() as s:
            if s.get_bind().dialect.name != "postgresql":
                assert store.refresh_statistics(s) is False  # SQLite plans these without
                return
            analyzed = s.scalars(
                text(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                    "AND last_analyze IS NOT NULL"
                )
            ).all()
        assert {"studies", "study_keys", "study_terms", "events"} <= set(analyzed)
    finally:
        next(world, None)


def test_the_review_marks_read_alone_are_those_of_the_stored_classification(database: Any) -> None:
    """A download marks every row with its review reasons and curated labels, picked out of
    the stored classification by the database (on either kind): the same lists as reading
    the classification whole."""
    from sqlalchemy import select, update

    from monitor.store.models import StudyRow
    from tests.harness import make_world

    world = make_world(database)
    next(world)
    try:
        with database.session() as s:
            ids = sorted(s.scalars(select(StudyRow.nct_id)))
            first = store.classifications(s, ids[:1])[ids[0]]
            curated = {**first, "curated": ["product", "modality"]}
            s.execute(update(StudyRow).where(StudyRow.nct_id == ids[0]).values(classification=curated))
        with database.session() as s:
            whole = store.classifications(s, ids)
            marks = store.review_marks(s, ids)
        assert marks == {n: (c.get("review", []), c.get("curated", [])) for n, c in whole.items()}
        assert marks[ids[0]][1] == ["product", "modality"] and any(r for r, _ in marks.values())
    finally:
        next(world, None)


def test_a_searched_and_filtered_view_is_driven_by_one_list_on_sqlite(database: Any) -> None:
    """On SQLite a search reads the FTS5 index (a list of row numbers) and each filter a list
    of study ids; the study ids' index also holds the row number, and a query free to use
    both lists on it walked every pair of them (89,000 × 60,000 over 100,000 studies: the
    page did not come back in minutes). No query of such a view may plan that walk."""
    from sqlalchemy import event

    from monitor.app import Application
    from monitor.core.landscape import LandscapeQuery
    from tests.harness import make_world

    world = make_world(database)
    w = next(world)
    try:
        if database.engine.dialect.name != "sqlite":
            return
        app = Application(w.settings, database=database, now=w.clock)
        asked: list[tuple[str, Any]] = []

        def note(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            if "study_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
                asked.append((statement, params))

        event.listen(database.engine, "before_cursor_execute", note)
        try:
            view = app.landscape(
                LandscapeQuery.from_params(
                    {
                        "modality": ["CAR-T"],
                        "indication": ["SLE", "lupus nephritis"],
                        "q": ["cd19"],
                        "sort": ["sponsor"],
                    }
                )
            )
        finally:
            event.remove(database.engine, "before_cursor_execute", note)
        assert view.rows and asked
        with database.engine.connect() as conn:
            for statement, params in asked:
                plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)]
                assert not any("nct_id=? AND rowid=?" in step for step in plan), (statement, plan)
    finally:
        next(world, None)

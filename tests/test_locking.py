"""Two writers on one database: the second is turned away at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from monitor.registry.localserver import LocalApiServer
from monitor.store.db import Database
from monitor.store.locking import LockBusy, exclusive
from tests.harness import poll


def test_second_lock_holder_is_refused_and_can_lock_after_release(database: Database) -> None:
    with exclusive(database.engine):
        other = Database(database.url)
        try:
            with pytest.raises(LockBusy), exclusive(other.engine):
                pass
        finally:
            other.dispose()
    with exclusive(database.engine):
        pass


def test_a_poll_while_another_holds_the_lock_says_so_and_writes_nothing(
    database: Database, api: LocalApiServer, settings_for
) -> None:
    settings = settings_for(api.base_url)
    with exclusive(database.engine), pytest.raises(LockBusy):
        poll(database, settings)
    assert api.log == []


def test_lock_dies_with_its_process(database: Database) -> None:
    """A holder killed without cleanup does not leave a stale lock behind."""
    code = textwrap.dedent(f"""
        import os
        from monitor.store.db import Database
        from monitor.store.locking import exclusive
        db = Database({database.url!r})
        with exclusive(db.engine):
            print("locked", flush=True)
            os._exit(9)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "locked" in proc.stdout and proc.returncode == 9
    with exclusive(database.engine):
        pass


def test_two_deployments_in_two_postgresql_schemas_do_not_block_each_other() -> None:
    from tests.conftest import pg_url_for_schema

    first, second = pg_url_for_schema(), pg_url_for_schema()
    a, b = Database(next(first)), Database(next(second))
    try:
        with exclusive(a.engine), exclusive(b.engine):  # each its own writer
            same = Database(a.url)
            try:
                with pytest.raises(LockBusy), exclusive(same.engine):
                    pass  # ... but one schema still has one writer
            finally:
                same.dispose()
    finally:
        a.dispose()
        b.dispose()
        for gen in (first, second):
            next(gen, None)


_OPEN = textwrap.dedent(
    """
    import sys
    from monitor.store.db import open_database
    db = open_database(sys.argv[1], auto_upgrade=True)
    with db.session() as s:
        pass
    db.dispose()
    print("ok")
    """
)


@pytest.mark.parametrize("attempt", range(2))
def test_processes_opening_a_new_database_together_all_work(db_url: str, attempt: int) -> None:
    """`serve`, `run` and `poll` started at the same moment on a database nobody has made
    yet: one makes the schema, the others wait for it, and every one opens it; none fails
    with "database is locked" or turns away because another holds the writer lock."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN, db_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=180) for p in procs]
    for (out, err), p in zip(results, procs, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err[-600:]

"""`ctmonitor db check` and the schedule check of `ctmonitor check-config`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from monitor.cli import main
from monitor.registry.localserver import LocalApiServer
from monitor.store.db import Database
from tests.harness import poll


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_sound_database_passes_and_a_broken_invariant_is_named(
    config: Path, database: Database, api: LocalApiServer, settings_for, capsys
) -> None:  # type: ignore[no-untyped-def]
    poll(database, settings_for(api.base_url))
    code, out, _ = run(capsys, "--config", str(config), "db", "check")
    assert code == 0 and ": OK (" in out and "ctmonitor's invariants" in out
    engine_says = "integrity_check" if database.dialect == "sqlite" else "every table read through"
    assert engine_says in out
    with database.engine.begin() as conn:  # a study that claims a snapshot it does not have
        conn.execute(text("UPDATE studies SET snapshot_count = 3 WHERE nct_id = 'NCT03475563'"))
        conn.execute(text("DELETE FROM studies WHERE nct_id = 'NCT06171568'"))
    code, out, _ = run(capsys, "--config", str(config), "db", "check")
    assert code == 1
    assert "NCT03475563: snapshots 1..1 (1 stored), the study says 3" in out
    assert "NCT06171568: 1 snapshots of a study that is not stored" in out
    assert "1 events of studies that are not stored" in out


def test_a_damaged_sqlite_file_is_reported_in_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "ctmonitor.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\npath = "{db}"\n')
    assert run(capsys, "--config", str(cfg), "db", "upgrade")[0] == 0
    data = bytearray(db.read_bytes())
    data[4096 * 2 : 4096 * 2 + 64] = b"\xff" * 64  # scribble over a b-tree page
    db.write_bytes(bytes(data))
    code, out, err = run(capsys, "--config", str(cfg), "db", "check")
    assert code == 1 and "Traceback" not in err
    assert "problem" in out or "cannot check the database" in err


def test_check_config_shows_next_runs_and_warns_of_a_schedule_that_never_fires(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "config.toml"
    cfg.write_text('[schedule]\ntimezone = "UTC"\npoll = "30 10 * * mon-fri"\nfull = "0 0 31 2 *"\n')
    code, out, err = run(capsys, "--config", str(cfg), "check-config")
    assert code == 0
    poll_line = next(line for line in out.splitlines() if line.strip().startswith("poll "))
    assert poll_line.count("10:30") == 3  # the next three run times
    assert "full     0 0 31 2 *" in out and "next: never" in out
    assert "schedule.full = '0 0 31 2 *' never fires, so the full job is off" in err
    assert "\n" not in err.strip()  # one line

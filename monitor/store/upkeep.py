"""PostgreSQL's tables kept fit to read over months, where the server's autovacuum is
switched off.

Every write of a row on PostgreSQL leaves the old version behind until VACUUM clears it,
and the planner chooses by the statistics ANALYZE gathers. Autovacuum does both by
itself when a table has changed enough; a server (or a table) with it switched off never
does, and after a year of weekly polls the landscape's index carried a dead row for
every two live ones: its filtered and searched page took 280–420 ms instead of 95, the
filtered change stream 340–470 instead of 80 (bench/web.py, 100,000 studies). After each
poll ctmonitor does what autovacuum would have done, by the thresholds autovacuum reads
(`autovacuum_vacuum_threshold` + `autovacuum_vacuum_scale_factor` × live rows, and the
same for ANALYZE and for inserted rows: a table's own storage parameters where it has
them, as the landscape's index tables do from migration 0019, else the server's), for
the tables of its own schema whose autovacuum is off, and nothing where it is on: there
the server's schedule and its throttling stand. SQLite needs none of this (it reuses
freed pages; its planner reads the indexes' own statistics).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableState:
    """One table's counters (pg_stat_user_tables) and whether autovacuum looks after it."""

    name: str
    live: int
    dead: int
    modified: int  # rows changed since the last ANALYZE
    inserted: int | None  # rows inserted since the last VACUUM (PostgreSQL 13 and later)
    autovacuum: bool
    options: tuple[str, ...] = ()  # its storage parameters ("autovacuum_vacuum_scale_factor=0.01")


@dataclass(frozen=True)
class Thresholds:
    """The server's autovacuum thresholds (its defaults here)."""

    vacuum: int = 50
    vacuum_scale: float = 0.2
    analyze: int = 50
    analyze_scale: float = 0.1
    insert: int = 1000
    insert_scale: float = 0.2

    def of(self, given: Mapping[str, str]) -> Thresholds:
        """These thresholds where `given` sets them, by autovacuum's names: the server's
        settings (pg_settings) over the defaults, a table's storage parameters (migration
        0019 sets some for the landscape's index tables) over the server's."""
        return Thresholds(
            vacuum=int(given.get("autovacuum_vacuum_threshold", self.vacuum)),
            vacuum_scale=float(given.get("autovacuum_vacuum_scale_factor", self.vacuum_scale)),
            analyze=int(given.get("autovacuum_analyze_threshold", self.analyze)),
            analyze_scale=float(given.get("autovacuum_analyze_scale_factor", self.analyze_scale)),
            insert=int(given.get("autovacuum_vacuum_insert_threshold", self.insert)),
            insert_scale=float(given.get("autovacuum_vacuum_insert_scale_factor", self.insert_scale)),
        )


def due(tables: Sequence[TableState], server: Thresholds) -> list[tuple[str, str]]:
    """What autovacuum would do now to the tables it does not look after: (table, "vacuum")
    (a VACUUM with ANALYZE) or (table, "analyze"), in the tables' order, each by its own
    thresholds where it has them, else the server's."""
    out: list[tuple[str, str]] = []
    for t in tables:
        if t.autovacuum:
            continue
        limits = server.of(_parameters(t.options))
        dead = t.dead > limits.vacuum + limits.vacuum_scale * t.live
        filled = (
            t.inserted is not None
            and limits.insert >= 0  # -1: not for inserts
            and t.inserted > limits.insert + limits.insert_scale * t.live
        )
        if dead or filled:
            out.append((t.name, "vacuum"))
        elif t.modified > limits.analyze + limits.analyze_scale * t.live:
            out.append((t.name, "analyze"))
    return out


def _parameters(options: Sequence[str] | None) -> dict[str, str]:
    """A table's storage parameters (pg_class.reloptions, "name=value") by name."""
    return dict(o.partition("=")[::2] for o in options or ())


def _switched_off(options: Sequence[str] | None) -> bool:
    value = _parameters(options).get("autovacuum_enabled", "true")
    return value.strip().lower() in ("false", "off", "no", "0")


def _read(conn: Connection) -> tuple[list[TableState], Thresholds]:
    settings: dict[str, str] = {
        name: value
        for name, value in conn.execute(
            text(
                "SELECT name, setting FROM pg_settings WHERE name IN ('autovacuum', "
                "'autovacuum_vacuum_threshold', 'autovacuum_vacuum_scale_factor', "
                "'autovacuum_analyze_threshold', 'autovacuum_analyze_scale_factor', "
                "'autovacuum_vacuum_insert_threshold', 'autovacuum_vacuum_insert_scale_factor', "
                "'server_version_num')"
            )
        )
    }
    on = settings.get("autovacuum", "on") == "on"
    limits = Thresholds().of(settings)  # a setting and a storage parameter share their name
    inserted = "s.n_ins_since_vacuum" if int(settings.get("server_version_num", 0)) >= 130000 else "NULL"
    rows = conn.execute(
        text(
            f"SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, {inserted}, "
            "c.reloptions FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.schemaname = current_schema() ORDER BY s.relname"
        )
    )
    tables = [
        TableState(
            name=name,
            live=int(live or 0),
            dead=int(dead or 0),
            modified=int(modified or 0),
            inserted=None if ins is None else int(ins),
            autovacuum=on and not _switched_off(options),
            options=tuple(options or ()),
        )
        for name, live, dead, modified, ins, options in rows
    ]
    return tables, limits


def upkeep(engine: Engine) -> list[tuple[str, str]]:
    """Vacuum and analyze, as autovacuum would, the tables of the database's schema that it
    does not look after (PostgreSQL; nothing on SQLite). Read and run on a connection of
    its own outside any transaction (VACUUM cannot run inside one, and an open one would
    keep the very rows it is to clear), skipping a table another session holds rather than
    waiting for it. Returns what was done; a failure is logged and leaves the rest undone:
    what called it has already committed its work."""
    if engine.dialect.name != "postgresql":
        return []
    todo: list[tuple[str, str]] = []
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            todo = due(*_read(conn))
            for name, what in todo:
                quoted = conn.dialect.identifier_preparer.quote(name)
                verb = "VACUUM (ANALYZE, SKIP_LOCKED)" if what == "vacuum" else "ANALYZE (SKIP_LOCKED)"
                conn.execute(text(f"{verb} {quoted}"))
    except SQLAlchemyError as exc:
        log.warning("could not tidy the database's tables: %s", exc)
        return []
    if todo:
        log.info("tidied the database: %s", ", ".join(f"{what} {name}" for name, what in todo))
    return todo

"""`ctmonitor db ...`: the schema (Alembic migrations) and the database's own check."""

from __future__ import annotations

import click

from monitor import store
from monitor.cli.base import (
    EXIT_FAILED,
    Context,
    cli,
    pass_ctx,
)
from monitor.store import Session
from monitor.store import db as dbmod

# -- db ------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(c: Context) -> None:
    """Apply every pending migration.

    \b
    Example:
      ctmonitor db upgrade
    """
    with c.unmigrated_engine("migration failed") as engine:
        before = dbmod.current_revision(engine)
        dbmod.upgrade(engine)
        after = dbmod.current_revision(engine)
    click.echo(
        f"database at {after}" + (f" (was {before or 'empty'})" if before != after else " (already current)")
    )


@db.command("check")
@pass_ctx
def db_check(c: Context) -> None:
    """Check the database: the engine's own integrity check, then ctmonitor's invariants.

    SQLite runs PRAGMA integrity_check and foreign_key_check; PostgreSQL reads every
    table through and looks for invalid indexes. Then: each study's snapshots are
    1..n as the study says, every snapshot and event belongs to a stored study, and every
    study has its entry in the landscape's index as it is stored. Read-only. Exit status
    1 if anything is wrong.

    \b
    Example:
      ctmonitor db check
    """
    with c.unmigrated_engine("cannot check the database") as engine:
        current = dbmod.current_revision(engine)
        what, problems = dbmod.engine_check(engine)
        if current == dbmod.head_revision():
            with Session(engine) as s:
                problems += store.consistency_problems(s)
            what += "; ctmonitor's invariants (snapshots, events)"
        else:
            problems.append(
                f"schema at {current or 'nothing (empty database)'}, not {dbmod.head_revision()}: "
                "the stored data was not checked (run `ctmonitor db upgrade`)"
            )
    url = dbmod.make_url_safe(c.settings.database_url())
    if not problems:
        click.echo(f"{url}: OK ({what})")
        return
    click.echo(f"{url}: {len(problems)} problem(s) ({what}):")
    for p in problems[:50]:
        click.echo(f"  {p}")
    if len(problems) > 50:
        click.echo(f"  ... and {len(problems) - 50} more")
    raise click.exceptions.Exit(EXIT_FAILED)


@db.command("current")
@pass_ctx
def db_current(c: Context) -> None:
    """Show the schema revision of the database and the one this ctmonitor needs.

    \b
    Example:
      ctmonitor db current
    """
    with c.unmigrated_engine("cannot open the database") as engine:
        current = dbmod.current_revision(engine)
    head = dbmod.head_revision()
    click.echo(
        f"database: {current or 'empty'}; needed: {head}"
        + ("" if current == head else " (run `ctmonitor db upgrade`)")
    )

"""Alembic environment: the engine comes from ctmonitor (its config), not from alembic.ini.

`ctmonitor db upgrade` passes its engine in `config.attributes["engine"]`; running the
`alembic` command directly falls back to ctmonitor's own settings loader.
"""

import os
import sys
import time
from pathlib import Path

from alembic import context

from monitor.store.models import Base

target_metadata = Base.metadata


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is None:
        from monitor.config import load_settings
        from monitor.store.db import make_engine

        engine = make_engine(load_settings().database_url())
    return engine


_applied = 0


def _after_each_revision(ctx, step, heads, run_args) -> None:  # type: ignore[no-untyped-def]
    """Test hook (CTMONITOR_TEST_MIGRATION_HOLD=file): say on stderr that a revision was
    applied; once as many revisions were applied as the file says (a number), wait while
    the file exists, still inside the migration's one transaction, so that the crash tests
    can kill a real process between two revisions, or start a second one beside it, at a
    moment they choose. Unset, it does nothing."""
    global _applied
    hold = os.environ.get("CTMONITOR_TEST_MIGRATION_HOLD")
    if not hold:
        return
    _applied += 1
    print(f"ctmonitor-migration: applied {step.up_revision_id}", file=sys.stderr, flush=True)
    while True:
        try:
            at = int(Path(hold).read_text(encoding="ascii").strip() or "1")
        except (OSError, ValueError):
            return  # the file is gone: go on
        if _applied < at:
            return
        time.sleep(0.02)


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            on_version_apply=_after_each_revision,
            # One transaction for the whole upgrade. Alembic takes SQLite's DDL to be
            # non-transactional and would commit after each revision; ctmonitor's SQLite
            # engine for migrations (monitor.db._transactional_ddl) makes it transactional.
            transactional_ddl=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("ctmonitor migrations run online only: use `ctmonitor db upgrade`")
run_migrations_online()

"""Alembic environment: the engine comes from ctmonitor (its config), not from alembic.ini.

`ctmonitor db upgrade` passes its engine in `config.attributes["engine"]`; running the
`alembic` command directly falls back to ctmonitor's own settings loader.
"""

from alembic import context

from monitor.models import Base

target_metadata = Base.metadata


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is None:
        from monitor.config import load_settings
        from monitor.db import make_engine

        engine = make_engine(load_settings().database_url())
    return engine


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("ctmonitor migrations run online only: use `ctmonitor db upgrade`")
run_migrations_online()

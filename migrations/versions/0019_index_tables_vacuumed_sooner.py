"""The landscape's index tables vacuumed and analyzed once 1% of their rows changed
(PostgreSQL), instead of the server's default 20%.

Each poll rewrites the index entries of the studies it changed: a week of changes to 1%
of 100,000 studies leaves about 17,000 dead rows in `study_terms`. At the default
threshold they pile up to a fifth of the table between two vacuums, and a filtered,
searched page of the landscape, which reads these tables' indexes, slowed from about
135 ms to 220 (bench/web.py, 100,000 studies, a year of weekly polls). These are storage
parameters of the two tables: the server's autovacuum honours them where it runs, and
ctmonitor's own upkeep (store.upkeep) where it is switched off. SQLite has no such thing.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("study_keys", "study_terms")
PARAMETERS = ("autovacuum_vacuum_scale_factor", "autovacuum_analyze_scale_factor")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET ({', '.join(f'{p} = 0.01' for p in PARAMETERS)})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET ({', '.join(PARAMETERS)})")

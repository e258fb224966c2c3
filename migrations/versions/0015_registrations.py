"""A study's registry beside its number, and the other registrations its record names:
the first step of following a trial across registries (docs/REGISTRIES.md, stage 2).

- `studies.registered_on` (ctgov for every study stored so far) and `studies.registrations`
  ("ctis:2024-510663-34-00|chictr:ChiCTR2300071234"), filled for every stored study by
  the re-derivation that follows this revision's normalizer (the next poll, or
  `ctmonitor reclassify`).
- `poll_runs.source`: the file an ICTRP import read (`ctmonitor import ictrp`).
- The study-id columns widen from 11 to 40 characters on PostgreSQL, so an EU CT or
  ChiCTR number fits where an NCT id does; every id, link and settled event stays as it
  is. SQLite enforces no length: its tables are left as they are rather than copied whole.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, nullable)
STUDY_IDS = (
    ("studies", "nct_id", False),
    ("studies", "merged_into", True),
    ("snapshots", "nct_id", False),
    ("events", "nct_id", False),
    ("backfills", "nct_id", False),
    ("study_publications", "nct_id", False),
    ("literature_checks", "nct_id", False),
)


def _widen(old: int, new: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, nullable in STUDY_IDS:
        op.alter_column(
            table, column, type_=sa.String(new), existing_type=sa.String(old), existing_nullable=nullable
        )


def upgrade() -> None:
    _widen(11, 40)
    op.add_column("studies", sa.Column("registered_on", sa.String(8), nullable=False, server_default="ctgov"))
    op.create_index(op.f("ix_studies_registered_on"), "studies", ["registered_on"])
    op.add_column("studies", sa.Column("registrations", sa.Text(), nullable=True))
    op.add_column("poll_runs", sa.Column("source", sa.Text(), nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN (SQLite >= 3.35): a batch copy of a table others refer to would
    # fail its foreign keys on a populated database
    op.drop_column("poll_runs", "source")
    op.drop_index(op.f("ix_studies_registered_on"), table_name="studies")
    op.drop_column("studies", "registrations")
    op.drop_column("studies", "registered_on")
    _widen(40, 11)

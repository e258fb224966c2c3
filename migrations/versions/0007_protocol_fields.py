"""Protocol content: which field list each study was last fetched with; baselines per poll.

`studies.fields_version` says which list of record parts the study's latest record was
fetched with (1: before eligibility, outcomes and references were asked for; 2: with
them). A study still at 1 gains those fields at its next poll as a baseline, without
events, since its earlier record cannot say what they were. `poll_runs.baselined` counts
the studies a poll did that for, so the poll's summary can say so.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite and PostgreSQL both add a NOT NULL column with a constant
    # default in place): a batch "move and copy" would drop tables other tables refer to.
    op.add_column(
        "studies", sa.Column("fields_version", sa.SmallInteger(), nullable=False, server_default="1")
    )
    op.add_column("poll_runs", sa.Column("baselined", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # DROP COLUMN in place (SQLite 3.35 and later; PostgreSQL).
    op.drop_column("poll_runs", "baselined")
    op.drop_column("studies", "fields_version")

"""Primary completion date and number of sites on the studies row: the numbers analysts
compare in the landscape and its downloads (enrollment, start, primary completion, first
posted, sites and countries), sorted and filtered without decoding any record.

Filled from each study's latest record: the normalizer version that comes with this
revision re-derives every stored study's columns at the next poll (as 0008's did), and
every later write keeps them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, nullable: in place on SQLite and PostgreSQL (see 0007).
    op.add_column("studies", sa.Column("primary_completion_date", sa.String(length=10), nullable=True))
    op.add_column("studies", sa.Column("site_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("studies", "site_count")
    op.drop_column("studies", "primary_completion_date")

"""Enrollment and start date on the studies row, for the report's study table; the
words free-text search reads beyond the columns (the product and modality evidence), so
a search over thousands of studies does not decode every classification.

Filled from each study's latest record at its next write; the normalizer change that
comes with this revision re-derives every stored study at the next poll (see
monitor.tracking.reclassify), so no study waits for its own next update.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, nullable: in place on SQLite and PostgreSQL (see 0007).
    op.add_column("studies", sa.Column("enrollment_count", sa.Integer(), nullable=True))
    op.add_column("studies", sa.Column("start_date", sa.String(length=10), nullable=True))
    op.add_column("studies", sa.Column("search_text", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("studies", "search_text")
    op.drop_column("studies", "start_date")
    op.drop_column("studies", "enrollment_count")

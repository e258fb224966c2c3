"""Classification on studies: scope, modality, targets, indications, cell source, product, review flag.

Existing rows get NULL; the next poll (or `ctmonitor reclassify`) fills them from the stored raw records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_scope", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("scope_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("modality", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("targets", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("indications", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("cell_source", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("product", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("needs_review", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "classification",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("classified_with", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_studies_in_scope"), ["in_scope"], unique=False)
        batch_op.create_index(batch_op.f("ix_studies_modality"), ["modality"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_modality"))
        batch_op.drop_index(batch_op.f("ix_studies_in_scope"))
        batch_op.drop_column("classified_with")
        batch_op.drop_column("classification")
        batch_op.drop_column("needs_review")
        batch_op.drop_column("product")
        batch_op.drop_column("cell_source")
        batch_op.drop_column("indications")
        batch_op.drop_column("targets")
        batch_op.drop_column("modality")
        batch_op.drop_column("scope_reason")
        batch_op.drop_column("in_scope")

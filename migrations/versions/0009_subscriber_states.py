"""Subscribers' own state (unsubscribed, link generation) and the signing secret.

`subscriber_states` holds what a subscriber changes themselves, beside their entry in
config.toml: that they left (one click on the signed link every digest carries), and the
generation of their link (raised to revoke every earlier link). `app_secrets` holds the
key that signs those links when CTMONITOR_SECRET_KEY is not set, created once, shared by
every process on the database.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriber_states",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=True),
        sa.Column("link_generation", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_subscriber_states")),
    )
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_app_secrets")),
    )


def downgrade() -> None:
    op.drop_table("app_secrets")
    op.drop_table("subscriber_states")

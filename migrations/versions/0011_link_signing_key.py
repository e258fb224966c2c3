"""The link-signing key is made with the database, not by the first page that needs it.

Until now the first GET of /subscribe or /manage/... created the key (`app_secrets`,
name `link-signing`): a read that wrote, which fails on a read-only replica and breaks
the promise that no GET changes anything. The key is 256 random bits, made here once;
a database that already has one keeps it (links already sent keep working).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "link-signing"


def upgrade() -> None:
    bind = op.get_bind()
    table = sa.table("app_secrets", sa.column("name", sa.String), sa.column("value", sa.Text))
    exists = bind.execute(sa.select(table.c.name).where(table.c.name == NAME)).first()
    if exists is None:
        bind.execute(sa.insert(table).values(name=NAME, value=secrets.token_urlsafe(32)))


def downgrade() -> None:
    # The key stays: links already mailed must keep verifying after a downgrade.
    pass

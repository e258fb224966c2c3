"""Subscribers in the database: sign-up, filters, channel, state; rate-limit records.

`subscribers` holds every subscriber, whether an administrator wrote them in config.toml
(`managed_by = 'file'`: created or updated at each start, their filters belong to the
file) or they signed up in the browser (`managed_by = 'web'`). It takes over
`subscriber_states` (migration 0009): a subscriber who left with their link stays
unsubscribed and keeps their link generation. Rows are keyed by the same name the
deliveries and delivered events are, so their history carries over unchanged: nothing is
re-sent and nothing is lost. A copied row gets its address and filters at the next start,
from the file.

`status`: pending (signed up, not yet confirmed: nothing is sent), active, paused,
unsubscribed, removed (a file-managed subscriber no longer in the file).
`seen_upto_event_id`: the reader's "last look" on the web (changes above it are new to them).

`web_attempts` records sign-ups and failed administrator logins (keyed by hashes of the
address and of the client, never the address itself) for the rate limits and the login
back-off; rows older than a day are purged as new ones come.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    subscribers = op.create_table(
        "subscribers",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False, server_default=""),
        sa.Column("preferences", _JSON, nullable=False),
        sa.Column("channel", sa.Text(), nullable=False, server_default=""),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("managed_by", sa.String(length=8), nullable=False),
        sa.Column("link_generation", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("seen_upto_event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_subscribers")),
    )
    op.create_index(op.f("ix_subscribers_email"), "subscribers", ["email"])
    op.create_table(
        "web_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("address_key", sa.String(length=64), nullable=False, server_default=""),
        sa.Column("client_key", sa.String(length=64), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_attempts")),
    )
    op.create_index(op.f("ix_web_attempts_at"), "web_attempts", ["at"])

    conn = op.get_bind()
    states = sa.table(
        "subscriber_states",
        sa.column("name", sa.String),
        sa.column("unsubscribed_at", sa.DateTime),
        sa.column("link_generation", sa.Integer),
        sa.column("updated_at", sa.DateTime),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "name": r.name,
            "email": "",
            "preferences": {},
            "channel": "",
            "status": "unsubscribed" if r.unsubscribed_at is not None else "active",
            "managed_by": "file",
            "link_generation": r.link_generation,
            "seen_upto_event_id": 0,
            "created_at": r.updated_at or now,
            "updated_at": r.updated_at or now,
            "confirmed_at": None,
            "unsubscribed_at": r.unsubscribed_at,
        }
        for r in conn.execute(sa.select(states))
    ]
    if rows:
        op.bulk_insert(subscribers, rows)
    op.drop_table("subscriber_states")


def downgrade() -> None:
    op.create_table(
        "subscriber_states",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(), nullable=True),
        sa.Column("link_generation", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_subscriber_states")),
    )
    conn = op.get_bind()
    subs = sa.table(
        "subscribers",
        sa.column("name", sa.String),
        sa.column("unsubscribed_at", sa.DateTime),
        sa.column("link_generation", sa.Integer),
        sa.column("updated_at", sa.DateTime),
        sa.column("managed_by", sa.String),
    )
    states = sa.table(
        "subscriber_states",
        sa.column("name", sa.String),
        sa.column("unsubscribed_at", sa.DateTime),
        sa.column("link_generation", sa.Integer),
        sa.column("updated_at", sa.DateTime),
    )
    # Only the file's subscribers existed before; web sign-ups have no place to go back to.
    rows = [
        {
            "name": r.name,
            "unsubscribed_at": r.unsubscribed_at,
            "link_generation": r.link_generation,
            "updated_at": r.updated_at,
        }
        for r in conn.execute(sa.select(subs).where(subs.c.managed_by == "file"))
    ]
    if rows:
        conn.execute(sa.insert(states), rows)
    op.drop_index(op.f("ix_web_attempts_at"), table_name="web_attempts")
    op.drop_table("web_attempts")
    op.drop_index(op.f("ix_subscribers_email"), table_name="subscribers")
    op.drop_table("subscribers")

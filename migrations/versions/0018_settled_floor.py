"""Each subscriber's settled floor: every event up to `subscribers.settled_upto` is settled
for them (told, counted, outside their filters, or stood for by their first digest).

Before, each change a reader's digest did not list was settled by a row of its own, and a
digest run read every such row past the reader's first digest: a thousand readers over a
year of changes wrote and read millions of rows. The floor moves with every sent digest,
and with a run that found nothing for the reader; rows are written only for what a digest
mailed and for changes above the floor (past a change held for review).

Filled from each subscriber's sent deliveries (their newest `upto_event_id`: the first
digest's cursor), so nothing settled becomes due again. A sent digest records the floor
it raised as its `upto_event_id` too, so an older ctmonitor reading this database after a
downgrade sees the same floor (only a floor raised without a digest is forgotten: those
changes were outside the reader's filters and are judged again, never mailed twice).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column("settled_upto", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE subscribers SET settled_upto = COALESCE(("
        "SELECT MAX(d.upto_event_id) FROM deliveries d "
        "WHERE d.subscriber = subscribers.name AND d.status = 'sent'), 0)"
    )


def downgrade() -> None:
    op.drop_column("subscribers", "settled_upto")

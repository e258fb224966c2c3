"""One trial, several registrations (docs/REGISTRIES.md, stage 4): each tracked
registration knows the trial it belongs to.

- `studies.trial_id`: the number of the registration standing for its trial (its own
  number when it stands alone; NULL until the next poll or import joins them).
- `studies.trial_registrations`: every registration of that trial, "registry:number", the
  standing one first (NULL for a registration alone), so filters and counts read a
  trial's registries from any of its rows.
- `studies.trial_status`: on the standing row, whether its registrations' statuses agree
  ("agree", "disagree"; NULL until first compared): a flip is an event.
- `studies.registry_status`: the registry's own words for the status where they are not
  the reader's (CTIS's "Ongoing, recruiting"; an ICTRP register's "Not Recruiting"),
  filled by the re-derivation that follows normalizer 7.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "studies", sa.Column("trial_id", sa.String(40).with_variant(sa.String(11), "sqlite"), nullable=True)
    )
    op.create_index(op.f("ix_studies_trial_id"), "studies", ["trial_id"])
    op.add_column("studies", sa.Column("trial_registrations", sa.Text(), nullable=True))
    op.add_column("studies", sa.Column("trial_status", sa.String(16), nullable=True))
    op.add_column("studies", sa.Column("registry_status", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("studies", "registry_status")
    op.drop_column("studies", "trial_status")
    op.drop_column("studies", "trial_registrations")
    op.drop_index(op.f("ix_studies_trial_id"), table_name="studies")
    op.drop_column("studies", "trial_id")

"""Every product a study gives, by canonical name, on the studies row: what the product
filter, the product and sponsor pages and the pipeline read without decoding any
classification (a study with a product and a sub-study's product lists both).

Filled here from the one product each study had, so nothing goes blank between the
upgrade and the next poll; the classifier version that comes with this revision then
relabels every study (canonical names, unnamed products named for what they are).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("studies", sa.Column("products", sa.Text(), nullable=True))
    op.execute("UPDATE studies SET products = product WHERE product IS NOT NULL AND product NOT LIKE '%|%'")


def downgrade() -> None:
    op.drop_column("studies", "products")

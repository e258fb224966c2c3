"""Publications found in the literature by the trials' registry numbers (PubMed, Europe
PMC): the papers, their links to studies (with the service and the number cited), how far
each service has been searched for each study, and each search run.

Nothing existing changes: the first literature search of each study is a baseline.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "publications",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("pmid", sa.String(16), nullable=True),
        sa.Column("pmcid", sa.String(16), nullable=True),
        sa.Column("doi", sa.Text(), nullable=True),
        sa.Column("europepmc_id", sa.String(64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("authors", JSON, nullable=True),
        sa.Column("journal", sa.Text(), nullable=True),
        sa.Column("year", sa.String(4), nullable=True),
        sa.Column("pub_date", sa.String(10), nullable=True),
        sa.Column("abstract", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publications")),
        sa.UniqueConstraint("key", name=op.f("uq_publications_key")),
    )
    op.create_index(op.f("ix_publications_pmid"), "publications", ["pmid"])
    op.create_table(
        "study_publications",
        sa.Column("nct_id", sa.String(11), nullable=False),
        sa.Column("publication_id", BIG_ID, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("cites", sa.String(40), nullable=False),
        sa.Column("found_at", sa.DateTime(), nullable=False),
        sa.Column("baseline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["publication_id"],
            ["publications.id"],
            name=op.f("fk_study_publications_publication_id_publications"),
        ),
        sa.PrimaryKeyConstraint("nct_id", "publication_id", "source", name=op.f("pk_study_publications")),
    )
    op.create_index(op.f("ix_study_publications_publication_id"), "study_publications", ["publication_id"])
    op.create_table(
        "literature_checks",
        sa.Column("nct_id", sa.String(11), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("checked_through", sa.String(10), nullable=False),
        sa.PrimaryKeyConstraint("nct_id", "source", name=op.f("pk_literature_checks")),
    )
    op.create_table(
        "literature_runs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("studies", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("found", sa.Integer(), nullable=False),
        sa.Column("linked", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_literature_runs")),
    )
    op.create_index(op.f("ix_literature_runs_source"), "literature_runs", ["source"])


def downgrade() -> None:
    op.drop_index(op.f("ix_literature_runs_source"), table_name="literature_runs")
    op.drop_table("literature_runs")
    op.drop_table("literature_checks")
    op.drop_index(op.f("ix_study_publications_publication_id"), table_name="study_publications")
    op.drop_table("study_publications")
    op.drop_index(op.f("ix_publications_pmid"), table_name="publications")
    op.drop_table("publications")

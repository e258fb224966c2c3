"""The landscape's index (issue 37): what the database keeps of each tracked study's
summary so the landscape, its downloads and the API filter, search, sort, count and page
in SQL (monitor/store/index_tables.py says what each table holds).

- `study_keys`: one row per study: shown or not, a sort key per column, the search text;
  `doc` numbers are never reused (SQLite AUTOINCREMENT), the largest is the version.
- `study_terms`: (facet, term, study, label) for the list filters and the counts.
- SQLite: `study_search`, an FTS5 index (trigram tokenizer: any part of a word matches, as
  before) over study_keys' search text, kept by triggers. PostgreSQL: a pg_trgm GIN index
  on the same text, when the extension is there or may be created (without it, search
  still answers the same, by reading every row).

Filled from the stored studies by the same code that keeps it afterwards.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SORTS = (
    "updated",
    "nct",
    "title",
    "status",
    "phase",
    "modality",
    "targets",
    "indications",
    "source",
    "product",
    "sponsor",
    "enrollment",
    "start",
    "completion",
    "posted",
    "sites",
)
BYTEWISE = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
BYTEWISE_ID = (
    sa.String(40)
    .with_variant(sa.String(40, collation="C"), "postgresql")
    .with_variant(sa.String(11), "sqlite")
)

FTS = [
    "CREATE VIRTUAL TABLE study_search USING fts5(compact, content='study_keys', "
    "content_rowid='doc', tokenize='trigram case_sensitive 1')",
    "CREATE TRIGGER study_keys_search_insert AFTER INSERT ON study_keys BEGIN "
    "INSERT INTO study_search(rowid, compact) VALUES (new.doc, new.compact); END",
    "CREATE TRIGGER study_keys_search_delete AFTER DELETE ON study_keys BEGIN "
    "INSERT INTO study_search(study_search, rowid, compact) VALUES ('delete', old.doc, old.compact); END",
    "CREATE TRIGGER study_keys_search_update AFTER UPDATE ON study_keys BEGIN "
    "INSERT INTO study_search(study_search, rowid, compact) VALUES ('delete', old.doc, old.compact); "
    "INSERT INTO study_search(rowid, compact) VALUES (new.doc, new.compact); END",
]


def _trigram_schema(conn: sa.Connection) -> str | None:
    """Where pg_trgm is (creating it in public if it is not there and we may)."""
    find = (
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    found = conn.execute(sa.text(find)).scalar()
    if found:
        return str(found)
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    except DBAPIError:
        return None  # no right to: search reads every row instead
    return "public"


def upgrade() -> None:
    op.create_table(
        "study_keys",
        sa.Column("doc", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("nct_id", BYTEWISE_ID, nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("in_scope", sa.Boolean(), nullable=True),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("trial_id", BYTEWISE_ID, nullable=True),
        *[sa.Column(f"sort_{k}", BYTEWISE, nullable=True) for k in SORTS],
        sa.Column("compact", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("doc", name=op.f("pk_study_keys")),
        sa.UniqueConstraint("nct_id", name=op.f("uq_study_keys_nct_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "study_terms",
        sa.Column("facet", sa.String(12), nullable=False),
        sa.Column("term", sa.Text(), nullable=False),
        sa.Column("nct_id", BYTEWISE_ID, nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("facet", "term", "nct_id", name=op.f("pk_study_terms")),
    )
    op.create_index(op.f("ix_study_terms_nct_id"), "study_terms", ["nct_id"])
    conn = op.get_bind()
    # the default order (newest update first, empty last) read off an index
    nulls = " NULLS LAST" if conn.dialect.name == "postgresql" else ""
    conn.exec_driver_sql(
        f"CREATE INDEX ix_study_keys_updated ON study_keys (sort_updated DESC{nulls}, nct_id)"
    )
    if conn.dialect.name == "sqlite":
        for statement in FTS:
            conn.exec_driver_sql(statement)
    elif conn.dialect.name == "postgresql":
        schema = _trigram_schema(conn)
        if schema:
            trigrams = f'gin (compact "{schema}".gin_trgm_ops)'
            conn.exec_driver_sql(f"CREATE INDEX ix_study_keys_compact_trgm ON study_keys USING {trigrams}")
    from monitor.store.index import reindex_all

    reindex_all(Session(bind=conn))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS study_keys_search_{trigger}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS study_search")
    op.drop_index(op.f("ix_study_terms_nct_id"), table_name="study_terms")
    op.drop_table("study_terms")
    conn.exec_driver_sql("DROP INDEX ix_study_keys_updated")
    op.drop_table("study_keys")

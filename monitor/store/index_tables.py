"""The landscape's index (migration 0017): what the database keeps of each tracked
study's summary so that the landscape, its downloads and the API filter, search, sort,
count and page in SQL (core.summary.IndexEntry), written by store.index in the
transaction that writes the study.

- `study_keys`: one row per study: whether it is shown (current, in scope, under review,
  its trial), a sort key per sortable column (NULL when empty: last either way; compared
  byte by byte, PostgreSQL's collation "C", as Python compares them), and the free-text
  search's text as letters and digits (`compact`, core.summary), indexed by SQLite FTS5
  (trigram, the virtual table `study_search`) or PostgreSQL's pg_trgm (GIN).
- `study_terms`: (facet, term, study) for every value a list filter compares, with the
  label a count shows.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models import Base

# text compared byte by byte (as Python compares str) on PostgreSQL, whatever its locale
Bytewise = Text().with_variant(Text(collation="C"), "postgresql")
BytewiseId = (
    String(40).with_variant(String(40, collation="C"), "postgresql").with_variant(String(11), "sqlite")
)

SORT_COLUMNS = (
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


# made by migration 0017 in each database's own dialect, not declared here: SQLite's FTS5
# table (and the tables it keeps), pg_trgm's indexes, and the default order's index (newest
# update first, empty last: PostgreSQL must be told NULLS LAST, SQLite may not be)
UNDECLARED = (
    "study_search",
    "ix_study_keys_body_trgm",
    "ix_study_keys_compact_trgm",
    "ix_study_keys_updated",
)


class StudyKey(Base):
    __tablename__ = "study_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    # a new number each time the entry is written: the largest is the index's version
    doc: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(BytewiseId, unique=True)
    current: Mapped[bool] = mapped_column(Boolean)  # neither gone nor renumbered
    in_scope: Mapped[bool | None] = mapped_column(Boolean)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    trial_id: Mapped[str | None] = mapped_column(BytewiseId)
    sort_updated: Mapped[str | None] = mapped_column(Bytewise)
    sort_nct: Mapped[str | None] = mapped_column(Bytewise)
    sort_title: Mapped[str | None] = mapped_column(Bytewise)
    sort_status: Mapped[str | None] = mapped_column(Bytewise)
    sort_phase: Mapped[str | None] = mapped_column(Bytewise)
    sort_modality: Mapped[str | None] = mapped_column(Bytewise)
    sort_targets: Mapped[str | None] = mapped_column(Bytewise)
    sort_indications: Mapped[str | None] = mapped_column(Bytewise)
    sort_source: Mapped[str | None] = mapped_column(Bytewise)
    sort_product: Mapped[str | None] = mapped_column(Bytewise)
    sort_sponsor: Mapped[str | None] = mapped_column(Bytewise)
    sort_enrollment: Mapped[str | None] = mapped_column(Bytewise)
    sort_start: Mapped[str | None] = mapped_column(Bytewise)
    sort_completion: Mapped[str | None] = mapped_column(Bytewise)
    sort_posted: Mapped[str | None] = mapped_column(Bytewise)
    sort_sites: Mapped[str | None] = mapped_column(Bytewise)
    compact: Mapped[str] = mapped_column(Text)


class StudyTerm(Base):
    __tablename__ = "study_terms"

    facet: Mapped[str] = mapped_column(String(12), primary_key=True)
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    nct_id: Mapped[str] = mapped_column(BytewiseId, primary_key=True, index=True)
    label: Mapped[str] = mapped_column(Text)

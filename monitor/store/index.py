"""Keeping the landscape's index (store.index_tables) true: every write of a study's
summary marks the study, and the session rewrites the marked studies' entries just before
it commits, in the same transaction (`reindex_marked`, a `before_commit` hook that
store.db installs). A writer never has to remember to index: it cannot commit a study the
landscape would show otherwise than it is stored."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.core.summary import index_entry, summary
from monitor.store.bulk import insert_rows
from monitor.store.index_tables import SORT_COLUMNS, StudyKey, StudyTerm
from monitor.store.models import StudyRow

log = logging.getLogger(__name__)

_MARKED = "ctmonitor.reindex"
# the summary columns: what every reading surface shows of a study (store.studies
# re-exports them) and what its index entry is derived from
SUMMARY_COLUMNS = (
    "nct_id",
    "brief_title",
    "overall_status",
    "phases",
    "lead_sponsor",
    "countries",
    "in_scope",
    "scope_reason",
    "modality",
    "targets",
    "cell_source",
    "product",
    "products",
    "indications",
    "needs_review",
    "last_update_post_date",
    "search_text",
    "first_post_date",
    "enrollment_count",
    "start_date",
    "primary_completion_date",
    "site_count",
    "registered_on",
    "registrations",
    "trial_id",
    "trial_registrations",
    "registry_status",
    "gone",
    "merged_into",
)
_CHUNK = 400


def mark(session: Session, nct_ids: Iterable[str]) -> None:
    """Studies whose summary this transaction wrote: indexed again before it commits."""
    session.info.setdefault(_MARKED, set()).update(nct_ids)


def forget_marks(session: Session) -> None:
    """A rolled-back transaction wrote nothing to index."""
    session.info.pop(_MARKED, None)


def reindex_marked(session: Session) -> None:
    marked = session.info.pop(_MARKED, None)
    if marked:
        reindex(session, sorted(marked))


def entry_rows(m: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A study's `study_keys` row and `study_terms` rows, from its columns by name."""
    row = summary(m)
    row["search"] = m["search_text"] or ""
    e = index_entry(row)
    key = {
        "nct_id": m["nct_id"],
        "current": not m["gone"] and m["merged_into"] is None,
        "in_scope": m["in_scope"],
        "needs_review": bool(m["needs_review"]),
        # the registration standing for its trial when another (alone: none, as before
        # the first regrouping)
        "trial_id": m["trial_id"] if m["trial_id"] != m["nct_id"] else None,
        "compact": e.compact,
        **{f"sort_{k}": e.sort[k] for k in SORT_COLUMNS},
    }
    terms = [{"facet": f, "term": t, "label": label, "nct_id": m["nct_id"]} for f, t, label in e.terms]
    return key, terms


def reindex(session: Session, nct_ids: Sequence[str]) -> None:
    """Rewrite these studies' entries from their stored rows (a study no longer stored
    loses its entry)."""
    cols = [getattr(StudyRow, c) for c in SUMMARY_COLUMNS]
    for start in range(0, len(nct_ids), _CHUNK):
        chunk = list(nct_ids[start : start + _CHUNK])
        session.execute(delete(StudyKey).where(StudyKey.nct_id.in_(chunk)))
        session.execute(delete(StudyTerm).where(StudyTerm.nct_id.in_(chunk)))
        keys, terms = [], []
        for r in session.execute(select(*cols).where(StudyRow.nct_id.in_(chunk))):
            k, t = entry_rows(dict(zip(SUMMARY_COLUMNS, r, strict=True)))
            keys.append(k)
            terms.extend(t)
        # plain executemany of the tables' rows (no ORM bookkeeping: a first sync indexes
        # every study it writes)
        insert_rows(session, StudyKey.__table__, keys)
        insert_rows(session, StudyTerm.__table__, terms)


def reindex_all(session: Session) -> int:
    """Every stored study's entry (migration 0017 builds the index with it)."""
    ids = list(session.scalars(select(StudyRow.nct_id).order_by(StudyRow.nct_id)))
    reindex(session, ids)
    return len(ids)


def refresh_statistics(session: Session) -> bool:
    """Bring PostgreSQL's planner statistics of the studies, their index and the change
    log up to date (ANALYZE samples each table: well under a second at 100,000 studies).
    Without them, as on a server whose autovacuum is off or has not come round yet, a
    count over a search of 100,000 fresh studies was planned as for empty tables and took
    minutes instead of a fifth of a second. SQLite plans these queries well without
    (nothing is done there). Returns whether it ran."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    try:
        with session.begin_nested():
            session.execute(text("ANALYZE studies, study_keys, study_terms, events"))
    except SQLAlchemyError as exc:  # what called it is done and recorded: only the plans wait
        log.warning("could not refresh the database's planner statistics: %s", exc)
        return False
    return True


def version(session: Session) -> int:
    """The index's version: the newest entry's number, which every write of an entry
    raises (numbers are never reused), so counts cached under it are never stale."""
    return int(session.scalar(select(func.max(StudyKey.doc))) or 0)

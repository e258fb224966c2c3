"""The landscape answered by the database (issue 37): the studies a `LandscapeQuery`
shows, filtered, searched, sorted, counted and paged in SQL over the landscape's index
(store.index_tables), with the landscape's own semantics (core.landscape.matches and
view: one row per trial, "any of" within a filter, every filter at once, empty values
last either way, the study id breaking ties)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, column, exists, false, func, literal, literal_column, or_, select, table
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from monitor.core import products
from monitor.core.landscape import LandscapeQuery, fold, read_cursor, search_words
from monitor.store.index_tables import StudyKey, StudyTerm
from monitor.store.models import StudyRow
from monitor.store.studies import SUMMARY_COLUMNS, study_summaries_of

_FTS = table("study_search", column("rowid"))
_TRIGRAM = 3  # the trigram index finds a part of a word from three characters


def facet_in(facet: str, terms: Iterable[str], key: Any = StudyKey.nct_id) -> ColumnElement[bool]:
    """The study carries one of these terms of the facet (none asked: no study does).
    `key`: the study's id as the condition reads it (see `_key`)."""
    wanted = sorted({t for t in terms if t})
    if not wanted:
        return false()
    return key.in_(select(StudyTerm.nct_id).where(StudyTerm.facet == facet, StudyTerm.term.in_(wanted)))


def facets_in(
    wanted: Iterable[tuple[str, Sequence[str]]], key: Any = StudyKey.nct_id
) -> list[ColumnElement[bool]]:
    """Each facet asked for holds one of its (folded) labels: "any of" within a facet,
    every facet at once."""
    return [facet_in(facet, [fold(w) for w in labels], key) for facet, labels in wanted if labels]


def sponsor_in(names: Sequence[str], key: Any = StudyKey.nct_id) -> list[ColumnElement[bool]]:
    """The lead sponsor's name holds one of these (folded); an empty name is in every one."""
    named = [fold(s) for s in names]
    if not named or "" in named:
        return []
    held = or_(*[StudyTerm.term.contains(s, autoescape=True) for s in named])
    sponsored = select(StudyTerm.nct_id).where(StudyTerm.facet == "sponsor", held)
    return [key.in_(sponsored)]


def _key(session: Session, q: LandscapeQuery) -> ColumnElement[Any]:
    """The study's id as the filters' conditions read it. On SQLite, while a search goes
    through the FTS5 index (a list of row numbers), the filters' lists of ids must not
    drive the query too: the study ids' index holds the row number, and SQLite walked
    every pair of the two lists (89,000 CAR-T studies × 60,000 search hits: minutes for a
    view of 100,000 studies). Written `+nct_id` (SQLite's way of saying "no index here"),
    the search's list drives and the filters are looked up in theirs."""
    searching = session.get_bind().dialect.name == "sqlite" and any(
        len(compact) >= _TRIGRAM for _, compact in search_words(q.q or "") if compact
    )
    if not searching:
        return StudyKey.nct_id
    return UnaryExpression(StudyKey.nct_id, operator=custom_op("+"), type_=StudyKey.nct_id.type)


def _holds(session: Session, part: str) -> ColumnElement[bool]:
    """The study's search text (study_keys.compact) holds `part`: by the FTS5 index on
    SQLite, pg_trgm's on PostgreSQL (LIKE), or, under three characters, by reading it."""
    if session.get_bind().dialect.name == "sqlite":
        if len(part) >= _TRIGRAM:
            match = literal_column("study_search").op("MATCH")(literal('"' + part.replace('"', '""') + '"'))
            return StudyKey.doc.in_(select(_FTS.c.rowid).where(match))
        return func.instr(StudyKey.compact, part) > 0
    return StudyKey.compact.contains(part, autoescape=True)


def _search(session: Session, text: str) -> list[ColumnElement[bool]]:
    """Every word of a search, found as the landscape finds it (core.landscape.matches):
    in the folded text, or as letters and digits in the compact text; the first implies
    the second (core.summary.IndexEntry), so the compact text alone is read."""
    return [_holds(session, compact) for _, compact in search_words(text) if compact]


def shown(q: LandscapeQuery) -> list[ColumnElement[bool]]:
    """The studies on the landscape before its filters: current, in scope (unless all are
    asked for), and one row per trial: a registration is left out while the registration
    standing for its trial is shown."""
    out: list[ColumnElement[bool]] = [StudyKey.current.is_(True)]
    if not q.include_out_of_scope:
        out.append(StudyKey.in_scope.is_(True))
    standing = aliased(StudyKey)
    standing_shown = exists().where(
        standing.nct_id == StudyKey.trial_id,
        standing.current.is_(True),
        *([] if q.include_out_of_scope else [standing.in_scope.is_(True)]),
    )
    out.append(or_(StudyKey.trial_id.is_(None), StudyKey.trial_id == StudyKey.nct_id, ~standing_shown))
    return out


def where(session: Session, q: LandscapeQuery) -> list[ColumnElement[bool]]:
    """Every condition of the query's view (its filters and search), in SQL."""
    out = shown(q)
    key = _key(session, q)
    if q.needs_review:
        out.append(StudyKey.needs_review.is_(True))
    out += facets_in(
        [
            ("modality", q.modalities),
            ("target", q.targets),
            ("indication", q.indications),
            ("status", q.statuses),
            ("phase", q.phases),
            ("country", q.countries),
            ("source", q.cell_sources),
        ],
        key,
    )
    if q.registries:
        out.append(facet_in("registry", q.registries, key))
    if q.products:
        out.append(facet_in("product", [products.compact(w) for w in q.products], key))
    out += sponsor_in(q.sponsors, key)
    if q.q:
        out.extend(_search(session, q.q))
    return out


def _ordered(stmt: Select[Any], q: LandscapeQuery) -> Select[Any]:
    key = getattr(StudyKey, f"sort_{q.sort}")
    first = key.desc() if q.descending else key.asc()
    return stmt.order_by(first.nulls_last(), StudyKey.nct_id)


def _after_cursor(q: LandscapeQuery) -> ColumnElement[bool]:
    """The rows after the cursor's place in the view's order."""
    key = getattr(StudyKey, f"sort_{q.sort}")
    value, nct = read_cursor(q.cursor)
    if not value:
        return and_(key.is_(None), StudyKey.nct_id > nct)
    beyond = key < value if q.descending else key > value
    return or_(key.is_(None), beyond, and_(key == value, StudyKey.nct_id > nct))


def page_ids(session: Session, q: LandscapeQuery, *, size: int | None = None) -> tuple[list[str], bool]:
    """The ids of the page the query asks for (by page number, or after its cursor), in
    order, and whether more rows follow."""
    size = size or q.per_page
    stmt = _ordered(select(StudyKey.nct_id).where(*where(session, q)), q)
    stmt = stmt.where(_after_cursor(q)) if q.cursor else stmt.offset((q.page - 1) * q.per_page)
    ids = list(session.scalars(stmt.limit(size + 1)))
    return ids[:size], len(ids) > size


def count(session: Session, q: LandscapeQuery) -> int:
    """How many rows the view holds, every page."""
    return session.scalar(select(func.count()).select_from(StudyKey).where(*where(session, q))) or 0


@dataclass(frozen=True)
class Tally:
    """The view's counts, as read off its terms: (facet, label) -> studies, and how many
    studies in all."""

    total: int
    counts: dict[tuple[str, str], int]


CHART_FACETS = ("modality", "status", "year", "country", "registry", "several", "pair")


def tally(session: Session, q: LandscapeQuery) -> Tally:
    """Everything the landscape's counts and charts show of a view, in one grouped query."""
    matching = select(StudyKey.nct_id).where(*where(session, q))
    rows = session.execute(
        select(StudyTerm.facet, StudyTerm.label, func.count())
        .where(StudyTerm.facet.in_(CHART_FACETS), StudyTerm.nct_id.in_(matching))
        .group_by(StudyTerm.facet, StudyTerm.label)
    )
    return Tally(count(session, q), {(f, label): n for f, label, n in rows})


def with_term(session: Session, q: LandscapeQuery, facet: str, term: str) -> list[str]:
    """The view's studies that carry one term (those under "other autoimmune", say)."""
    stmt = select(StudyKey.nct_id).where(*where(session, q), facet_in(facet, [term], _key(session, q)))
    return list(session.scalars(stmt.order_by(StudyKey.nct_id)))


def summaries_of(session: Session, nct_ids: Sequence[str]) -> list[Any]:
    """The studies' summary rows for these ids, in the ids' order (a page)."""
    found = {r.nct_id: r for r in study_summaries_of(session, nct_ids)}
    return [found[n] for n in nct_ids if n in found]


def stream(
    session: Session, q: LandscapeQuery, columns: Sequence[str], size: int = 1000
) -> Iterator[Sequence[Any]]:
    """Every row of the view in its order (the studies rows' `columns`), a batch at a time
    from one query the database answers as it is read: what a download streams."""
    own = StudyRow.nct_id
    if session.get_bind().dialect.name == "postgresql":
        own = own.collate("C")  # study_keys' ids compare byte by byte
    stmt = select(*[getattr(StudyRow, c) for c in columns]).join(StudyKey, StudyKey.nct_id == own)
    result = session.execute(_ordered(stmt.where(*where(session, q)), q).execution_options(yield_per=size))
    yield from result.partitions(size)


def studies_with_terms(session: Session, facet: str, terms: Sequence[str]) -> list[Any]:
    """The current studies carrying any of these terms (a product's or sponsor's address),
    as light summary rows, newest update first (`study_summaries`' order)."""
    own = StudyRow.nct_id
    if session.get_bind().dialect.name == "postgresql":
        own = own.collate("C")  # study_terms' ids compare byte by byte
    tagged = select(StudyTerm.nct_id).where(StudyTerm.facet == facet, StudyTerm.term.in_(sorted(set(terms))))
    stmt = (
        select(*[getattr(StudyRow, c) for c in SUMMARY_COLUMNS])
        .where(own.in_(tagged), StudyRow.merged_into.is_(None), StudyRow.gone.is_(False))
        .order_by(StudyRow.last_update_post_date.desc(), StudyRow.nct_id)
    )
    return list(session.execute(stmt))

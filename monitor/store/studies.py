"""Studies and their snapshots: current state for the sync, bulk writes of a page, the landscape's rows.

Nothing here commits: the caller's transaction decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.orm import Session

from monitor.core.classify import Classification
from monitor.core.decide import CurrentState
from monitor.core.domain import FieldChange, Study
from monitor.core.landscape import search_text
from monitor.core.protocol import FIELDS_VERSION
from monitor.core.registrations import registrations, registry_of
from monitor.core.timeline import Version
from monitor.store import index
from monitor.store.blobs import compress, decompress_bytes
from monitor.store.bulk import insert_rows
from monitor.store.events import event_row
from monitor.store.index import SUMMARY_COLUMNS
from monitor.store.models import Event, Snapshot, StudyRow


@dataclass(slots=True)
class StudyWrite:
    """Everything one processed record changes: study row, maybe a snapshot, its events."""

    study: Study
    raw_json: bytes  # canonical JSON of the record as fetched
    raw_hash: str
    content_hash: str
    in_query: bool
    is_new: bool
    snapshot_seq: int | None  # None: no new snapshot (the record is byte-for-byte what we had)
    changes: list[FieldChange] = field(default_factory=list)
    origin: str = "poll"
    registry_version: int | None = None
    classification: dict[str, Any] | None = None  # classification_values(...)
    raw_compressed: bytes | None = None  # compress(raw_json), when done ahead (compress_many)
    merges: str | None = None  # the tracked id this record replaces (renumbered study)
    baselined: bool = False  # parts first fetched now were recorded without events


def load_current(session: Session, nct_ids: Iterable[str]) -> dict[str, CurrentState]:
    ids = list(set(nct_ids))
    out: dict[str, CurrentState] = {}
    for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit is generous, not unlimited
        rows = session.execute(
            select(
                StudyRow.nct_id,
                StudyRow.content_hash,
                StudyRow.raw_hash,
                StudyRow.snapshot_count,
                StudyRow.in_query,
                StudyRow.gone,
                StudyRow.merged_into,
                StudyRow.overall_status,
                StudyRow.last_update_post_date,
                StudyRow.in_scope,
                StudyRow.fields_version,
            ).where(StudyRow.nct_id.in_(ids[start : start + 900]))
        )
        for r in rows:
            out[r.nct_id] = CurrentState(*r)
    return out


def stored_studies(session: Session, keys: Iterable[tuple[str, int]]) -> dict[str, Study]:
    """The studies as of the given (nct_id, snapshot seq), re-normalized from the raw records kept.

    Deriving them (rather than storing a normalized copy) means an improved normalizer
    applies to what we stored before, and every write is half the size.
    """
    from monitor.core.records import study_of

    wanted = list(keys)
    out: dict[str, Study] = {}
    for start in range(0, len(wanted), 400):
        rows = session.execute(
            select(Snapshot.nct_id, Snapshot.raw).where(
                tuple_(Snapshot.nct_id, Snapshot.seq).in_(wanted[start : start + 400])
            )
        )
        for nct, blob in rows:
            out[nct] = study_of(nct, decompress_bytes(blob))
    return out


def classification_values(c: Classification, version: str) -> dict[str, Any]:
    """The studies-row columns for one classification."""
    return {
        "in_scope": c.in_scope,
        "scope_reason": c.scope_reason,
        "modality": c.modality,
        "targets": tuple(c.targets),
        "indications": tuple(c.indications),
        "cell_source": c.cell_source,
        "product": c.product,
        "products": tuple(p.replace("|", "/") for p in c.products),
        "needs_review": c.needs_review,
        "classification": c.to_dict(),
        "classified_with": version,
        "search_text": " ".join([search_text(c.to_dict()), *c.product_aliases]).strip(),
    }


def stale_classifications(session: Session, version: str | None) -> list[tuple[str, int, bool | None]]:
    """(nct_id, newest snapshot, stored in_scope) of studies classified with another version (all if None)."""
    stmt = select(StudyRow.nct_id, StudyRow.snapshot_count, StudyRow.in_scope).where(
        StudyRow.merged_into.is_(None), StudyRow.snapshot_count > 0
    )
    if version is not None:
        stmt = stmt.where((StudyRow.classified_with != version) | StudyRow.classified_with.is_(None))
    return [(n, seq, scope) for n, seq, scope in session.execute(stmt.order_by(StudyRow.nct_id))]


def set_classification(session: Session, nct_id: str, values: dict[str, Any]) -> None:
    session.execute(update(StudyRow).where(StudyRow.nct_id == nct_id).values(**values))
    index.mark(session, [nct_id])


def list_studies(
    session: Session,
    *,
    modality: str | None = None,
    target: str | None = None,
    indication: str | None = None,
    status: str | None = None,
    needs_review: bool = False,
    in_scope: bool | None = True,
) -> list[StudyRow]:
    """Tracked studies (not gone, not renumbered) matching the filters, newest update first.

    Label filters compare case-insensitively with the stored labels; a target matches any
    antigen of a combined label (BCMA matches CD19/BCMA).
    """
    stmt = select(StudyRow).where(StudyRow.merged_into.is_(None), StudyRow.gone.is_(False))
    if in_scope is not None:
        stmt = stmt.where(StudyRow.in_scope.is_(in_scope))
    if status:
        stmt = stmt.where(func.upper(StudyRow.overall_status) == status.strip().upper().replace(" ", "_"))
    if needs_review:
        stmt = stmt.where(StudyRow.needs_review.is_(True))
    if modality:
        stmt = stmt.where(func.lower(StudyRow.modality) == modality.strip().lower())
    rows = list(session.scalars(stmt.order_by(StudyRow.last_update_post_date.desc(), StudyRow.nct_id)))

    def folded(labels: Iterable[str]) -> set[str]:
        return {label.strip().lower() for label in labels}

    if target:
        wanted = target.strip().lower()
        rows = [
            r for r in rows if wanted in folded(a for t in r.targets for a in t.replace("x", "/").split("/"))
        ]
    if indication:
        wanted = indication.strip().lower()
        rows = [r for r in rows if wanted in folded(r.indications)]
    return rows


def study_summaries(
    session: Session, *, in_scope: bool | None, with_classification: bool, current_only: bool = True
) -> list[Any]:
    """The tracked studies' summary columns as light rows (no ORM objects), newest update
    first, as `list_studies` orders them: what the landscape filters and sorts, read fast.
    The classification JSON (evidence, review, curated) only when asked for. `current_only`
    leaves out studies gone from the registry or renumbered (the change stream keeps them:
    their last changes say so)."""
    cols = [getattr(StudyRow, c) for c in SUMMARY_COLUMNS]
    if with_classification:
        cols.append(StudyRow.classification)
    stmt = select(*cols)
    if current_only:
        stmt = stmt.where(StudyRow.merged_into.is_(None), StudyRow.gone.is_(False))
    if in_scope is not None:
        stmt = stmt.where(StudyRow.in_scope.is_(in_scope))
    return list(session.execute(stmt.order_by(StudyRow.last_update_post_date.desc(), StudyRow.nct_id)))


def study_summaries_of(session: Session, nct_ids: Sequence[str]) -> list[Any]:
    """These studies' summary columns as light rows (`study_summaries`' columns), gone and
    renumbered ones too."""
    cols = [getattr(StudyRow, c) for c in SUMMARY_COLUMNS]
    out: list[Any] = []
    for start in range(0, len(nct_ids), 500):
        chunk = list(nct_ids[start : start + 500])
        out.extend(session.execute(select(*cols).where(StudyRow.nct_id.in_(chunk))))
    return out


def classifications(session: Session, nct_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored classification (with evidence) of these studies."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(nct_ids), 500):
        chunk = list(nct_ids[i : i + 500])
        for nct, c in session.execute(
            select(StudyRow.nct_id, StudyRow.classification).where(StudyRow.nct_id.in_(chunk))
        ):
            out[nct] = c or {}
    return out


def review_marks(session: Session, nct_ids: Sequence[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Of these studies' stored classifications only the review reasons and curators' marks,
    picked out by the database: a download of every study marks each row, and reading each
    classification whole (its evidence, quoted from the record) was a fifth of its time."""
    c = StudyRow.classification
    out: dict[str, tuple[list[str], list[str]]] = {}
    for i in range(0, len(nct_ids), 500):
        chunk = list(nct_ids[i : i + 500])
        rows = session.execute(
            select(StudyRow.nct_id, c["review"], c["curated"]).where(StudyRow.nct_id.in_(chunk))
        )
        for nct, review, curated in rows:
            out[nct] = (review or [], curated or [])
    return out


def recheck_candidates(session: Session, registered_on: str = "ctgov") -> list[str]:
    """Studies of one registry we track and still expect in it: re-read by number when a
    search misses them."""
    return list(
        session.scalars(
            select(StudyRow.nct_id)
            .where(
                StudyRow.gone.is_(False),
                StudyRow.merged_into.is_(None),
                StudyRow.registered_on == registered_on,
            )
            .order_by(StudyRow.nct_id)
        )
    )


def update_dates(session: Session, registered_on: str) -> dict[str, str | None]:
    """The last update date each tracked study of one registry was read with (a CTIS poll
    reads in full only the trials whose search listing shows a later one)."""
    stmt = select(StudyRow.nct_id, StudyRow.last_update_post_date).where(
        StudyRow.registered_on == registered_on, StudyRow.merged_into.is_(None)
    )
    return {n: d for n, d in session.execute(stmt)}


def study_row(session: Session, nct_id: str) -> StudyRow | None:
    """A tracked study's row (any state), or None."""
    return session.get(StudyRow, nct_id)


def tracked_ids(session: Session, nct_ids: Sequence[str]) -> set[str]:
    """Which of these ids ctmonitor has stored (whatever their state)."""
    return set(session.scalars(select(StudyRow.nct_id).where(StudyRow.nct_id.in_(list(nct_ids)))))


def count_tracked(session: Session, registered_on: str | None = "ctgov") -> int:
    """Studies tracked (of one registry, ClinicalTrials.gov's by default; None: all)."""
    stmt = (
        select(func.count())
        .select_from(StudyRow)
        .where(StudyRow.gone.is_(False), StudyRow.merged_into.is_(None))
    )
    if registered_on is not None:
        stmt = stmt.where(StudyRow.registered_on == registered_on)
    return session.scalar(stmt) or 0


def touch(session: Session, nct_ids: Sequence[str], now: datetime) -> None:
    """Studies a poll fetched unchanged: those last fetched with an earlier field list are
    now known to have had nothing in the parts newly asked for (their bytes did not move).
    Every other row is left as it was: a weekly full re-read of 100,000 studies would
    otherwise rewrite every row of the table each week for nothing (on PostgreSQL, a new
    row version each: gigabytes of dead rows a year that every scan of the table reads)."""
    for start in range(0, len(nct_ids), 900):
        session.execute(
            update(StudyRow)
            .where(
                StudyRow.nct_id.in_(nct_ids[start : start + 900]), StudyRow.fields_version < FIELDS_VERSION
            )
            .values(last_seen_at=now, fields_version=FIELDS_VERSION)
        )


def count_stale_fields(session: Session) -> int:
    """Tracked studies last fetched with an earlier field list (a full poll brings them up)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(StudyRow)
            .where(
                StudyRow.fields_version < FIELDS_VERSION,
                StudyRow.gone.is_(False),
                StudyRow.merged_into.is_(None),
                StudyRow.registered_on == "ctgov",
            )
        )
        or 0
    )


def study_columns(st: Study, chash: str) -> dict[str, Any]:
    """The studies-row columns derived from the normalized record (and its content hash)."""
    return {
        "brief_title": st.title,
        "overall_status": st.overall_status,
        "study_type": st.study_type,
        "phases": tuple(st.phases),
        "lead_sponsor": st.lead_sponsor,
        "countries": tuple(st.countries),
        "first_post_date": st.first_post_date,
        "last_update_post_date": st.last_update_post_date,
        "enrollment_count": st.enrollment_count,
        "start_date": st.start_date.date[:10] if st.start_date else None,
        "primary_completion_date": (
            st.primary_completion_date.date[:10] if st.primary_completion_date else None
        ),
        "site_count": len(st.sites),
        "registered_on": registry_of(st.nct_id),
        "registrations": tuple(f"{r.registry}:{r.id}" for r in registrations(st)[1:]),
        # the registry's own words for the status where they are not the reader's (CTIS,
        # ICTRP's registers): shown beside it, and instead of "unknown" when unmapped
        "registry_status": st.registry_status,
        "content_hash": chash,
    }


def _study_values(w: StudyWrite) -> dict[str, Any]:
    return {
        **study_columns(w.study, w.content_hash),
        "raw_hash": w.raw_hash,
        "in_query": w.in_query,
        "gone": False,
        "fields_version": FIELDS_VERSION,
        **(w.classification or {}),
    }


def write_batch(session: Session, writes: Sequence[StudyWrite], *, run_id: int | None, now: datetime) -> int:
    """Store one page's worth of processed records. Returns the number of events written."""
    snap_writes = [w for w in writes if w.snapshot_seq is not None]
    if snap_writes:
        rows = [
            {
                "nct_id": w.study.nct_id,
                "seq": w.snapshot_seq,
                "raw_hash": w.raw_hash,
                "content_hash": w.content_hash,
                "raw": w.raw_compressed if w.raw_compressed is not None else compress(w.raw_json),
                "last_update_post_date": w.study.last_update_post_date,
                "origin": w.origin,
                "registry_version": w.registry_version,
                "run_id": run_id,
                "fetched_at": now,
            }
            for w in snap_writes
        ]
        insert_rows(session, Snapshot.__table__, rows)

    new_rows = []
    updates: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for w in writes:
        values = _study_values(w)
        if w.is_new:
            new_rows.append(
                {
                    "nct_id": w.study.nct_id,
                    **values,
                    "snapshot_count": w.snapshot_seq or 0,
                    "merged_into": None,
                    "first_seen_at": now,
                    "last_seen_at": now,
                    "first_seen_run_id": run_id,
                }
            )
        else:
            values["last_seen_at"] = now
            if w.snapshot_seq is not None:
                values["snapshot_count"] = w.snapshot_seq
            updates.setdefault(tuple(values), []).append({"_nct_id": w.study.nct_id, **values})
    if new_rows:
        insert_rows(session, StudyRow.__table__, new_rows)
    table = StudyRow.__table__
    for keys, rows in updates.items():  # one executemany per shape of row (a page has one or two)
        stmt = (
            update(table)
            .where(table.c.nct_id == bindparam("_nct_id"))
            .values({k: bindparam(k) for k in keys})
        )
        session.execute(stmt, rows)
    index.mark(session, [w.study.nct_id for w in writes])

    event_rows = [
        event_row(
            w.study.nct_id,
            c,
            run_id=run_id,
            snapshot_seq=w.snapshot_seq,
            registry_date=w.study.last_update_post_date,
            now=now,
            origin=w.origin,
        )
        for w in writes
        for c in w.changes
    ]
    if event_rows:
        insert_rows(session, Event.__table__, event_rows)
    return len(event_rows)


def mark_merged(session: Session, old_id: str, new_id: str) -> None:
    session.execute(
        update(StudyRow).where(StudyRow.nct_id == old_id).values(merged_into=new_id, in_query=False)
    )
    index.mark(session, [old_id])


def mark_gone(session: Session, nct_id: str) -> None:
    session.execute(update(StudyRow).where(StudyRow.nct_id == nct_id).values(gone=True, in_query=False))
    index.mark(session, [nct_id])


def study_totals(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(StudyRow.gone, StudyRow.in_query, StudyRow.merged_into.is_(None), func.count()).group_by(
            StudyRow.gone, StudyRow.in_query, StudyRow.merged_into.is_(None)
        )
    )
    totals = {"tracked": 0, "in_query": 0, "left_query": 0, "gone": 0, "merged": 0}
    for gone, in_query, not_merged, n in rows:
        if not not_merged:
            totals["merged"] += n
        elif gone:
            totals["gone"] += n
        else:
            totals["tracked"] += n
            totals["in_query" if in_query else "left_query"] += n
    return totals


def registry_totals(session: Session) -> dict[str, int]:
    """Current registrations (not gone, not renumbered) per registry, and how many trials
    they make (core.trials: a registration standing alone, or for its trial)."""
    current = (StudyRow.gone.is_(False), StudyRow.merged_into.is_(None))
    out = dict(
        session.execute(
            select(StudyRow.registered_on, func.count()).where(*current).group_by(StudyRow.registered_on)
        ).all()
    )
    standing = StudyRow.trial_id.is_(None) | (StudyRow.trial_id == StudyRow.nct_id)
    out["trials"] = session.scalar(select(func.count()).select_from(StudyRow).where(*current, standing)) or 0
    return out


def study_versions(session: Session, nct_id: str) -> list[Version]:
    """Every stored version of a study, oldest first (seq order is chronological), normalized."""
    from monitor.core.records import study_of

    rows = session.execute(
        select(
            Snapshot.seq,
            Snapshot.origin,
            Snapshot.registry_version,
            Snapshot.last_update_post_date,
            Snapshot.fetched_at,
            Snapshot.raw,
        )
        .where(Snapshot.nct_id == nct_id)
        .order_by(Snapshot.seq)
    )
    return [
        Version(seq, origin, reg, posted, fetched, study_of(nct_id, decompress_bytes(raw)))
        for seq, origin, reg, posted, fetched, raw in rows
    ]


def study_rows(session: Session, nct_ids: Sequence[str] | None = None) -> dict[str, StudyRow]:
    """Stored study rows by NCT id: all of them, or those named."""
    stmt = select(StudyRow)
    if nct_ids is not None:
        stmt = stmt.where(StudyRow.nct_id.in_(list(nct_ids)))
    return {r.nct_id: r for r in session.scalars(stmt)}


def registry_versions(session: Session, events: Sequence[Any]) -> dict[int, tuple[int | None, int | None]]:
    """Registry version numbers of each event's snapshot and the one before, where known
    (backfilled snapshots carry them): what a link to the registry's own comparison needs."""
    keys = {(e.nct_id, e.snapshot_seq) for e in events if e.snapshot_seq and e.snapshot_seq > 1}
    if not keys:
        return {}
    wanted = {(n, q) for n, q in keys} | {(n, q - 1) for n, q in keys}
    ids = sorted({n for n, _ in wanted})
    known: dict[tuple[str, int], int] = {}
    for n, q, v in session.execute(
        select(Snapshot.nct_id, Snapshot.seq, Snapshot.registry_version).where(
            Snapshot.nct_id.in_(ids), Snapshot.registry_version.is_not(None)
        )
    ):
        known[(n, q)] = v
    out = {}
    for e in events:
        if e.snapshot_seq and (e.nct_id, e.snapshot_seq) in known and (e.nct_id, e.snapshot_seq - 1) in known:
            out[e.id] = (known[(e.nct_id, e.snapshot_seq - 1)], known[(e.nct_id, e.snapshot_seq)])
    return out


def current_study_rows(session: Session) -> list[StudyRow]:
    """Every stored study that was not merged into another (gone ones included)."""
    return list(session.scalars(select(StudyRow).where(StudyRow.merged_into.is_(None))))

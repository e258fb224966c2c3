"""SQLAlchemy 2 tables. Declarations only: the schema itself is created by Alembic.

A test compares these declarations with what `alembic upgrade head` builds, so the two
cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL, JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
# A registration's number: an NCT id, an EU CT number (2024-510663-34-00), a ChiCTR or jRCT
# number. 40 characters on PostgreSQL (migration 0015); SQLite enforces no length, and its
# tables keep the type they were made with rather than be copied whole to widen it.
StudyId = String(40).with_variant(String(11), "sqlite")
# 64-bit ids on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LabelList(TypeDecorator[tuple[str, ...]]):
    """A short list of labels (phases, countries, targets, indication groups) kept as one
    "|"-joined text column, so a row filters and sorts without a join. The joining and
    splitting happen here only: Python sees a tuple (empty for none), the database sees
    text or NULL. A label never contains "|" (the vocabulary and the registry's phase and
    country names do not)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: object, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            raise TypeError(f"a LabelList column takes a sequence of labels, not the string {value!r}")
        labels = [str(v) for v in value]  # type: ignore[attr-defined]
        if any("|" in v for v in labels):
            raise ValueError(f"a label cannot contain '|': {labels!r}")
        return "|".join(labels) or None

    def process_result_value(self, value: str | None, dialect: Dialect) -> tuple[str, ...]:
        return tuple(value.split("|")) if value else ()


class ShortLabelList(LabelList):
    """A LabelList in a bounded column (the phases: at most two, "PHASE1|PHASE2")."""

    impl = String(64)
    cache_ok = True


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PollRun(Base):
    """One poll: what it asked, what it got, how it ended."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    mode: Mapped[str] = mapped_column(String(16))  # full | incremental
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # running | ok | unchanged | failed | crashed
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    window_start: Mapped[str | None] = mapped_column(String(10))
    data_timestamp: Mapped[str | None] = mapped_column(String(32))
    query_hash: Mapped[str | None] = mapped_column(String(64))  # a changed watch query forces a full sync
    requests: Mapped[int] = mapped_column(Integer, default=0)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    expected: Mapped[int] = mapped_column(Integer, default=0)
    new_studies: Mapped[int] = mapped_column(Integer, default=0)
    changed_studies: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    # studies whose newly fetched fields were recorded as a baseline (migration 0007)
    baselined: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    host: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    # what an import read (the file's name; migration 0015)
    source: Mapped[str | None] = mapped_column(Text)


class StudyRow(Base):
    """Every study ctmonitor tracks: flags, hashes, and the summary columns listings filter on.

    The full current version is the study's newest snapshot.
    """

    __tablename__ = "studies"

    nct_id: Mapped[str] = mapped_column(StudyId, primary_key=True)
    brief_title: Mapped[str | None] = mapped_column(Text)
    overall_status: Mapped[str | None] = mapped_column(String(32), index=True)
    study_type: Mapped[str | None] = mapped_column(String(32))
    phases: Mapped[tuple[str, ...]] = mapped_column(ShortLabelList, nullable=True)
    lead_sponsor: Mapped[str | None] = mapped_column(Text)
    countries: Mapped[tuple[str, ...]] = mapped_column(LabelList, nullable=True)
    first_post_date: Mapped[str | None] = mapped_column(String(10))
    last_update_post_date: Mapped[str | None] = mapped_column(String(10))
    enrollment_count: Mapped[int | None] = mapped_column(Integer)  # migration 0008
    start_date: Mapped[str | None] = mapped_column(String(10))  # as written: 2024, 2024-03 or 2024-03-15
    primary_completion_date: Mapped[str | None] = mapped_column(String(10))  # migration 0012
    site_count: Mapped[int | None] = mapped_column(Integer)  # migration 0012
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_hash: Mapped[str] = mapped_column(String(64))
    snapshot_count: Mapped[int] = mapped_column(Integer, default=0)
    in_query: Mapped[bool] = mapped_column(Boolean, default=True)
    gone: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[str | None] = mapped_column(StudyId)
    # the field list the latest record was fetched with (monitor.core.protocol.FIELDS_VERSION)
    fields_version: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    first_seen_at: Mapped[datetime] = mapped_column(DateTime)
    # when a poll last stored something of it (a version, its state, its field list); a
    # record fetched unchanged leaves the row alone (store.studies.touch)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    first_seen_run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("poll_runs.id"))
    # Classification (monitor/classify.py): summary columns to filter on, the full result with evidence.
    in_scope: Mapped[bool | None] = mapped_column(Boolean, index=True)
    scope_reason: Mapped[str | None] = mapped_column(Text)
    modality: Mapped[str | None] = mapped_column(String(32), index=True)
    targets: Mapped[tuple[str, ...]] = mapped_column(LabelList, nullable=True)  # e.g. ("CD19/BCMA",)
    indications: Mapped[tuple[str, ...]] = mapped_column(LabelList, nullable=True)  # indication groups
    cell_source: Mapped[str | None] = mapped_column(String(32))
    product: Mapped[str | None] = mapped_column(Text)  # the primary product: products[0]
    products: Mapped[tuple[str, ...]] = mapped_column(LabelList, nullable=True)  # canonical names
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    classification: Mapped[dict | None] = mapped_column(Json)
    classified_with: Mapped[str | None] = mapped_column(String(32))
    # what free-text search reads beyond the columns (monitor.core.landscape.search_text; 0008)
    # the registry of its own registration (ctgov, ctis, ...; core.registrations) and the
    # other registrations its record names, "registry:number" (migration 0015)
    registered_on: Mapped[str] = mapped_column(String(8), index=True, default="ctgov", server_default="ctgov")
    registrations: Mapped[tuple[str, ...]] = mapped_column(LabelList, nullable=True)
    # the trial it belongs to (core.trials; migration 0016): the standing registration's
    # number, every registration of the trial (standing first; NULL alone), and on the
    # standing row whether their statuses agree ("agree"/"disagree"; a flip is an event)
    trial_id: Mapped[str | None] = mapped_column(StudyId, index=True)
    trial_registrations: Mapped[tuple[str, ...]] = mapped_column(LabelList, nullable=True)
    trial_status: Mapped[str | None] = mapped_column(String(16))
    # the registry's own words for its status, where they differ from the reader's (0016)
    registry_status: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str | None] = mapped_column(Text)  # vocabulary + overrides version


class Snapshot(Base):
    """Append-only: every distinct version of a record we fetched, raw JSON kept compressed.

    The normalized form is not stored here: it is derived from `raw` on demand, so an
    improved normalizer applies to history too.
    """

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("nct_id", "seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(StudyId, index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3... per study, in the order we stored them
    raw_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # zstd-compressed JSON, as fetched
    last_update_post_date: Mapped[str | None] = mapped_column(String(10))
    origin: Mapped[str] = mapped_column(String(16), default="poll")  # poll | backfill
    registry_version: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("poll_runs.id"))
    fetched_at: Mapped[datetime] = mapped_column(DateTime)


class Event(Base):
    """One tracked change. Detection writes it; delivery reads it."""

    __tablename__ = "events"
    __table_args__ = (
        # An event belongs to the snapshot that introduced it; the same change cannot be stored twice.
        UniqueConstraint("nct_id", "snapshot_seq", "kind", "field", "item_key"),
        ForeignKeyConstraint(["nct_id", "snapshot_seq"], ["snapshots.nct_id", "snapshots.seq"]),
        Index("ix_events_nct_detected", "nct_id", "detected_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    nct_id: Mapped[str] = mapped_column(StudyId)
    run_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("poll_runs.id"), index=True)
    snapshot_seq: Mapped[int | None] = mapped_column(Integer)  # None: no new record version (e.g. gone)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    field: Mapped[str] = mapped_column(String(64))
    item_key: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[object | None] = mapped_column(Json)
    after: Mapped[object | None] = mapped_column(Json)
    importance: Mapped[int] = mapped_column(SmallInteger)
    registry_date: Mapped[str | None] = mapped_column(String(10))
    detected_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    origin: Mapped[str] = mapped_column(String(16), default="poll")
    held: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime)


class SubscriberRow(Base):
    """One subscriber (migration 0010): from config.toml (`managed_by` "file": created or
    updated at each start) or signed up in the browser ("web"). `preferences` holds the
    filters as config.toml spells them; `status` is pending (awaiting confirmation:
    nothing is sent), active, paused, unsubscribed or removed (gone from the file);
    `link_generation` is the valid generation of their signed links (raising it revokes
    every earlier link); `seen_upto_event_id` is the reader's last look on the web; `settled_upto`
    the floor below which every event is settled for them (migration 0018)."""

    __tablename__ = "subscribers"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True, default="", server_default="")
    preferences: Mapped[dict[str, object]] = mapped_column(Json)
    channel: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(16))
    managed_by: Mapped[str] = mapped_column(String(8))
    link_generation: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    seen_upto_event_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # every event up to here is settled for them (migration 0018; store.deliveries)
    settled_upto: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime)


class WebAttempt(Base):
    """A sign-up or a failed administrator login, for rate limits and the login back-off.
    Keys are hashes (of the address, of the client), never the address itself."""

    __tablename__ = "web_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    address_key: Mapped[str] = mapped_column(String(64), default="", server_default="")
    client_key: Mapped[str] = mapped_column(String(64), default="", server_default="")


class AppSecret(Base):
    """Keys created once and shared by every process on the database (the link signer's)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One attempt to mail one subscriber: written before sending, settled after the server answers.

    `sending` left behind means the process died mid-send: the next send marks it
    `interrupted` and, since nothing was recorded as delivered, mails those events again.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(16))  # changes | landscape | nothing | alert | recovery
    status: Mapped[str] = mapped_column(String(16), index=True)  # sending | sent | failed | interrupted
    created_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    period_start: Mapped[datetime | None] = mapped_column(DateTime)
    period_end: Mapped[datetime] = mapped_column(DateTime)
    message_id: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(Text)
    events: Mapped[int] = mapped_column(Integer, default=0)  # events this message accounts for
    listed: Mapped[int] = mapped_column(Integer, default=0)  # of which listed one by one
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    # A landscape digest accounts for every event up to this id without listing them.
    upto_event_id: Mapped[int | None] = mapped_column(BigId)
    error: Mapped[str | None] = mapped_column(Text)


class DeliveredEvent(Base):
    """Event X is settled for subscriber Y: mailed (listed or counted), or outside their filters.

    Mailed events are written only after the mail server accepted the message; the
    primary key makes a second record of the same event for the same subscriber impossible.
    Filtered-out events are settled too, so a later filter edit does not unearth old news.
    """

    __tablename__ = "delivered_events"

    subscriber: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("events.id"), primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("deliveries.id"), index=True)
    how: Mapped[str] = mapped_column(String(12))  # listed | summarised | filtered


class ReportRun(Base):
    """A report's selection, kept so the next report with the same filters can say what moved."""

    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    filters: Mapped[str] = mapped_column(Text, index=True)
    since: Mapped[datetime | None] = mapped_column(DateTime)
    until: Mapped[datetime | None] = mapped_column(DateTime)
    study_ids: Mapped[list | None] = mapped_column(Json)
    selection: Mapped[dict | None] = mapped_column(Json)


class JobRun(Base):
    """One run of a scheduled job (poll, full, digest): when, how it ended. Drives catch-up and alerts."""

    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(32), index=True)
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # running | ok | failed | skipped
    detail: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))


class Backfill(Base):
    """The registry's own version history of one study, as far as `ctmonitor backfill` fetched it.

    `versions` is the registry's list of versions (number, date, status, changed modules),
    kept whole: it gives the status timeline from registration with one request, including
    versions published between two of our polls. `cut_version` is the last registry version
    that predates our first polled record; versions 0..cut are fetched and stored as
    snapshots with negative seq (so a study's snapshots sort chronologically by seq), and
    `stored_through` says how far that got, which is what makes a run resumable.
    """

    __tablename__ = "backfills"

    nct_id: Mapped[str] = mapped_column(StudyId, primary_key=True)
    # running | done | empty | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    versions: Mapped[list | None] = mapped_column(Json)
    cut_version: Mapped[int | None] = mapped_column(Integer)
    stored_through: Mapped[int | None] = mapped_column(Integer)  # highest registry version stored
    events: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)


class PublicationRow(Base):
    """A paper, preprint or abstract linked to tracked studies (monitor.core.literature).

    One row per paper, whichever services described it (`key`: PMID, else DOI, else the
    service's own id); the latest description wins, and the text is kept as the service sent it.
    """

    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    pmid: Mapped[str | None] = mapped_column(String(16), index=True)
    pmcid: Mapped[str | None] = mapped_column(String(16))
    doi: Mapped[str | None] = mapped_column(Text)
    europepmc_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[list | None] = mapped_column(Json)
    journal: Mapped[str | None] = mapped_column(Text)
    year: Mapped[str | None] = mapped_column(String(4))
    pub_date: Mapped[str | None] = mapped_column(String(10))
    abstract: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class StudyPublication(Base):
    """A paper linked to a study by one service (pubmed, europepmc), through the registry
    number it cites. `baseline`: found in the study's first search, recorded without an event."""

    __tablename__ = "study_publications"

    nct_id: Mapped[str] = mapped_column(StudyId, primary_key=True)
    publication_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("publications.id"), primary_key=True, index=True
    )
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    cites: Mapped[str] = mapped_column(String(40))
    found_at: Mapped[datetime] = mapped_column(DateTime)
    baseline: Mapped[bool] = mapped_column(Boolean, default=False)


class LiteratureCheck(Base):
    """How far one service has been searched for one study's registry numbers: a study
    without a row gets its whole history searched (a baseline); later searches start
    `overlap_days` before `checked_through`."""

    __tablename__ = "literature_checks"

    nct_id: Mapped[str] = mapped_column(StudyId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    checked_through: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, inclusive


class LiteratureRun(Base):
    """One search of one literature service for the tracked studies (`ctmonitor literature`)."""

    __tablename__ = "literature_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str] = mapped_column(String(16))  # running | ok | failed | stopped
    studies: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    found: Mapped[int] = mapped_column(Integer, default=0)  # papers the service returned
    linked: Mapped[int] = mapped_column(Integer, default=0)  # new study-paper links
    events: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)


# the landscape's index (migration 0017), declared beside the tables it indexes
from monitor.store.index_tables import StudyKey, StudyTerm  # noqa: E402, F401

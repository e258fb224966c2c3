"""What a digest is made of: the views of events and studies it reads, the poll health it
reports, and the parts it is built into (change lines, study blocks, sections). Pure data;
monitor.core.digest builds them, monitor.publishing.render renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.core.describe import count


@dataclass(frozen=True, slots=True)
class EventView:
    """An event as the digest needs it (a models.Event row has these attributes)."""

    id: int
    nct_id: str
    kind: str
    field: str
    before: Any
    after: Any
    importance: int
    registry_date: str | None
    detected_at: datetime
    run_id: int | None = None
    origin: str = "poll"
    versions: tuple[int | None, int | None] = (None, None)  # registry version numbers, when known
    item_key: str = ""  # the item of a list field (a site's facility | city | state | country)
    arrival: str | None = None  # a new study's: registered, found or baseline (core.news)

    @classmethod
    def of(
        cls,
        e: Any,
        versions: tuple[int | None, int | None] = (None, None),
        *,
        arrival: str | None = None,
        importance: int | None = None,
    ) -> EventView:
        """The event as a reader sees it: `arrival` and `importance` as core.news judged them."""
        return cls(
            e.id,
            e.nct_id,
            e.kind,
            e.field,
            e.before,
            e.after,
            e.importance if importance is None else importance,
            e.registry_date,
            e.detected_at,
            e.run_id,
            e.origin,
            versions,
            getattr(e, "item_key", "") or "",
            None if arrival is None else str(arrival),
        )

    @classmethod
    def of_change(cls, c: Any, versions: tuple[int | None, int | None] = (None, None)) -> EventView:
        """A store.ReaderChange."""
        return cls.of(c.event, versions, arrival=c.arrival, importance=c.importance)


@dataclass(frozen=True, slots=True)
class StudyView:
    """The study facts a digest item shows (a models.StudyRow has these attributes)."""

    nct_id: str
    brief_title: str | None
    overall_status: str | None
    phases: tuple[str, ...]
    lead_sponsor: str | None
    modality: str | None
    targets: tuple[str, ...]
    indications: tuple[str, ...]
    cell_source: str | None
    in_scope: bool | None
    first_post_date: str | None
    # the trial it belongs to (core.trials): the standing registration's number, and every
    # registration of the trial, "registry:number" (empty for a registration alone)
    trial_id: str | None = None
    trial_registrations: tuple[str, ...] = ()

    @classmethod
    def of(cls, row: Any) -> StudyView:
        return cls(*(getattr(row, f, None) for f in cls.__dataclass_fields__))

    @property
    def trial(self) -> str:
        return self.trial_id or self.nct_id


@dataclass(frozen=True, slots=True)
class Health:
    """How complete the picture behind a digest is."""

    last_ok_at: datetime | None
    data_timestamp: str | None
    fetched: int
    expected: int
    last_outcome: str | None
    last_at: datetime | None
    last_error: str | None
    held_events: int = 0
    in_progress_events: int = 0  # recorded by a poll still running: published when it ends

    def warning(self, now: datetime, stale_after: timedelta = timedelta(days=8)) -> str | None:
        """A sentence for the top of the digest when the reader should not trust it blindly."""
        if self.last_ok_at is None:
            return "No poll has succeeded yet: this digest may be missing changes."
        notes = []
        if self.last_outcome in ("failed", "crashed") and self.last_at:
            why = f": {self.last_error}" if self.last_error else ""
            notes.append(
                f"The last poll ({self.last_at:%d %b %Y %H:%M} UTC) {self.last_outcome}{why}. Changes the "
                f"registry posted since {self.last_ok_at:%d %b %Y} may be missing; they will be in the next "
                "digest once a poll succeeds."
            )
        elif now - self.last_ok_at > stale_after:
            notes.append(
                f"The last successful poll was on {self.last_ok_at:%d %b %Y}: "
                "changes since then are not here yet."
            )
        if self.expected and self.fetched != self.expected:
            notes.append(
                f"The last poll fetched {self.fetched} of the {count(self.expected, 'study')} "
                "the registry counted."
            )
        if self.held_events:
            notes.append(
                f"{self.held_events} changes are held for review (an unusually large share of studies "
                "changed at once) and are not included until an administrator releases them."
            )
        return " ".join(notes) or None

    def summary(self) -> str:
        if self.last_ok_at is None:
            return "no successful poll yet"
        text = f"last successful poll {self.last_ok_at:%d %b %Y %H:%M} UTC"
        if self.data_timestamp:
            text += f" (registry data of {self.data_timestamp.replace('T', ' ')})"
        if self.expected:
            expected = count(self.expected, "study")
            text += f"; the last full reconciliation fetched {self.fetched} of {expected}"
        if n := self.in_progress_events:
            found = f"{n} changes it had found so far are" if n != 1 else "1 change it had found so far is"
            text += f"; a poll was still running: the {found} left out until it ends"
        return text


@dataclass(slots=True)
class ChangeLine:
    kind: str
    label: str  # "Status", "Site added", "Newly registered"...
    text: str
    registry_date: str | None
    importance: int
    compare_url: str | None = None
    # changed criteria or outcome texts, word by word: ((what, ((op, words), ...)), ...)
    edits: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    lead: str = ""  # the words before the edits ("2 criteria changed")
    # where to read more: a paper's DOI and PubMed pages, posted results' tables
    links: tuple[tuple[str, str], ...] = ()
    # the registration it came from, when its trial is registered more than once
    # ("EU CTIS 2024-510663-34-00"); empty for a study registered once
    source: str = ""


@dataclass(slots=True)
class StudyBlock:
    nct_id: str
    url: str
    history_url: str
    title: str
    labels: str  # "CAR-T · CD19 · autologous · SLE, lupus nephritis"
    sponsor: str
    phase: str
    status: str
    changes: list[ChangeLine] = field(default_factory=list)
    # the trial's other registrations: (registry name, number, registry page)
    also: tuple[tuple[str, str, str], ...] = ()

    @property
    def also_text(self) -> str:
        return ", ".join(f"{name} {number}" for name, number, _ in self.also)


@dataclass(slots=True)
class Section:
    key: str
    title: str
    blocks: list[StudyBlock]
    events: int


@dataclass(slots=True)
class Landscape:
    """The starting picture a subscriber's first digest shows instead of the backlog."""

    studies: int
    by_modality: list[tuple[str, int]]
    by_indication: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    recent_days: int
    recent: list[StudyBlock]


@dataclass(slots=True)
class Digest:
    subscriber: str
    kind: str  # changes | landscape | nothing
    subject: str
    period_start: datetime | None
    period_end: datetime
    sections: list[Section]
    counts: list[tuple[str, int]]  # header: ("status changes", 3)
    events: int  # events this digest accounts for
    listed: int  # of which listed one by one
    omitted: list[tuple[str, int]]  # counted, not listed: ("Site added", 40)
    health_summary: str
    warning: str | None
    filters: str
    report_hint: str
    report_page_url: str = ""  # the web report for the reader's filters, when the web is reachable
    landscape: Landscape | None = None
    listed_ids: frozenset[int] = frozenset()
    all_ids: frozenset[int] = frozenset()
    # the studies whose changes were left out, compactly: (NCT id, headline, changes), the
    # most important first; at most OMITTED_LISTED, the rest counted in omitted_more
    omitted_studies: list[tuple[str, str, int]] = field(default_factory=list)
    omitted_more: int = 0
    landscape_url: str = ""  # the web's landscape with this reader's filters (landscape digest)
    unsubscribe_url: str = ""  # the reader's signed one-click link (with web.base_url set)
    manage_url: str = ""  # the reader's own page: filters, pause, leave, since their last look
    filters_by_file: bool = True  # the filters are an administrator's (config.toml), not the reader's
    studies_on_web: bool = False  # study links open ctmonitor's pages, not the registry's

    @property
    def omitted_total(self) -> int:
        return sum(n for _, n in self.omitted)

    @property
    def has_compare(self) -> bool:
        """Whether any listed change links to the registry's version comparison (the footer
        promises it only then)."""
        return any(c.compare_url for s in self.sections for b in s.blocks for c in b.changes)


@dataclass(frozen=True, slots=True)
class DigestOptions:
    study_url: str = "https://clinicaltrials.gov/study/{nct_id}"
    subject_prefix: str = "[ctmonitor]"
    new_within_days: int = 30
    report_url: str = ""
    web_url: str = ""  # ctmonitor serve's public base URL, when set
    report_page_url: str = ""  # the web report for this reader's filters (a page of the site)

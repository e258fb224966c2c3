"""Plain value types shared by every layer: no I/O, no SQLAlchemy, no httpx.

The normalized `Study` is what ctmonitor compares between polls. It holds only the
fields we track or classify on, already cleaned (whitespace, markdown escapes, the
enrollment sentinel, MeSH id padding), so that a registry reformatting never looks
like a change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

NCT_RE = re.compile(r"^NCT(?!0{8})\d{8}$")  # NCT00000000 was never issued


class UserError(Exception):
    """Bad input from the user (config, arguments, files): reported in one line, exit 2."""


def check_nct_id(value: str) -> str:
    """Return the canonical form of an NCT id or raise UserError.

    We accept lower case (the registry does too) but insist on NCT + 8 digits, because
    that is what every record carries and what users paste from the website. NCT00000000
    is not an id the registry ever issued.
    """
    candidate = value.strip().upper()
    if not NCT_RE.match(candidate):
        raise UserError(
            f"not an NCT id: {value!r} (expected NCT followed by 8 digits, not all zero, e.g. NCT05085418)"
        )
    return candidate


# ClinicalTrials.gov overallStatus values (API 2.0.5 enum Status).
OVERALL_STATUSES = frozenset(
    {
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "ENROLLING_BY_INVITATION",
        "ACTIVE_NOT_RECRUITING",
        "SUSPENDED",
        "TERMINATED",
        "COMPLETED",
        "WITHDRAWN",
        "UNKNOWN",
        "AVAILABLE",
        "NO_LONGER_AVAILABLE",
        "TEMPORARILY_NOT_AVAILABLE",
        "APPROVED_FOR_MARKETING",
        "WITHHELD",
    }
)


class EventKind(StrEnum):
    """The closed set of changes ctmonitor records. Every output speaks this vocabulary."""

    NEW_STUDY = "new_study"
    STATUS = "status_change"
    WHY_STOPPED = "why_stopped_change"
    ENROLLMENT = "enrollment_change"
    DATE = "date_change"
    PHASE = "phase_change"
    CONDITION_ADDED = "condition_added"
    CONDITION_REMOVED = "condition_removed"
    INTERVENTION_ADDED = "intervention_added"
    INTERVENTION_REMOVED = "intervention_removed"
    ARM_ADDED = "arm_added"
    ARM_REMOVED = "arm_removed"
    SITE_ADDED = "site_added"
    SITE_REMOVED = "site_removed"
    SITE_STATUS = "site_status_change"
    RESULTS_POSTED = "results_posted"
    RESULTS_REMOVED = "results_removed"
    SPONSOR = "sponsor_change"
    TITLE = "title_change"
    LEFT_QUERY = "left_query"
    REJOINED_QUERY = "rejoined_query"
    GONE = "gone_from_registry"
    RESTORED = "back_in_registry"
    ID_CHANGED = "id_changed"
    ENTERED_SCOPE = "entered_scope"
    LEFT_SCOPE = "left_scope"
    ELIGIBILITY = "eligibility_change"
    OUTCOME_ADDED = "outcome_added"
    OUTCOME_REMOVED = "outcome_removed"
    OUTCOME_CHANGE = "outcome_change"
    DESIGN = "design_change"
    PUBLICATION_ADDED = "publication_added"
    PUBLICATION_REMOVED = "publication_removed"
    # Found in the literature (PubMed, Europe PMC) by the trial's registry numbers, not in
    # the record: the record's own references are publication_added.
    PUBLICATION_FOUND = "publication_found"
    RESULTS_UPDATED = "results_updated"
    # A trial registered on several registries whose statuses came to disagree (one open to
    # patients, another closed or ended), or agree again (core.trials).
    ACROSS_REGISTRIES = "status_across_registries"
    # An EU CTIS application: a substantial or non-substantial modification, a member state
    # added, or a decision on one (core.ctis_history).
    MODIFICATION = "modification"


def check_kinds(values: Any) -> tuple[str, ...]:
    """Event kinds as given by a user (an option, a URL, config.toml), or UserError naming
    the valid ones."""
    valid = [k.value for k in EventKind]
    out = []
    for v in values or ():
        k = str(v).strip().lower()
        if k not in valid:
            raise UserError(f"kind: unknown value {v!r}; valid: {', '.join(valid)}")
        out.append(k)
    return tuple(out)


# 3 = act on it (status, results, new study), 2 = worth knowing, 1 = detail.
IMPORTANCE: dict[EventKind, int] = {
    EventKind.NEW_STUDY: 3,
    EventKind.STATUS: 3,
    EventKind.WHY_STOPPED: 3,
    EventKind.RESULTS_POSTED: 3,
    EventKind.GONE: 3,
    EventKind.ID_CHANGED: 2,
    EventKind.ENTERED_SCOPE: 3,
    EventKind.LEFT_SCOPE: 2,
    EventKind.RESULTS_REMOVED: 2,
    EventKind.ENROLLMENT: 2,
    EventKind.DATE: 2,
    EventKind.PHASE: 2,
    EventKind.SPONSOR: 2,
    EventKind.SITE_STATUS: 2,
    EventKind.LEFT_QUERY: 2,
    EventKind.REJOINED_QUERY: 2,
    EventKind.RESTORED: 2,
    EventKind.SITE_ADDED: 1,
    EventKind.SITE_REMOVED: 1,
    EventKind.CONDITION_ADDED: 1,
    EventKind.CONDITION_REMOVED: 1,
    EventKind.INTERVENTION_ADDED: 1,
    EventKind.INTERVENTION_REMOVED: 1,
    EventKind.ARM_ADDED: 1,
    EventKind.ARM_REMOVED: 1,
    EventKind.TITLE: 1,
    EventKind.ELIGIBILITY: 2,
    EventKind.DESIGN: 2,
    # Outcomes: 2 for a primary outcome, 1 for the others; publications: 3 for a results
    # publication, 1 for the others (see `importance_of`). These are the kinds' floors.
    EventKind.OUTCOME_ADDED: 1,
    EventKind.OUTCOME_REMOVED: 1,
    EventKind.OUTCOME_CHANGE: 1,
    EventKind.PUBLICATION_ADDED: 1,
    EventKind.PUBLICATION_REMOVED: 1,
    # 3 for a study's first publication, 2 for the later ones (see `importance_of`).
    EventKind.PUBLICATION_FOUND: 2,
    EventKind.RESULTS_UPDATED: 2,
    EventKind.ACROSS_REGISTRIES: 2,
    EventKind.MODIFICATION: 2,
}

_OUTCOME_KINDS = frozenset({EventKind.OUTCOME_ADDED, EventKind.OUTCOME_REMOVED, EventKind.OUTCOME_CHANGE})


def importance_of(kind: EventKind, before: Any, after: Any) -> int:
    """An event's importance: its kind's, raised where the change itself says more.

    A primary outcome added, dropped or re-specified is ranked above a secondary one; a
    results publication above a background reference; criteria that only moved within the
    list (the same criteria, another order) are a detail."""
    if kind in _OUTCOME_KINDS:
        types = {v.get("type") for v in (before, after) if isinstance(v, dict)}
        return 2 if "PRIMARY" in types else 1
    if kind == EventKind.PUBLICATION_ADDED:
        return 3 if isinstance(after, dict) and after.get("type") == "RESULT" else 1
    if kind == EventKind.PUBLICATION_FOUND:
        return 3 if isinstance(after, dict) and after.get("first") else 2
    if kind == EventKind.ELIGIBILITY and before == [] and after == []:
        return 1
    return IMPORTANCE[kind]


# -- outcomes: one vocabulary for how runs, jobs, deliveries and backfills end ---------------
# StrEnum members equal their strings, so the stored values (and every --json output) are
# the same words as before; code compares against these names, not string literals.


class RunOutcome(StrEnum):
    """How a poll ended. OK and UNCHANGED are successes; the rest leave their window to the next poll."""

    RUNNING = "running"
    OK = "ok"
    UNCHANGED = "unchanged"  # the registry's data timestamp had not moved: nothing to read
    FAILED = "failed"
    CRASHED = "crashed"  # the process died; the next poll says so
    STOPPED = "stopped"  # asked to stop (SIGTERM); not a failure


SUCCESSFUL_RUNS = (RunOutcome.OK, RunOutcome.UNCHANGED)
UNSUCCESSFUL_RUNS = (RunOutcome.FAILED, RunOutcome.CRASHED, RunOutcome.STOPPED)


class JobOutcome(StrEnum):
    """How a scheduled job ended (the service's jobs table)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # another ctmonitor process held the lock
    STOPPED = "stopped"  # the service was stopping; the next run covers the rest


class DeliveryStatus(StrEnum):
    """A mail's bookkeeping: `sending` is written before the SMTP call, `sent` after it."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # left `sending` by a process that died; its events stay due


class SubscriberStatus(StrEnum):
    """Where a subscriber stands. Only ACTIVE subscribers are sent anything."""

    PENDING = "pending"  # signed up in the browser, confirmation link not yet followed
    ACTIVE = "active"
    PAUSED = "paused"  # by themselves, on their manage page; events wait for them
    UNSUBSCRIBED = "unsubscribed"  # they left (one click); nothing more is sent
    REMOVED = "removed"  # a file-managed subscriber no longer in config.toml


class DeliveryKind(StrEnum):
    LANDSCAPE = "landscape"  # a subscriber's first digest: the picture, not a backlog
    CHANGES = "changes"
    NOTHING = "nothing"  # an empty digest, for subscribers who asked for one
    ALERT = "alert"  # to the administrator: polls keep failing
    RECOVERY = "recovery"  # to the administrator: polls work again


DIGEST_KINDS = (DeliveryKind.CHANGES, DeliveryKind.LANDSCAPE, DeliveryKind.NOTHING)


class Settlement(StrEnum):
    """Why an event no longer waits for a subscriber."""

    LISTED = "listed"  # shown in a sent digest
    SUMMARISED = "summarised"  # counted in a sent digest, over its size cap
    FILTERED = "filtered"  # outside the subscriber's filters: settled without mail


class BackfillStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    EMPTY = "empty"  # the registry has no version before our first poll
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A registry date as written (`2024`, `2024-03` or `2024-03-15`) and its type."""

    date: str
    type: str | None = None  # ACTUAL, ESTIMATED, or absent on old records

    @property
    def precision(self) -> str:
        return {4: "year", 7: "month"}.get(len(self.date), "day")

    def __str__(self) -> str:
        return f"{self.date} ({self.type.lower()})" if self.type else self.date


@dataclass(frozen=True, slots=True)
class Site:
    key: str
    facility: str | None
    city: str | None
    state: str | None
    country: str | None
    status: str | None

    def label(self) -> str:
        parts = [p for p in (self.facility, self.city, self.state, self.country) if p]
        return ", ".join(parts) or "(unnamed site)"


@dataclass(frozen=True, slots=True)
class Intervention:
    key: str
    type: str | None
    name: str
    other_names: tuple[str, ...] = ()
    description: str | None = None

    def label(self) -> str:
        return f"{self.type.title()}: {self.name}" if self.type else self.name


@dataclass(frozen=True, slots=True)
class Arm:
    key: str
    label: str
    type: str | None = None
    description: str | None = None
    intervention_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Criterion:
    """One eligibility criterion (or one sentence of a criteria paragraph), in its section."""

    section: str  # "Inclusion", "Exclusion" or "" (criteria before any heading)
    text: str  # as the registry writes it, list marker removed

    def to_json(self) -> dict[str, str]:
        return {"section": self.section, "text": self.text}


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome measure: what is measured, when, and how it is ranked."""

    key: str
    type: str  # PRIMARY, SECONDARY or OTHER
    measure: str
    time_frame: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Modification:
    """One application of an EU CTIS trial: the initial one, a substantial or
    non-substantial modification, a member state added; what each country decided."""

    key: str  # CTIS's business key: IN, SM-1, NSM-2, AM-1
    kind: str  # in words: "Substantial modification"
    submitted: str | None = None
    decided: str | None = None
    decisions: tuple[tuple[str, str], ...] = ()  # (country, "authorised with conditions")

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "submitted": self.submitted,
            "decided": self.decided,
            "decisions": [list(d) for d in self.decisions],
        }


@dataclass(frozen=True, slots=True)
class Reference:
    """A publication the record cites: RESULT (of this study), BACKGROUND or DERIVED."""

    key: str  # the PMID, or the citation's comparison key when it has none
    type: str | None
    pmid: str | None
    citation: str | None


@dataclass(frozen=True, slots=True)
class MeshTerm:
    id: str | None
    term: str


@dataclass(frozen=True, slots=True)
class Study:
    """One study as ctmonitor sees it: the tracked fields plus the text the classifier reads."""

    nct_id: str
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    aliases: tuple[str, ...] = ()
    # The other numbers the record lists (secondary ids, as written): other registries'
    # registrations of the same trial among them (core.registrations). Not a tracked field.
    secondary_ids: tuple[str, ...] = ()
    study_type: str | None = None
    overall_status: str | None = None
    last_known_status: str | None = None
    # The registry's own words for the status where its vocabulary differs from the
    # reader's (CTIS: "Ongoing, recruitment ended" beside ACTIVE_NOT_RECRUITING); untracked.
    registry_status: str | None = None
    why_stopped: str | None = None
    status_verified_date: str | None = None
    start_date: PartialDate | None = None
    primary_completion_date: PartialDate | None = None
    completion_date: PartialDate | None = None
    enrollment_count: int | None = None
    enrollment_type: str | None = None
    phases: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    condition_mesh: tuple[MeshTerm, ...] = ()
    condition_ancestors: tuple[MeshTerm, ...] = ()
    intervention_mesh: tuple[MeshTerm, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    arms: tuple[Arm, ...] = ()
    lead_sponsor: str | None = None
    lead_sponsor_class: str | None = None
    collaborators: tuple[str, ...] = ()
    sites: tuple[Site, ...] = ()
    has_results: bool = False
    results_first_post_date: str | None = None
    # What the results section holds (monitor.core.results.PostedResults), None without one.
    results: Any = None
    first_post_date: str | None = None
    last_update_post_date: str | None = None
    last_update_submit_date: str | None = None
    brief_summary: str | None = None
    # Read by the classifier only (a product code-named everywhere else may be called a
    # CAR T here); not a tracked field, so its edits are no events.
    detailed_description: str | None = None
    # Who may enrol (eligibilityModule): the criteria list, ages as the registry writes
    # them ("18 Years"), sex (ALL, FEMALE, MALE), healthy volunteers, age groups.
    criteria: tuple[Criterion, ...] = ()
    minimum_age: str | None = None
    maximum_age: str | None = None
    sex: str | None = None
    healthy_volunteers: bool | None = None
    std_ages: tuple[str, ...] = ()
    # What is measured (outcomesModule), how the study is designed (designModule.designInfo).
    outcomes: tuple[Outcome, ...] = ()
    allocation: str | None = None
    intervention_model: str | None = None
    masking: str | None = None
    primary_purpose: str | None = None
    # What is published (referencesModule) and the IPD sharing statement.
    references: tuple[Reference, ...] = ()
    ipd_sharing: str | None = None
    ipd_description: str | None = None
    # Which of the optional protocol modules the record carried (eligibilityModule, ...):
    # a module missing from a record fetched before ctmonitor asked for it is unknown, not empty.
    modules: tuple[str, ...] = ()
    # An EU CTIS trial's applications (core.ctis_history): tracked; empty elsewhere.
    modifications: tuple[Modification, ...] = ()

    @property
    def title(self) -> str:
        return self.brief_title or self.official_title or self.nct_id

    @property
    def countries(self) -> tuple[str, ...]:
        return tuple(sorted({s.country for s in self.sites if s.country}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (hand-written: `dataclasses.asdict` deep-copies and is 10x slower)."""
        out: dict[str, Any] = {}
        for name in _STUDY_FIELDS:
            v = getattr(self, name)
            if isinstance(v, tuple):
                v = [_plain(x) for x in v]
            elif isinstance(v, PartialDate):
                v = {"date": v.date, "type": v.type}
            elif name == "results" and v is not None:
                v = v.to_json()
            out[name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Study:
        """Rebuild a Study from `to_dict()` output (as stored in the database)."""
        d = dict(data)

        def date(v: Any) -> PartialDate | None:
            return PartialDate(**v) if v else None

        def mesh(vs: Any) -> tuple[MeshTerm, ...]:
            return tuple(MeshTerm(**v) for v in vs or ())

        for name in ("start_date", "primary_completion_date", "completion_date"):
            d[name] = date(d.get(name))
        for name in ("condition_mesh", "condition_ancestors", "intervention_mesh"):
            d[name] = mesh(d.get(name))
        d["sites"] = tuple(Site(**s) for s in d.get("sites") or ())
        d["interventions"] = tuple(
            Intervention(**{**i, "other_names": tuple(i.get("other_names") or ())})
            for i in d.get("interventions") or ()
        )
        d["arms"] = tuple(
            Arm(**{**a, "intervention_names": tuple(a.get("intervention_names") or ())})
            for a in d.get("arms") or ()
        )
        d["criteria"] = tuple(Criterion(**c) for c in d.get("criteria") or ())
        d["outcomes"] = tuple(Outcome(**o) for o in d.get("outcomes") or ())
        d["references"] = tuple(Reference(**r) for r in d.get("references") or ())
        d["modifications"] = tuple(
            Modification(**{**m, "decisions": tuple(tuple(x) for x in m.get("decisions") or ())})
            for m in d.get("modifications") or ()
        )
        if d.get("results"):
            from monitor.core.results import PostedResults  # it reads record, which reads this module

            d["results"] = PostedResults.from_json(d["results"])
        for name in (
            "aliases",
            "secondary_ids",
            "phases",
            "conditions",
            "keywords",
            "collaborators",
            "std_ages",
            "modules",
        ):
            d[name] = tuple(d.get(name) or ())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


_STUDY_FIELDS = tuple(Study.__dataclass_fields__)


def _plain(x: Any) -> Any:
    if isinstance(x, Modification):
        return x.to_json()
    if isinstance(x, (Site, Intervention, Arm, MeshTerm, Criterion, Outcome, Reference)):
        return {
            k: (list(v) if isinstance(v, tuple) else v)
            for k in x.__dataclass_fields__
            for v in (getattr(x, k),)
        }
    return x


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One tracked difference between two versions of a study."""

    kind: EventKind
    field: str
    key: str = ""  # identifies the item for list fields (a site, a condition); "" otherwise
    before: Any = None
    after: Any = None

    @property
    def importance(self) -> int:
        return importance_of(self.kind, self.before, self.after)


@dataclass(slots=True)
class PollSummary:
    """One poll, the one record of it: filled in by the sync as it runs, written to the
    runs table when it ends (store.finish_run), read back from it (store.poll_summary),
    and shown by the CLI, the service, the demo and the web."""

    run_id: int
    mode: str  # "full" or "incremental"
    outcome: str  # a RunOutcome
    window_start: str | None = None  # an incremental poll's LastUpdatePostDate lower bound
    fetched: int = 0
    expected: int = 0
    new_studies: int = 0
    changed_studies: int = 0
    requests: int = 0
    seconds: float = 0.0
    events_by_kind: dict[str, int] = field(default_factory=dict)
    held: bool = False
    data_timestamp: str | None = None
    error: str | None = None
    # studies whose newly fetched parts (eligibility, outcomes, references) were recorded
    # as a baseline, without events: their earlier records were fetched without them
    baselined: int = 0

    @property
    def events(self) -> int:
        return sum(self.events_by_kind.values())

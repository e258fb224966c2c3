"""What a study's posted results hold, as a reader is told it. Pure.

The registry's results section is large (every outcome's every measurement, every adverse
event by group); a reader of a change log wants to know what was posted: how many took
part and finished, how many outcome measures (and which are primary), and how many had a
serious adverse event or died, with a link to the tables themselves. `PostedResults` is
that summary, read from the record's own results modules, so "results posted" says what
was posted and a later revision of the results (outcomes added, more participants
analysed) is a change of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.core import record

RESULTS_URL = "https://clinicaltrials.gov/study/{nct}?tab=results"

# The parts of a record the summary reads (added to what a poll fetches: config
# api.fields). Whole modules where the summary needs their lists; the adverse-event
# module's group totals only (its event tables can run to hundreds of kilobytes).
FIELDS = (
    "resultsSection.participantFlowModule",
    "resultsSection.baselineCharacteristicsModule.denoms",
    "resultsSection.outcomeMeasuresModule",
    "resultsSection.adverseEventsModule.eventGroups",
)


@dataclass(frozen=True, slots=True)
class PostedOutcome:
    type: str  # PRIMARY, SECONDARY, OTHER_PRE_SPECIFIED, POST_HOC
    title: str
    posted: bool  # reportingStatus POSTED (NOT_POSTED: listed, its data still to come)


@dataclass(frozen=True, slots=True)
class PostedResults:
    """The results section's parts, with the figures a reader looks for first."""

    flow: bool = False
    baseline: bool = False
    adverse_events: bool = False
    started: int | None = None  # participants who started (participant flow, first period)
    completed: int | None = None  # who completed (its last period)
    analysed: int | None = None  # participants in the baseline table (its overall count)
    outcomes: tuple[PostedOutcome, ...] = ()
    serious_affected: int | None = None  # participants with a serious adverse event, all groups
    at_risk: int | None = None
    deaths: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "participant_flow": self.flow,
            "baseline": self.baseline,
            "adverse_events": self.adverse_events,
            "started": self.started,
            "completed": self.completed,
            "analysed": self.analysed,
            "outcomes": [{"type": o.type, "title": o.title, "posted": o.posted} for o in self.outcomes],
            "serious_affected": self.serious_affected,
            "at_risk": self.at_risk,
            "deaths": self.deaths,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PostedResults:
        return cls(
            flow=bool(d.get("participant_flow")),
            baseline=bool(d.get("baseline")),
            adverse_events=bool(d.get("adverse_events")),
            started=d.get("started"),
            completed=d.get("completed"),
            analysed=d.get("analysed"),
            outcomes=tuple(
                PostedOutcome(o.get("type") or "", o.get("title") or "", bool(o.get("posted")))
                for o in d.get("outcomes") or ()
            ),
            serious_affected=d.get("serious_affected"),
            at_risk=d.get("at_risk"),
            deaths=d.get("deaths"),
        )


def _number(v: Any) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


def _milestone_total(period: record.FlowPeriod | None, kind: str) -> int | None:
    for m in (period.milestones if period else None) or ():
        if m is not None and (m.type or "").strip().upper() == kind:
            counts = [_number(a.numSubjects) for a in m.achievements or () if a is not None]
            known = [c for c in counts if c is not None]
            return sum(known) if known else None
    return None


def read(section: record.Results | None) -> PostedResults | None:
    """The summary of a record's results section; None when the record carries none."""
    if section is None:
        return None
    flow = section.participantFlowModule
    periods = [p for p in (flow.periods if flow else None) or () if p is not None]
    analysed = None
    base = section.baselineCharacteristicsModule
    for denom in (base.denoms if base else None) or ():
        if denom is not None:
            # The overall group is the largest count (a "Total" column when there are arms).
            counts = [_number(c.value) for c in denom.counts or () if c is not None]
            known = [c for c in counts if c is not None]
            analysed = max(known) if known else None
            break
    measures = section.outcomeMeasuresModule.outcomeMeasures if section.outcomeMeasuresModule else None
    outcomes = tuple(
        PostedOutcome(
            (o.type or "").upper(),
            " ".join((o.title or "").split()),
            (o.reportingStatus or "POSTED").upper() == "POSTED",
        )
        for o in measures or ()
        if o is not None and o.title
    )
    ae = section.adverseEventsModule
    groups = [g for g in (ae.eventGroups if ae else None) or () if g is not None]

    def total(name: str) -> int | None:
        values = [getattr(g, name) for g in groups if getattr(g, name) is not None]
        return sum(values) if values else None

    return PostedResults(
        flow=bool(periods),
        baseline=base is not None and bool(base.denoms),
        adverse_events=bool(groups),
        started=_milestone_total(periods[0], "STARTED") if periods else None,
        completed=_milestone_total(periods[-1], "COMPLETED") if periods else None,
        analysed=analysed,
        outcomes=outcomes,
        serious_affected=total("seriousNumAffected"),
        at_risk=total("seriousNumAtRisk"),
        deaths=total("deathsNumAffected"),
    )


# -- words ------------------------------------------------------------------------------


def _outcomes_words(outcomes: list[dict[str, Any]]) -> str:
    posted = [o for o in outcomes if o.get("posted")]
    primary = sum(1 for o in posted if o.get("type") == "PRIMARY")
    n = len(posted)
    words = f"{n} outcome measure{'s' if n != 1 else ''}"
    if primary:
        words += f" ({primary} primary)"
    if waiting := len(outcomes) - n:
        words += f", {waiting} still to be posted"
    return words


def parts(d: dict[str, Any] | None) -> list[str]:
    """What was posted, part by part, in a reader's words ("participant flow: 12 started,
    11 completed", "3 outcome measures (1 primary)", "adverse events: serious in 2 of 12")."""
    if not d:
        return []
    out: list[str] = []
    if d.get("participant_flow"):
        figures = [f"{d[k]} {k}" for k in ("started", "completed") if d.get(k) is not None]
        out.append("participant flow" + (": " + ", ".join(figures) if figures else ""))
    if d.get("baseline"):
        n = d.get("analysed")
        out.append("baseline characteristics" + (f" of {n} participants" if n is not None else ""))
    if d.get("outcomes"):
        out.append(_outcomes_words(d["outcomes"]))
    if d.get("adverse_events"):
        words = "adverse events"
        if d.get("serious_affected") is not None and d.get("at_risk"):
            words += f": serious in {d['serious_affected']} of {d['at_risk']}"
        if d.get("deaths"):
            words += f", {d['deaths']} death{'s' if d['deaths'] != 1 else ''}"
        out.append(words)
    return out


def posted_text(first_posted: str | None, summary: dict[str, Any] | None) -> str:
    """The line of a results-posted change: when, and what."""
    head = f"results first posted {first_posted}" if first_posted else "Results posted"
    what = parts(summary)
    return head + (": " + "; ".join(what) if what else "")


def updated_text(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """What a revision of the posted results changed, part by part."""
    a, b = before or {}, after or {}
    out: list[str] = []
    for key, label in (("started", "started"), ("completed", "completed"), ("analysed", "analysed")):
        if a.get(key) != b.get(key) and b.get(key) is not None:
            out.append(f"{label} {a.get(key) if a.get(key) is not None else 'not given'} → {b[key]}")
    old_titles = {(o["type"], o["title"]): o["posted"] for o in a.get("outcomes") or ()}
    new_titles = {(o["type"], o["title"]): o["posted"] for o in b.get("outcomes") or ()}
    added = [t for t, posted in new_titles.items() if posted and not old_titles.get(t)]
    removed = [t for t in old_titles if t not in new_titles]
    if added:
        quoted = "; ".join(f"“{t}”" for _, t in added[:3]) + ("…" if len(added) > 3 else "")
        out.append(f"{len(added)} outcome measure{'s' if len(added) != 1 else ''} posted: {quoted}")
    if removed:
        out.append(f"{len(removed)} outcome measure{'s' if len(removed) != 1 else ''} withdrawn")
    for key, label in _PARTS:
        if b.get(key) and not a.get(key):
            out.append(f"{label} added")
    ae_moved = (a.get("serious_affected"), a.get("deaths")) != (b.get("serious_affected"), b.get("deaths"))
    if b.get("adverse_events") and a.get("adverse_events") and ae_moved:
        out += [p for p in parts({k: b.get(k) for k in _AE_KEYS}) if p.startswith("adverse events")]
    return "Results revised: " + ("; ".join(out) if out else "the posted tables changed")


_PARTS = (
    ("participant_flow", "participant flow"),
    ("baseline", "baseline characteristics"),
    ("adverse_events", "adverse events"),
)
_AE_KEYS = ("adverse_events", "serious_affected", "at_risk", "deaths")


def results_url(nct_id: str) -> str:
    return RESULTS_URL.format(nct=nct_id)

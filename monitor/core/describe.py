"""Human wording for registry values and change events, shared by the CLI, digests and reports. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from monitor.core import literature, results, trials
from monitor.core.protocol import pair_criteria
from monitor.core.worddiff import pieces as word_pieces

STATUS_LABELS = {
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "RECRUITING": "Recruiting",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "ACTIVE_NOT_RECRUITING": "Active, not recruiting",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "COMPLETED": "Completed",
    "WITHDRAWN": "Withdrawn",
    "UNKNOWN": "Unknown status",
    "AVAILABLE": "Available",
    "NO_LONGER_AVAILABLE": "No longer available",
    "TEMPORARILY_NOT_AVAILABLE": "Temporarily not available",
    "APPROVED_FOR_MARKETING": "Approved for marketing",
    "WITHHELD": "Withheld",
}
PHASE_LABELS = {
    "EARLY_PHASE1": "Early phase 1",
    "PHASE1": "Phase 1",
    "PHASE2": "Phase 2",
    "PHASE3": "Phase 3",
    "PHASE4": "Phase 4",
    "NA": "Not applicable",
    "UNKNOWN": "Phase not given",
}
KIND_LABELS = {
    "new_study": "New study",
    "status_change": "Status",
    "why_stopped_change": "Why stopped",
    "enrollment_change": "Enrollment",
    "date_change": "Date",
    "phase_change": "Phase",
    "condition_added": "Condition added",
    "condition_removed": "Condition removed",
    "intervention_added": "Intervention added",
    "intervention_removed": "Intervention removed",
    "arm_added": "Arm added",
    "arm_removed": "Arm removed",
    "site_added": "Site added",
    "site_removed": "Site removed",
    "site_status_change": "Site status",
    "results_posted": "Results posted",
    "results_removed": "Results removed",
    "sponsor_change": "Sponsor",
    "title_change": "Title",
    "left_query": "Left the watch query",
    "rejoined_query": "Back in the watch query",
    "gone_from_registry": "No longer in the registry",
    "back_in_registry": "Back in the registry",
    "id_changed": "NCT id changed",
    "entered_scope": "Now in scope",
    "left_scope": "No longer in scope",
    "eligibility_change": "Eligibility",
    "outcome_added": "Outcome added",
    "outcome_removed": "Outcome removed",
    "outcome_change": "Outcome changed",
    "design_change": "Design",
    "publication_added": "Publication added",
    "publication_removed": "Publication removed",
    "publication_found": "In the literature",
    "results_updated": "Results revised",
    "status_across_registries": "Across registries",
    "modification": "Modification",
}
# The registry's own words for its design, sex and reference enums (as its site shows them).
DESIGN_LABELS = {
    "RANDOMIZED": "Randomized",
    "NON_RANDOMIZED": "Non-randomized",
    "NA": "Not applicable",
    "SINGLE_GROUP": "Single group assignment",
    "PARALLEL": "Parallel assignment",
    "CROSSOVER": "Crossover assignment",
    "FACTORIAL": "Factorial assignment",
    "SEQUENTIAL": "Sequential assignment",
    "NONE": "None (open label)",
    "SINGLE": "Single",
    "DOUBLE": "Double",
    "TRIPLE": "Triple",
    "QUADRUPLE": "Quadruple",
    "TREATMENT": "Treatment",
    "PREVENTION": "Prevention",
    "DIAGNOSTIC": "Diagnostic",
    "SUPPORTIVE_CARE": "Supportive care",
    "SCREENING": "Screening",
    "HEALTH_SERVICES_RESEARCH": "Health services research",
    "BASIC_SCIENCE": "Basic science",
    "DEVICE_FEASIBILITY": "Device feasibility",
    "ECT": "Educational/counseling/training",
    "OTHER": "Other",
}
SEX_LABELS = {"ALL": "All", "FEMALE": "Female", "MALE": "Male"}
OUTCOME_LABELS = {"PRIMARY": "Primary outcome", "SECONDARY": "Secondary outcome", "OTHER": "Other outcome"}
REFERENCE_LABELS = {
    "RESULT": "Results publication",
    "BACKGROUND": "Background reference",
    "DERIVED": "Publication",
}
CITATION_MAX = 240
FIELD_LABELS = {
    "start_date": "Start date",
    "primary_completion_date": "Primary completion",
    "completion_date": "Study completion",
    "brief_title": "Brief title",
    "official_title": "Official title",
    "acronym": "Acronym",
    "lead_sponsor": "Lead sponsor",
    "collaborators": "Collaborator",
    "minimum_age": "Minimum age",
    "maximum_age": "Maximum age",
    "sex": "Sex",
    "healthy_volunteers": "Accepts healthy volunteers",
    "criteria": "Criteria",
    "allocation": "Allocation",
    "intervention_model": "Intervention model",
    "masking": "Masking",
    "primary_purpose": "Primary purpose",
}


PLURALS = {"study": "studies", "change": "changes", "event": "events", "version": "versions"}


def count(n: int, noun: str) -> str:
    """ "1 study", "2 studies": every count a reader sees agrees with its noun."""
    return f"{n} {noun if n == 1 else PLURALS.get(noun, noun + 's')}"


def status_label(value: str | None) -> str:
    if not value:
        return "no status"
    return STATUS_LABELS.get(value, value.replace("_", " ").capitalize())


def targets_label(targets: Any, none: str = "") -> str:
    """A study's targets as every output shows them: each target as labelled (`CD19/BCMA`
    one dual-target product, `CD19xCD3` an engager), alternatives parted by `; `.
    `targets` is a sequence of labels, or (in a stored event's payload) "|"-joined text."""
    if not targets:
        return none
    if isinstance(targets, str):
        targets = targets.split("|")
    return "; ".join(targets)


def phases_label(phases: Any) -> str:
    if not phases:
        return "no phase"
    if isinstance(phases, str):
        phases = phases.split("|")
    return "/".join(PHASE_LABELS.get(p, p.replace("_", " ").capitalize()) for p in phases)


def _status(v: Any) -> str:
    if not isinstance(v, dict):
        return status_label(v)
    text = status_label(v.get("status"))
    if v.get("last_known"):
        text += f" (last known: {status_label(v['last_known'])})"
    return text


def _date(v: Any) -> str:
    if not v:
        return "none"
    return f"{v['date']} ({v['type'].lower()})" if v.get("type") else str(v["date"])


def _enrollment(v: Any) -> str:
    if not v or v.get("count") is None:
        return "not given"
    return f"{v['count']} ({v['type'].lower()})" if v.get("type") else str(v["count"])


def _site(v: Any) -> str:
    if not v:
        return ""
    return f"{v['site']} ({status_label(v['status'])})" if v.get("status") else str(v["site"])


def _text(v: Any) -> str:
    return "none" if v in (None, "") else str(v)


SITE_KINDS = frozenset({"site_added", "site_removed", "site_status_change"})


def site_country(key: str, before: Any, after: Any) -> str:
    """A site change's country in the registry's spelling (the last part of the site's
    label), when its key (facility | city | state | country) has one."""
    value = after if isinstance(after, dict) else before if isinstance(before, dict) else {}
    label = str(value.get("site", ""))
    country = key.split(" | ")[-1].split(" #")[0].strip() if key else ""
    return label.rsplit(", ", 1)[-1] if country and label else "country not given"


def site_counts(changes: Iterable[tuple[str, str, Any, Any]]) -> list[tuple[str, str]]:
    """Site changes (kind, item key, before, after) counted per country, the largest first:
    [("United States", "30 now Completed"), ("Germany", "2 added")]. What a coordinator
    scans a big trial's site churn for; `diff --sites` and the events list each."""
    per: dict[str, Counter[str]] = {}
    for kind, key, before, after in changes:
        if kind == "site_added":
            what = "added"
        elif kind == "site_removed":
            what = "removed"
        else:
            what = "now " + status_label(after.get("status") if isinstance(after, dict) else None)
        per.setdefault(site_country(key, before, after), Counter())[what] += 1
    return [
        (country, ", ".join(f"{n} {w}" for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
        for country, counts in sorted(per.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    ]


def design_label(value: Any) -> str:
    if value in (None, ""):
        return "not given"
    return DESIGN_LABELS.get(str(value), str(value).replace("_", " ").capitalize())


def _eligibility_value(field: str, v: Any) -> str:
    if v is None or v == "":
        return "not given"
    if field == "sex":
        return SEX_LABELS.get(str(v), str(v).capitalize())
    if field == "healthy_volunteers":
        return "yes" if v else "no"
    return str(v)


def _quote(text: str | None) -> str:
    return f"“{text}”" if text else "none"


def criteria_edits(before: Any, after: Any) -> list[tuple[str, str | None, str | None]]:
    """A criteria change as edits a reader follows: (which criterion, old wording, new
    wording), a reworded criterion paired with its earlier wording; None on the side where
    it did not exist."""
    removed = [c for c in before or () if isinstance(c, dict)]
    added = [c for c in after or () if isinstance(c, dict)]
    out = []
    for old, new in pair_criteria(removed, added):
        section = (new or old or {}).get("section") or ""
        what = f"{section} criterion" if section else "Criterion"
        out.append((what, old["text"] if old else None, new["text"] if new else None))
    return out


def _criteria_text(before: Any, after: Any) -> str:
    edits = criteria_edits(before, after)
    if not edits:
        return "the same criteria, listed in another order"
    parts = []
    for what, old, new in edits:
        if old and new:
            parts.append(f"{what} reworded: {_quote(old)} → {_quote(new)}")
        elif new:
            parts.append(f"{what} added: {_quote(new)}")
        else:
            parts.append(f"{what} removed: {_quote(old)}")
    return "; ".join(parts)


def _outcome_text(kind: str, before: Any, after: Any) -> str:
    a, b = before or {}, after or {}
    o = b or a
    what = OUTCOME_LABELS.get(o.get("type") or "", "Outcome")
    frame = f" (time frame: {o['time_frame']})" if o.get("time_frame") else ""
    if kind in ("outcome_added", "outcome_removed"):
        return f"{what} {_quote(o.get('measure'))}{frame}"
    parts = []
    if a.get("type") != b.get("type"):
        parts.append(
            f"now a {OUTCOME_LABELS.get(b.get('type') or '', 'outcome').lower()} "
            f"(was {OUTCOME_LABELS.get(a.get('type') or '', 'outcome').lower()})"
        )
    if a.get("measure") != b.get("measure"):
        parts.append(f"measure {_quote(a.get('measure'))} → {_quote(b.get('measure'))}")
    if (a.get("time_frame") or "") != (b.get("time_frame") or ""):
        parts.append(f"time frame {_quote(a.get('time_frame'))} → {_quote(b.get('time_frame'))}")
    if (a.get("description") or "") != (b.get("description") or ""):
        parts.append(f"description {_quote(a.get('description'))} → {_quote(b.get('description'))}")
    return f"{what} {_quote(b.get('measure'))}: " + ("; ".join(parts) or "re-worded")


def _reference_text(kind: str, v: Any) -> str:
    r = v or {}
    what = REFERENCE_LABELS.get(r.get("type") or "", "Publication")
    citation = r.get("citation") or ""
    if len(citation) > CITATION_MAX:
        citation = citation[: CITATION_MAX - 1].rstrip() + "…"
    pmid = f" (PMID {r['pmid']})" if r.get("pmid") else ""
    return f"{what}: {citation or 'no citation'}{pmid}"


def change_edits(kind: str, field: str, before: Any, after: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    """For changes to long texts: each changed criterion or description as (what, pieces),
    the pieces word by word ("same", "del", "ins"), so a page or a mail can mark exactly the
    words that changed. Empty for every other change."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    if kind == "eligibility_change" and field == "criteria":
        for what, old, new in criteria_edits(before, after):
            if old and new:
                out.append((f"{what}, reworded", word_pieces(old, new)))
            elif new:
                out.append((f"{what}, added", [("ins", new)]))
            elif old:
                out.append((f"{what}, removed", [("del", old)]))
    elif kind == "outcome_change":
        a, b = before or {}, after or {}
        for name, label in (
            ("measure", "Measure"),
            ("time_frame", "Time frame"),
            ("description", "Description"),
        ):
            x, y = a.get(name) or "", b.get(name) or ""
            if x != y:
                out.append((label, word_pieces(x, y)))
    return out


def change_lead(kind: str, field: str, before: Any, after: Any) -> str:
    """The words before a change's edits (see change_edits): which criteria or outcome."""
    if kind == "eligibility_change" and field == "criteria":
        n = len(criteria_edits(before, after))
        return f"{n} {'criterion' if n == 1 else 'criteria'} changed"
    if kind == "outcome_change":
        o = after or before or {}
        return f"{OUTCOME_LABELS.get(o.get('type') or '', 'Outcome')} {_quote(o.get('measure'))}"
    return change_text(kind, field, before, after)


def modification_text(before: Any, after: Any) -> str:
    """ "Substantial modification SM-1: submitted 2025-09-01; decided 2025-11-20 (Germany:
    authorised)"; a decision arriving on one already listed says only what is new."""
    m = after or before or {}
    head = f"{m.get('kind') or 'Application'} {m.get('key') or ''}".strip()
    if after is None:
        return f"{head}: no longer listed"
    by_decision: dict[str, list[str]] = {}
    for country, decision in m.get("decisions") or []:
        by_decision.setdefault(decision, []).append(country)
    decided = "; ".join(f"{d} {trials.in_member_states(cs)}" for d, cs in by_decision.items())
    parts = []
    if not before and m.get("submitted"):
        parts.append(f"submitted {m['submitted']}")
    if m.get("decided"):
        parts.append(f"decided {m['decided']}" + (f" ({decided})" if decided else ""))
    elif decided:
        parts.append(decided)
    else:
        parts.append("not yet decided")
    return f"{head}: " + "; ".join(parts)


def change_text(kind: str, field: str, before: Any, after: Any) -> str:
    """One line saying what changed, as a clinician would write it."""
    if kind == "eligibility_change":
        if field == "criteria":
            return _criteria_text(before, after)
        label = FIELD_LABELS.get(field, field)
        return f"{label}: {_eligibility_value(field, before)} → {_eligibility_value(field, after)}"
    if kind in ("outcome_added", "outcome_removed", "outcome_change"):
        return _outcome_text(kind, before, after)
    if kind == "design_change":
        return f"{FIELD_LABELS.get(field, field)}: {design_label(before)} → {design_label(after)}"
    if kind in ("publication_added", "publication_removed"):
        return _reference_text(kind, after if kind == "publication_added" else before)
    if kind == "new_study":
        a = after or {}
        first = f"first posted {a['first_posted']}" if a.get("first_posted") else "first posted: not given"
        return f"{status_label(a.get('status'))}; {phases_label(a.get('phases'))}; {first}"
    if kind == "status_change":
        return f"{_status(before)} → {_status(after)}"
    if kind == "why_stopped_change":
        return f"“{_text(after)}”" if not before else f"“{_text(before)}” → “{_text(after)}”"
    if kind == "enrollment_change":
        return f"{_enrollment(before)} → {_enrollment(after)}"
    if kind == "date_change":
        return f"{FIELD_LABELS.get(field, field)} {_date(before)} → {_date(after)}"
    if kind == "phase_change":
        return f"{phases_label(before)} → {phases_label(after)}"
    if kind in ("site_added", "condition_added", "intervention_added", "arm_added"):
        return f"+ {_site(after) if kind == 'site_added' else _text(after)}"
    if kind in ("site_removed", "condition_removed", "intervention_removed", "arm_removed"):
        return f"− {_site(before) if kind == 'site_removed' else _text(before)}"
    if kind == "site_status_change":
        return (
            f"{(after or before or {}).get('site', '')}: {status_label((before or {}).get('status'))} → "
            f"{status_label((after or {}).get('status'))}"
        )
    if kind == "results_posted":
        return results.posted_text((after or {}).get("first_posted"), (after or {}).get("posted"))
    if kind == "results_updated":
        return results.updated_text((before or {}).get("posted"), (after or {}).get("posted"))
    if kind == "results_removed":
        return KIND_LABELS[kind]
    if kind == "publication_found":
        return literature.found_text(after or {})
    if kind == "modification":
        return modification_text(before, after)
    if kind == "status_across_registries":
        a = after or {}
        said = trials.statuses_text(a.get("statuses") or [])
        return f"statuses agree again — {said}" if a.get("agree") else f"statuses disagree — {said}"
    if kind == "sponsor_change":
        label = FIELD_LABELS.get(field, field)
        if field == "collaborators":
            return f"{label} added: {after}" if after else f"{label} removed: {before}"
        return f"{label}: {_text(before)} → {_text(after)}"
    if kind == "title_change":
        return f"{FIELD_LABELS.get(field, field)}: {_text(before)} → {_text(after)}"
    if kind == "gone_from_registry":
        return f"was {status_label(before)}; the registry no longer returns this record"
    if kind == "back_in_registry":
        return f"the registry returns this record again ({status_label(after)})"
    if kind == "id_changed":
        return f"{before} is now {after}"
    if kind in ("entered_scope", "left_scope"):
        a = after or {}
        labels = ", ".join(x for x in (a.get("modality"), a.get("targets"), a.get("indications")) if x)
        return f"{a.get('reason', '')}" + (f" ({labels})" if labels and kind == "entered_scope" else "")
    if kind == "left_query":
        return "no longer matches the watch queries; still followed by id"
    if kind == "rejoined_query":
        return "matches the watch queries again"
    return f"{_text(before)} → {_text(after)}"


def change_parts(kind: str, field: str, before: Any, after: Any) -> tuple[str, str | None, str | None]:
    """(what, before, after) as words, for side-by-side or coloured output; None: nothing on that side."""
    label = KIND_LABELS.get(kind, kind)
    if kind == "status_change":
        return label, _status(before), _status(after)
    if kind == "enrollment_change":
        return label, _enrollment(before), _enrollment(after)
    if kind == "date_change":
        return FIELD_LABELS.get(field, field), _date(before), _date(after)
    if kind == "phase_change":
        return label, phases_label(before), phases_label(after)
    if kind in ("why_stopped_change", "title_change") or (
        kind == "sponsor_change" and field != "collaborators"
    ):
        what = label if kind == "why_stopped_change" else FIELD_LABELS.get(field, field)
        # nothing on a side is None (shown as "none" or "(none)"), never the word as a text
        return (
            what,
            (_text(before) if before not in (None, "") else None),
            (_text(after) if after not in (None, "") else None),
        )
    if kind == "site_status_change":
        site = (after or before or {}).get("site", "")
        return (
            f"Site status, {site}",
            status_label((before or {}).get("status")),
            status_label((after or {}).get("status")),
        )
    if kind in ("site_added", "site_removed"):
        return label, _site(before) or None, _site(after) or None
    if kind in (
        "condition_added",
        "intervention_added",
        "arm_added",
        "condition_removed",
        "intervention_removed",
        "arm_removed",
        "sponsor_change",
    ):
        what = FIELD_LABELS.get(field, label) if kind == "sponsor_change" else label
        return what, (_text(before) if before else None), (_text(after) if after else None)
    return label, None, change_text(kind, field, before, after)

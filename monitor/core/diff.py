"""(previous Study, current Study) -> the list of tracked changes. Pure.

Compares normalized fields only (see `normalize.tracked_view`), and list fields by item
key, so re-ordering, re-casing or re-spacing in the registry yields nothing. Values in
`before`/`after` are plain JSON so events can be stored and rendered as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.core import protocol
from monitor.core.domain import EventKind, FieldChange, PartialDate, Study
from monitor.core.normalize import text_key

if TYPE_CHECKING:
    from monitor.core.classify import Classification

T = TypeVar("T")


def _date(v: PartialDate | None) -> dict[str, str | None] | None:
    return {"date": v.date, "type": v.type} if v else None


def _results(s: Study) -> dict[str, Any]:
    """A results change's side: the flag, the first-posted date and what was posted."""
    out: dict[str, Any] = {"has_results": s.has_results, "first_posted": s.results_first_post_date}
    if s.results is not None:
        out["posted"] = s.results.to_json()
    return out


def _keyed(items: Iterable[T], key: Callable[[T], str]) -> dict[str, T]:
    return {key(i): i for i in items}


def _set_changes(
    old: Iterable[T],
    new: Iterable[T],
    key: Callable[[T], str],
    show: Callable[[T], Any],
    added: EventKind,
    removed: EventKind,
    field: str,
) -> list[FieldChange]:
    a, b = _keyed(old, key), _keyed(new, key)
    out = [FieldChange(removed, field, k, show(a[k]), None) for k in sorted(a.keys() - b.keys())]
    out += [FieldChange(added, field, k, None, show(b[k])) for k in sorted(b.keys() - a.keys())]
    return out


def diff(old: Study, new: Study, *, baseline: frozenset[str] = frozenset()) -> list[FieldChange]:
    """Every tracked change from `old` to `new`, in a stable order (most important kinds first).

    `baseline` names field families `old` cannot know (monitor.core.protocol.FAMILIES): they
    are recorded as they are now, without events."""
    out: list[FieldChange] = []

    if (old.overall_status, old.last_known_status) != (new.overall_status, new.last_known_status):
        out.append(
            FieldChange(
                EventKind.STATUS,
                "overall_status",
                before={"status": old.overall_status, "last_known": old.last_known_status},
                after={"status": new.overall_status, "last_known": new.last_known_status},
            )
        )
    if old.why_stopped != new.why_stopped:
        out.append(
            FieldChange(EventKind.WHY_STOPPED, "why_stopped", before=old.why_stopped, after=new.why_stopped)
        )
    if old.has_results != new.has_results:
        kind = EventKind.RESULTS_POSTED if new.has_results else EventKind.RESULTS_REMOVED
        out.append(
            FieldChange(
                kind,
                "has_results",
                before=_results(old),
                after=_results(new),
            )
        )
    elif new.has_results and "results" not in baseline and old.results != new.results:
        out.append(
            FieldChange(EventKind.RESULTS_UPDATED, "results", before=_results(old), after=_results(new))
        )
    if (old.enrollment_count, old.enrollment_type) != (new.enrollment_count, new.enrollment_type):
        out.append(
            FieldChange(
                EventKind.ENROLLMENT,
                "enrollment",
                before={"count": old.enrollment_count, "type": old.enrollment_type},
                after={"count": new.enrollment_count, "type": new.enrollment_type},
            )
        )
    for name in ("start_date", "primary_completion_date", "completion_date"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(FieldChange(EventKind.DATE, name, before=_date(a), after=_date(b)))
    if old.phases != new.phases:
        out.append(FieldChange(EventKind.PHASE, "phases", before=list(old.phases), after=list(new.phases)))
    if text_key(old.lead_sponsor) != text_key(new.lead_sponsor):
        out.append(
            FieldChange(EventKind.SPONSOR, "lead_sponsor", before=old.lead_sponsor, after=new.lead_sponsor)
        )
    out += _set_changes(
        old.collaborators,
        new.collaborators,
        text_key,
        str,
        EventKind.SPONSOR,
        EventKind.SPONSOR,
        "collaborators",
    )

    old_sites, new_sites = _keyed(old.sites, lambda s: s.key), _keyed(new.sites, lambda s: s.key)
    for k in sorted(old_sites.keys() & new_sites.keys()):
        if old_sites[k].status != new_sites[k].status:
            out.append(
                FieldChange(
                    EventKind.SITE_STATUS,
                    "sites",
                    k,
                    {"site": old_sites[k].label(), "status": old_sites[k].status},
                    {"site": new_sites[k].label(), "status": new_sites[k].status},
                )
            )
    out += _set_changes(
        old.sites,
        new.sites,
        lambda s: s.key,
        lambda s: {"site": s.label(), "status": s.status},
        EventKind.SITE_ADDED,
        EventKind.SITE_REMOVED,
        "sites",
    )
    out += _set_changes(
        old.conditions,
        new.conditions,
        text_key,
        str,
        EventKind.CONDITION_ADDED,
        EventKind.CONDITION_REMOVED,
        "conditions",
    )
    out += _set_changes(
        old.interventions,
        new.interventions,
        lambda i: i.key,
        lambda i: i.label(),
        EventKind.INTERVENTION_ADDED,
        EventKind.INTERVENTION_REMOVED,
        "interventions",
    )
    out += _set_changes(
        old.arms,
        new.arms,
        lambda a: a.key,
        lambda a: a.label,
        EventKind.ARM_ADDED,
        EventKind.ARM_REMOVED,
        "arms",
    )
    out += protocol.changes(old, new, skip=baseline)
    # an EU CTIS trial's applications: one submitted, decided, or (never seen) withdrawn
    old_mods, new_mods = (
        _keyed(old.modifications, lambda m: m.key),
        _keyed(new.modifications, lambda m: m.key),
    )
    for k in sorted(old_mods.keys() | new_mods.keys()):
        a, b = old_mods.get(k), new_mods.get(k)
        if a != b:
            out.append(
                FieldChange(
                    EventKind.MODIFICATION,
                    "modifications",
                    k,
                    a.to_json() if a else None,
                    b.to_json() if b else None,
                )
            )
    for name in ("brief_title", "official_title", "acronym"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(FieldChange(EventKind.TITLE, name, before=a, after=b))
    return out


def new_study_change(study: Study, label: Classification | None = None) -> FieldChange:
    """The single event recorded when a study is first seen (with its scope at that time)."""
    after: dict[str, Any] = {
        "status": study.overall_status,
        "title": study.title,
        "first_posted": study.first_post_date,
        "phases": list(study.phases),
    }
    if label is not None:
        after["in_scope"] = label.in_scope
    return FieldChange(EventKind.NEW_STUDY, "study", before=None, after=after)

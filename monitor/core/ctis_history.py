"""What an EU CTIS record says about its own past. Pure.

CTIS keeps no versions (shared notes CTIS.md, section 10): ctmonitor's snapshots are the
history of every field. But each record lists its applications (the initial one, then
each substantial and non-substantial modification and each member state added, with
when it was submitted and what each country decided) and each member state's status
history (Under evaluation → Authorised …, dated, in no order). Those are the registry's
own history: the applications are a tracked field (a new modification, or a decision on
one, is a change like any other), and on a trial's first sight both are imported as
registry history, dated by their own dates, as the backfill does for ClinicalTrials.gov.
"""

from __future__ import annotations

from typing import Any

from monitor.core.ctis import MEMBER_STATE, _d, _l, iso_date
from monitor.core.domain import EventKind, FieldChange, Modification

# Application types (CTIS.md 6.5) in the reader's words.
KINDS = {
    "INITIAL": "Initial application",
    "SUBSTANTIAL MODIFICATION": "Substantial modification",
    "NON SUBSTANTIAL MODIFICATION": "Non-substantial modification",
    "SUBSEQUENT ADDITION OF MSC": "Member state added",
}
DECISIONS = {"authorized": "authorised", "authorized_conditions": "authorised with conditions"}


def _words(value: Any, table: dict[str, str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    v = value.strip()
    return table.get(v, table.get(v.lower(), v.replace("_", " ").capitalize()))


def _application(rec: dict[str, Any]) -> dict[str, Any]:
    return _d(rec.get("authorizedApplication")) or rec  # CTIS1: the parts sit at the top


def modifications(rec: dict[str, Any]) -> tuple[Modification, ...]:
    """The record's applications, in the order they were submitted (then by key)."""
    out: dict[str, Modification] = {}
    for a in _l(_application(rec).get("applicationInfo")):
        a = _d(a)
        key = a.get("businessKey")
        if not isinstance(key, str) or not key.strip():
            continue
        decisions = sorted(
            {
                (str(d.get("mscName")), words)
                for d in map(_d, _l(a.get("decisions")))
                if d.get("mscName") and (words := _words(d.get("decision"), DECISIONS))
            }
        )
        out[key.strip()] = Modification(
            key=key.strip(),
            kind=_words(a.get("type"), KINDS) or key.strip(),
            submitted=iso_date(a.get("submissionDate")),
            decided=iso_date(a.get("decisionDate")),
            decisions=tuple(decisions),
        )
    return tuple(sorted(out.values(), key=lambda m: (m.submitted or "", m.key)))


def history(rec: dict[str, Any]) -> list[tuple[str | None, FieldChange]]:
    """The registry's own history in a record, oldest first: each application (dated by
    its decision, else its submission) and each member state's status transitions, as the
    changes they were, with their dates."""
    out: list[tuple[str | None, FieldChange]] = []
    for m in modifications(rec):
        change = FieldChange(
            EventKind.MODIFICATION, "modifications", key=m.key, before=None, after=m.to_json()
        )
        out.append((m.decided or m.submitted, change))
    for part in map(_d, _l(_application(rec).get("authorizedPartsII"))):
        info = _d(part.get("mscInfo"))
        country = info.get("mscName") or info.get("countryName")
        if not country:
            continue
        site = f"{MEMBER_STATE}, {country}"
        # in time order (the array comes in no order): by day, then by the time of day the
        # ISO timestamp carries
        dated = []
        for h in map(_d, _l(info.get("clinicalTrialStatusHistory"))):
            day, status = iso_date(h.get("trialStatusDate")), str(h.get("trialStatus") or "").strip()
            if day and status:
                dated.append((day, str(h.get("trialStatusDate")), status))
        steps = [(day, status) for day, _at, status in sorted(dated)]
        previous: str | None = None
        for step, (day, status) in enumerate(steps):
            if status == previous:
                continue
            # the first step is the country joining ("+ Member state, Germany (Under
            # evaluation)"), each later one a move of its status
            change = FieldChange(
                EventKind.SITE_STATUS if previous else EventKind.SITE_ADDED,
                "application_status",
                key=f"msc|{country}|{day}|{step}",  # unique on its snapshot, two moves a day too
                before={"site": site, "status": previous} if previous else None,
                after={"site": site, "status": status},
            )
            out.append((day, change))
            previous = status
    return sorted(out, key=lambda dc: dc[0] or "")

"""A trial of a WHO ICTRP XML export as a `Study`. Pure.

ICTRP is the lawful route to ChiCTR and jRCT (and the other primary registries) records:
a person exports a search from the ICTRP portal and ctmonitor imports the file
(`ctmonitor import ictrp`). Each `<Trial>` is flat text elements; ctmonitor keeps those
fields as a JSON object (its stored record) and reads them here. The export's habits,
handled once (shared notes ICTRP.md): values padded with whitespace and newlines, `<br>`
inside text, registration dates per register (the `Date_registration3` YYYYMMDD is the one
read), enrolment dates in five formats, `Last_Refreshed_on` as "23 March 2026",
per-group target sizes ("CAR-T group:12;"), a `JPRN-` prefix before jRCT numbers, and
contacts never read. Statuses are the register's words ("Not Recruiting"), mapped to
the reader's only where the words say it ("Recruiting").
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from monitor.core.domain import Criterion, Intervention, Outcome, PartialDate, Site, Study
from monitor.core.record import RecordError
from monitor.core.text import clean_cached

# The fields a stored record keeps: everything but people's contact details.
CONTACTS = frozenset(
    {"Contact_Firstname", "Contact_Lastname", "Contact_Address", "Contact_Email", "Contact_Tel"}
)
# Registers ctmonitor polls directly: their trials come from their own APIs, not the export.
POLLED_DIRECTLY = ("NCT", "CTIS")
_STATUSES = {
    "recruiting": "RECRUITING",
    "authorised": "NOT_YET_RECRUITING",
    "authorized": "NOT_YET_RECRUITING",
    "pending": "NOT_YET_RECRUITING",
    "not yet recruiting": "NOT_YET_RECRUITING",
    "completed": "COMPLETED",
    "suspended": "SUSPENDED",
    "terminated": "TERMINATED",
    "withdrawn": "WITHDRAWN",
}
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}


class IctrpRecordError(RecordError):
    """An ICTRP trial without an id, or not of the export's shape."""


def trial_id(raw_id: str) -> str:
    """The registration number of an export's TrialID: `JPRN-jRCT2031230123` -> jRCT…;
    `EUCTR2019-001588-63-DE` (one record per member state) -> the trial's EudraCT number."""
    v = raw_id.strip()
    if v.startswith("JPRN-jRCT"):
        return v.removeprefix("JPRN-")
    if m := re.match(r"EUCTR(\d{4}-\d{6}-\d{2})", v):
        return m.group(1)
    return v


def polled_directly(raw_id: str) -> bool:
    return raw_id.strip().upper().startswith(POLLED_DIRECTLY)


def fields_of(values: dict[str, str | None]) -> dict[str, str]:
    """A trial's fields as stored: stripped, empty ones dropped, contacts left out."""
    out = {}
    for k, v in values.items():
        if k in CONTACTS or v is None:
            continue
        v = v.strip()
        if v:
            out[k] = v
    return out


def _text(value: str | None) -> str | None:
    if not value:
        return None
    value = re.sub(r"(?i)\r?<br\s*/?>|</?p>", "\n", value.replace("\r", "\n"))
    return clean_cached(value) or None


def _list(value: str | None) -> list[str]:
    return [
        x.strip()
        for x in (value or "").split(";")
        if x.strip() and x.strip().lower() not in ("n/a", "none", "nil")
    ]


def _date(value: str | None) -> str | None:
    """A date in any of the export's formats, as YYYY-MM-DD (None when unreadable)."""
    if not value:
        return None
    v = value.strip()
    for pattern, order in (
        (r"(\d{4})(\d{2})(\d{2})", "ymd"),
        (r"(\d{4})-(\d{2})-(\d{2})", "ymd"),
        (r"(\d{4})/(\d{2})/(\d{2})", "ymd"),
        (r"(\d{2})/(\d{2})/(\d{4})", "dmy"),
        (r"(\d{2})-(\d{2})-(\d{4})", "dmy"),
    ):
        if m := re.fullmatch(pattern, v):
            y, mo, d = (
                (m.group(1), m.group(2), m.group(3))
                if order == "ymd"
                else (m.group(3), m.group(2), m.group(1))
            )
            return f"{y}-{mo}-{d}"
    for fmt in ("%d %B %Y", "%B %d, %Y", "%d %b %Y"):
        try:
            return datetime.strptime(v, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _size(value: str | None) -> int | None:
    numbers = [int(n) for n in re.findall(r"(?:^|[:;\s])(\d+)(?=;|$|\s)", value or "")]
    return sum(numbers) if numbers else None


def _phases(value: str | None) -> tuple[str, ...]:
    text = (value or "").lower().replace("phase", " ").replace("/", " ").replace("-", " ")
    out: list[str] = []
    for token in text.split():
        token = _ROMAN.get(token, token)
        if token in ("1", "2", "3", "4") and f"PHASE{token}" not in out:
            out.append(f"PHASE{token}")
    return tuple(out)


def from_bytes(raw: bytes) -> Study:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise IctrpRecordError(f"an ICTRP record that is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise IctrpRecordError("an ICTRP record must be a JSON object")
    return to_study(data)


def to_study(f: dict[str, Any]) -> Study:
    raw_id = f.get("TrialID")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise IctrpRecordError("an ICTRP trial without a TrialID")
    number = trial_id(raw_id)
    words = f.get("Recruitment_Status") or None
    status = _STATUSES.get((words or "").strip().lower(), "UNKNOWN" if words else None)
    kind = (f.get("Study_type") or "").lower()
    study_type = (
        "INTERVENTIONAL" if "interventional" in kind else "OBSERVATIONAL" if "observational" in kind else None
    )
    criteria = tuple(
        Criterion(section, line.strip())
        for section, key in (("Inclusion", "Inclusion_Criteria"), ("Exclusion", "Exclusion_Criteria"))
        for line in (_text(f.get(key)) or "").split("\n")
        if line.strip()
    )
    outcomes = tuple(
        Outcome(f"{kind_}:{i}", kind_, measure)
        for kind_, key in (("PRIMARY", "Primary_outcome"), ("SECONDARY", "Secondary_outcome"))
        for i, measure in enumerate(_list(f.get(key)), 1)
    )
    interventions = tuple(
        Intervention(f"ictrp:{text.lower()}", None, text) for text in _list(f.get("Intervention"))
    )
    countries = _list(f.get("Countries"))
    start = _date(f.get("Date_enrollement"))
    minimum, maximum = f.get("Inclusion_agemin"), f.get("Inclusion_agemax")
    return Study(
        nct_id=number,
        brief_title=_text(f.get("Public_title")),
        official_title=_text(f.get("Scientific_title")),
        acronym=_text(f.get("Acronym")),
        secondary_ids=tuple(
            [*_list(f.get("Secondary_ID")), *([raw_id.strip()] if raw_id.strip() != number else [])]
        ),
        study_type=study_type,
        overall_status=status,
        registry_status=words,
        start_date=PartialDate(start, None) if start else None,
        enrollment_count=_size(f.get("Target_size")),
        phases=_phases(f.get("Phase")),
        conditions=tuple(_list(f.get("Condition"))),
        interventions=interventions,
        lead_sponsor=_text(f.get("Primary_sponsor")),
        collaborators=tuple(_list(f.get("Secondary_Sponsor"))),
        sites=tuple(Site(f"country|{c}", None, None, None, c, None) for c in countries),
        has_results=(f.get("results_yes_no") or "").lower() == "yes",
        first_post_date=_date(f.get("Date_registration3")) or _date(f.get("Date_registration")),
        last_update_post_date=_date(f.get("Last_Refreshed_on")),
        brief_summary=_text(f.get("Study_design")),
        criteria=criteria,
        minimum_age=minimum if minimum and minimum.upper() not in ("N/A", "NONE") else None,
        maximum_age=maximum if maximum and maximum.upper() not in ("N/A", "NONE") else None,
        outcomes=outcomes,
        modules=("eligibilityModule", "outcomesModule"),
    )

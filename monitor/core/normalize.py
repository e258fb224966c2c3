"""Raw ClinicalTrials.gov v2 study JSON -> normalized `Study`, plus content hashes.

Pure functions. The registry reformats text (markdown escapes, HTML entities in
history versions, whitespace), pads MeSH ids differently over the years, uses the
enrollment sentinel 99999999 and leaves whole modules out of old or observational
records. Everything here exists so that none of that reaches the differ.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from monitor.core import protocol, record, results
from monitor.core.domain import NCT_RE, Arm, Intervention, MeshTerm, PartialDate, Site, Study
from monitor.core.record import RecordError, StudyRecord
from monitor.core.text import clean_cached

__all__ = ["RecordError", "content_hash", "nct_id_of", "raw_hash", "to_study"]

T = TypeVar("T")

# Bumped whenever normalizing gives other values for the same record (2: markup is
# removed only where it is markup, so comparisons such as `\<18` survive). Stored studies
# are then re-derived from their raw records at the next poll (see monitor.tracking.reclassify),
# without change events: a text that changed only because our cleaning did is not news.
# 3: the detailed description is read (for the classifier); 4: eligibility, outcomes,
# design, references and the IPD statement are read (monitor.core.protocol); 5: the studies
# row gains the primary completion date and the number of sites (migration 0012), filled
# for every stored study by that re-derivation. 6: posted results are read (monitor.core.results)
# and the studies row gains its registry and the other registrations its record names
# (migration 0015), filled the same way. 7: a CTIS trial's applications are read
# (core.ctis_history) and the studies row keeps the registry's own status words (0016).
NORMALIZER_VERSION = "7"

ENROLLMENT_UNKNOWN = 99999999
PHASE_ORDER = ("EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA")

_NON_WORD = re.compile(r"[^0-9a-z]+")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_ASCII_NON_WORD = bytes(c if chr(c) in "0123456789abcdefghijklmnopqrstuvwxyz" else 32 for c in range(256))


@dataclass(frozen=True, slots=True)
class Read:
    """A part of the record `to_study` reads; `doctor` checks the registry's answer has it."""

    path: str
    what: str
    every_record: bool = False  # else: expected in some record of any page of studies
    needed: bool = True  # else: its absence weakens labels or history, breaks nothing


# What to_study reads: in every record, or in some record of any page.
READS = (
    Read("protocolSection.identificationModule.nctId", "the NCT id", every_record=True),
    Read("protocolSection.identificationModule.briefTitle", "the title", every_record=True),
    Read("protocolSection.statusModule.overallStatus", "the status", every_record=True),
    Read("protocolSection.statusModule.lastUpdatePostDateStruct", "the last update date", every_record=True),
    Read("protocolSection.statusModule.startDateStruct", "dates"),
    Read("protocolSection.sponsorCollaboratorsModule.leadSponsor", "the sponsor"),
    Read("protocolSection.conditionsModule.conditions", "conditions"),
    Read("protocolSection.designModule.studyType", "the study type"),
    Read("protocolSection.designModule.enrollmentInfo", "enrollment"),
    Read("protocolSection.armsInterventionsModule.interventions", "interventions"),
    Read("protocolSection.descriptionModule.briefSummary", "the summary the classifier reads"),
    Read(
        "protocolSection.descriptionModule.detailedDescription",
        "the detailed description the classifier reads",
        needed=False,
    ),
    Read("protocolSection.contactsLocationsModule.locations", "sites"),
    Read("protocolSection.eligibilityModule.eligibilityCriteria", "eligibility criteria", needed=False),
    Read("protocolSection.outcomesModule.primaryOutcomes", "primary outcomes", needed=False),
    Read("protocolSection.designModule.designInfo", "the design (allocation, masking)", needed=False),
    Read("protocolSection.referencesModule.references", "publications", needed=False),
    Read("derivedSection.conditionBrowseModule", "condition MeSH terms", needed=False),
    Read("hasResults", "results", needed=False),
)


def clean_text(value: Any) -> str | None:
    """Text as a reader sees it (see monitor.text): markup removed, references decoded,
    Markdown escapes undone, spaces folded; every character that is not markup kept."""
    return None if value is None else clean_cached(str(value))


# Short strings recur across thousands of records: bounded caches keep memory flat.
_CACHE = 8192


@functools.lru_cache(maxsize=_CACHE)
def text_key(value: str | None) -> str:
    """A comparison key that ignores case, accents, punctuation and spacing."""
    if not value:
        return ""
    if value.isascii():
        # Most text: lower-case, every other byte a space, spaces folded; a third of the regex's time.
        return " ".join(value.lower().encode().translate(_ASCII_NON_WORD).decode().split())
    text = unicodedata.normalize("NFKD", value)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text.casefold()).strip()


@functools.lru_cache(maxsize=_CACHE)
def mesh_id(value: Any) -> str | None:
    """`D000013166` and `D013166` are the same descriptor; keep the registry's current form.

    Descriptors created before 2014 (numbers up to 66999) are written with six digits
    (D013166); later ones with nine (D000071378). Older registry exports padded all to nine.
    """
    if not value:
        return None
    s = str(value).strip().upper()
    m = re.match(r"^([A-Z])0*(\d+)$", s)
    if not m:
        return s
    prefix, digits = m.group(1), int(m.group(2))
    return f"{prefix}{digits:06d}" if digits < 67_000 else f"{prefix}{digits:09d}"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def _partial_date(struct: record.DateStruct | None) -> PartialDate | None:
    if struct is None or not struct.date:
        return None
    return _date(struct.date, struct.type or None)


@functools.lru_cache(maxsize=_CACHE)
def _date(raw: str, kind: str | None) -> PartialDate:
    """Dates recur across records (a few thousand days in all): each is read once."""
    value = raw.strip()
    if not _DATE.match(value):
        # Keep what the registry wrote rather than guess; it still compares as text.
        value = clean_text(value) or value
    return PartialDate(date=value, type=kind.upper() if kind else None)


def _full_date(struct: record.DateStruct | None) -> str | None:
    d = _partial_date(struct)
    return d.date if d else None


def _unique(items: Iterable[str | None] | None) -> tuple[str, ...]:
    """Clean, drop empties and duplicates (by key), keep first spelling, sort by key."""
    if not items:
        return ()
    seen: dict[str, str] = {}
    for item in items:
        text = clean_text(item)
        if text and (k := text_key(text)) not in seen:
            seen[k] = text
    return tuple(seen[k] for k in sorted(seen))


@functools.lru_cache(maxsize=_CACHE)
def _mesh_term(raw_id: str | None, raw_term: str | None) -> tuple[str, MeshTerm] | None:
    term = clean_text(raw_term)
    return (text_key(term), MeshTerm(id=mesh_id(raw_id), term=term)) if term else None


def _mesh(items: list[record.Mesh | None] | None) -> tuple[MeshTerm, ...]:
    """MeSH terms and ancestors: the same few thousand descriptors recur in every record."""
    if not items:
        return ()
    out: dict[str, MeshTerm] = {}
    for m in items:
        if m is not None and (item := _mesh_term(m.id, m.term)) and item[0] not in out:
            out[item[0]] = item[1]
    return tuple(out[k] for k in sorted(out))


def _dedupe_keys(keys: list[str]) -> list[str]:
    """Make item keys unique when a record lists the same thing twice (it happens with sites)."""
    seen: dict[str, int] = {}
    out = []
    for k in keys:
        n = seen.get(k, 0) + 1
        seen[k] = n
        out.append(k if n == 1 else f"{k} #{n}")
    return out


def _keyed(rows: list[tuple[Any, ...]], cls: Callable[..., T]) -> tuple[T, ...]:
    """Items sorted by key (each row's first field), keys made unique, built once."""
    if not rows:
        return ()
    rows.sort(key=lambda r: r[0])
    keys = _dedupe_keys([r[0] for r in rows])
    return tuple(cls(k, *r[1:]) for k, r in zip(keys, rows, strict=True))


@functools.lru_cache(maxsize=_CACHE)
def _place(
    facility: str | None, city: str | None, state: str | None, country: str | None
) -> tuple[str, str | None, str | None, str | None, str | None]:
    """A site's key and cleaned parts. The same hospitals recur across many records (and
    a large study lists hundreds of sites), so each place is cleaned once."""
    parts = (clean_text(facility), clean_text(city), clean_text(state), clean_text(country))
    return (" | ".join([text_key(p) for p in parts]), *parts)


def _sites(locations: list[record.Location | None] | None) -> tuple[Site, ...]:
    rows = [
        (*_place(loc.facility, loc.city, loc.state, loc.country), _upper(loc.status))
        for loc in locations or ()
        if loc is not None
    ]
    return _keyed(rows, Site)


def _interventions(items: list[record.InterventionItem | None] | None) -> tuple[Intervention, ...]:
    rows = []
    for iv in items or ():
        if iv is None or not (name := clean_text(iv.name)):
            continue
        rows.append(
            (text_key(name), _upper(iv.type), name, _unique(iv.otherNames), clean_text(iv.description))
        )
    return _keyed(rows, Intervention)


def _arms(items: list[record.ArmGroup | None] | None) -> tuple[Arm, ...]:
    rows = []
    for arm in items or ():
        if arm is None or not (label := clean_text(arm.label)):
            continue
        rows.append(
            (
                text_key(label),
                label,
                _upper(arm.type),
                clean_text(arm.description),
                _unique(arm.interventionNames),
            )
        )
    return _keyed(rows, Arm)


def _nct(value: str | None) -> str:
    nct = value.strip().upper() if isinstance(value, str) else None
    if not nct or not NCT_RE.match(nct):
        raise RecordError(f"study record without a valid nctId: {str(value)[:40]!r}")
    return nct


def nct_id_of(raw: Any) -> str:
    """The NCT id of a raw record, or RecordError: a record without one is malformed."""
    return _nct(_get(raw, "protocolSection", "identificationModule", "nctId"))


def _enrollment(info: record.Enrollment | None) -> tuple[int | None, str | None]:
    if info is None or info.count is None:
        return None, None
    count = info.count
    if isinstance(count, str):  # a count the registry wrote as words is unknown, not refused
        try:
            count = int(count)
        except ValueError:
            return None, None
    if count == ENROLLMENT_UNKNOWN:
        return None, None
    return count, _upper(info.type)


def _phases(items: list[str | None] | None) -> tuple[str, ...]:
    if not items:
        return ()
    phases = {p.upper() for p in items if p}
    return tuple(p for p in PHASE_ORDER if p in phases) + tuple(sorted(phases - set(PHASE_ORDER)))


# Empty parts, for modules a record leaves out.
_IDENT, _STATUS, _SPONSORS = record.Identification(), record.Status(), record.Sponsors()
_CONDITIONS, _DESIGN, _ARMS = record.Conditions(), record.Design(), record.ArmsInterventions()
_DESCRIPTION, _CONTACTS, _SPONSOR = record.Description(), record.ContactsLocations(), record.Sponsor()
_DERIVED, _BROWSE = record.Derived(), record.Browse()


def to_study(raw: StudyRecord | bytes | dict[str, Any]) -> Study:
    """Normalize one v2 study record (from /studies, /studies/{id} or a history version):
    its bytes as sent, or a record already parsed (checked against the same declaration,
    monitor.core.record). A record of the wrong shape raises RecordError naming the field."""
    if isinstance(raw, StudyRecord):
        rec = raw
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        rec = record.decode(bytes(raw))
    else:
        rec = record.from_data(raw)
    ps = rec.protocolSection or record.EMPTY_PROTOCOL
    ident = ps.identificationModule or _IDENT
    nct = _nct(ident.nctId)
    status = ps.statusModule or _STATUS
    sponsors = ps.sponsorCollaboratorsModule or _SPONSORS
    conditions = ps.conditionsModule or _CONDITIONS
    design = ps.designModule or _DESIGN
    arms = ps.armsInterventionsModule or _ARMS
    desc = ps.descriptionModule or _DESCRIPTION
    derived = rec.derivedSection or _DERIVED
    condition_browse = derived.conditionBrowseModule or _BROWSE
    count, etype = _enrollment(design.enrollmentInfo)
    lead = sponsors.leadSponsor or _SPONSOR
    return Study(
        nct_id=nct,
        brief_title=clean_text(ident.briefTitle),
        official_title=clean_text(ident.officialTitle),
        acronym=clean_text(ident.acronym),
        aliases=tuple(sorted({a.strip().upper() for a in ident.nctIdAliases or () if a and a.strip()})),
        secondary_ids=_unique(s.id for s in ident.secondaryIdInfos or () if s.id),
        study_type=_upper(design.studyType),
        overall_status=_upper(status.overallStatus),
        last_known_status=_upper(status.lastKnownStatus),
        why_stopped=clean_text(status.whyStopped),
        status_verified_date=clean_text(status.statusVerifiedDate),
        start_date=_partial_date(status.startDateStruct),
        primary_completion_date=_partial_date(status.primaryCompletionDateStruct),
        completion_date=_partial_date(status.completionDateStruct),
        enrollment_count=count,
        enrollment_type=etype,
        phases=_phases(design.phases),
        conditions=_unique(conditions.conditions),
        keywords=_unique(conditions.keywords),
        condition_mesh=_mesh(condition_browse.meshes),
        condition_ancestors=_mesh(condition_browse.ancestors),
        intervention_mesh=_mesh(
            derived.interventionBrowseModule.meshes if derived.interventionBrowseModule else None
        ),
        interventions=_interventions(arms.interventions),
        arms=_arms(arms.armGroups),
        lead_sponsor=clean_text(lead.name),
        lead_sponsor_class=_upper(lead.sponsor_class),
        collaborators=_unique([c.name for c in sponsors.collaborators or () if c is not None]),
        sites=_sites((ps.contactsLocationsModule or _CONTACTS).locations),
        has_results=bool(rec.hasResults),
        results_first_post_date=_full_date(status.resultsFirstPostDateStruct),
        results=results.read(rec.resultsSection),
        first_post_date=_full_date(status.studyFirstPostDateStruct),
        last_update_post_date=_full_date(status.lastUpdatePostDateStruct),
        last_update_submit_date=clean_text(status.lastUpdateSubmitDate),
        brief_summary=clean_text(desc.briefSummary),
        detailed_description=clean_text(desc.detailedDescription),
        **protocol.read(ps),
    )


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, compact, UTF-8): the basis of content hashes."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def raw_json(raw: dict[str, Any]) -> bytes:
    """The record as compact JSON, in the registry's own key order (stable in practice; a
    reordering would cost one extra snapshot, never an event). Sorting keys would double the cost."""
    return orjson.dumps(raw)


def raw_hash(raw: dict[str, Any] | bytes) -> str:
    """Identity of the record as fetched: a new snapshot is stored only when this moves."""
    return hashlib.sha256(raw if isinstance(raw, bytes) else raw_json(raw)).hexdigest()


def tracked_view(study: Study) -> dict[str, Any]:
    """Exactly what the differ compares, keyed the way it compares it.

    `content_hash(a) == content_hash(b)` if and only if `diff(a, b)` is empty; a test
    holds the two to that.
    """

    def d(v: PartialDate | None) -> list[str | None] | None:
        return [v.date, v.type] if v else None

    return {
        "titles": [study.brief_title, study.official_title, study.acronym],
        "status": [study.overall_status, study.last_known_status],
        "why_stopped": study.why_stopped,
        "dates": [d(study.start_date), d(study.primary_completion_date), d(study.completion_date)],
        "enrollment": [study.enrollment_count, study.enrollment_type],
        "phases": list(study.phases),
        "conditions": sorted(text_key(c) for c in study.conditions),
        "interventions": sorted(i.key for i in study.interventions),
        "arms": sorted(a.key for a in study.arms),
        "sponsor": [text_key(study.lead_sponsor), sorted(text_key(c) for c in study.collaborators)],
        "sites": sorted([s.key, s.status] for s in study.sites),
        # a study without a results section hashes as it did before the section was read
        "results": [study.has_results, study.results.to_json()] if study.results else study.has_results,
        **protocol.tracked(study),
        # a CTIS trial's applications; a study without any hashes as it did before they were read
        **({"modifications": [m.to_json() for m in study.modifications]} if study.modifications else {}),
    }


def content_hash(study: Study) -> str:
    return hashlib.sha256(canonical_json(tracked_view(study))).hexdigest()

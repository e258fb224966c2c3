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

from monitor.core import protocol
from monitor.core.domain import NCT_RE, Arm, Intervention, MeshTerm, PartialDate, Site, Study
from monitor.core.text import clean

T = TypeVar("T")

# Bumped whenever normalizing gives other values for the same record (2: markup is
# removed only where it is markup, so comparisons such as `\<18` survive). Stored studies
# are then re-derived from their raw records at the next poll (see monitor.tracking.reclassify),
# without change events: a text that changed only because our cleaning did is not news.
# 3: the detailed description is read (for the classifier); 4: eligibility, outcomes,
# design, references and the IPD statement are read (monitor.core.protocol).
NORMALIZER_VERSION = "4"

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


class RecordError(ValueError):
    """A study record without the minimum we need (an NCT id)."""


def clean_text(value: Any) -> str | None:
    """Text as a reader sees it (see monitor.text): markup removed, references decoded,
    Markdown escapes undone, spaces folded; every character that is not markup kept."""
    if value is None:
        return None
    text = str(value)
    if len(text) <= _SHORT:
        return _clean_short(text)
    return clean(text)


# Short strings (conditions, MeSH terms, countries, statuses) repeat across thousands of
# records; bounded caches make normalizing them nearly free and keep memory flat.
_SHORT = 160
_CACHE = 8192

_clean_short = functools.lru_cache(maxsize=_CACHE)(clean)


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


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _partial_date(struct: Any) -> PartialDate | None:
    if not isinstance(struct, dict):
        return None
    raw, kind = struct.get("date"), struct.get("type")
    if not raw:
        return None
    return _date(str(raw), str(kind) if kind else None)


@functools.lru_cache(maxsize=_CACHE)
def _date(raw: str, kind: str | None) -> PartialDate:
    """Dates recur across records (a few thousand days in all): each is read once."""
    value = raw.strip()
    if not _DATE.match(value):
        # Keep what the registry wrote rather than guess; it still compares as text.
        value = clean_text(value) or value
    return PartialDate(date=value, type=kind.upper() if kind else None)


def _full_date(struct: Any) -> str | None:
    d = _partial_date(struct)
    return d.date if d else None


def _unique(items: Iterable[str | None]) -> tuple[str, ...]:
    """Clean, drop empties and duplicates (by key), keep first spelling, sort by key."""
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


def _mesh(module: Any, list_name: str) -> tuple[MeshTerm, ...]:
    """MeSH terms and ancestors: the same few thousand descriptors recur in every record."""
    out: dict[str, MeshTerm] = {}
    for m in _list(_get(module, list_name)):
        if isinstance(m, dict):
            rid, rterm = m.get("id"), m.get("term")
            item = _mesh_term(
                str(rid) if rid is not None else None, str(rterm) if rterm is not None else None
            )
            if item and item[0] not in out:
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
    rows.sort(key=lambda r: r[0])
    keys = _dedupe_keys([r[0] for r in rows])
    return tuple(cls(k, *r[1:]) for k, r in zip(keys, rows, strict=True))


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@functools.lru_cache(maxsize=_CACHE)
def _place(
    facility: str | None, city: str | None, state: str | None, country: str | None
) -> tuple[str, str | None, str | None, str | None, str | None]:
    """A site's key and cleaned parts. The same hospitals recur across many records (and
    a large study lists hundreds of sites), so each place is cleaned once."""
    parts = (clean_text(facility), clean_text(city), clean_text(state), clean_text(country))
    return (" | ".join([text_key(p) for p in parts]), *parts)


def _sites(module: Any) -> tuple[Site, ...]:
    rows = []
    for loc in _list(_get(module, "locations")):
        if not isinstance(loc, dict):
            continue
        place = _place(
            _text_or_none(loc.get("facility")),
            _text_or_none(loc.get("city")),
            _text_or_none(loc.get("state")),
            _text_or_none(loc.get("country")),
        )
        status = loc.get("status")
        rows.append((*place, str(status).upper() if status else None))
    return _keyed(rows, Site)


def _interventions(module: Any) -> tuple[Intervention, ...]:
    rows = []
    for iv in _list(_get(module, "interventions")):
        if not isinstance(iv, dict):
            continue
        name = clean_text(iv.get("name"))
        if not name:
            continue
        kind = iv.get("type")
        rows.append(
            (
                text_key(name),
                str(kind).upper() if kind else None,
                name,
                _unique(_list(iv.get("otherNames"))),
                clean_text(iv.get("description")),
            )
        )
    return _keyed(rows, Intervention)


def _arms(module: Any) -> tuple[Arm, ...]:
    rows = []
    for arm in _list(_get(module, "armGroups")):
        if not isinstance(arm, dict):
            continue
        label = clean_text(arm.get("label"))
        if not label:
            continue
        kind = arm.get("type")
        rows.append(
            (
                text_key(label),
                label,
                str(kind).upper() if kind else None,
                clean_text(arm.get("description")),
                _unique(_list(arm.get("interventionNames"))),
            )
        )
    return _keyed(rows, Arm)


def nct_id_of(raw: Any) -> str:
    """The NCT id of a raw record, or RecordError: a record without one is malformed."""
    nct = _get(raw, "protocolSection", "identificationModule", "nctId")
    if not isinstance(nct, str) or not NCT_RE.match(nct.strip().upper()):
        raise RecordError(f"study record without a valid nctId: {str(nct)[:40]!r}")
    return nct.strip().upper()


def to_study(raw: dict[str, Any]) -> Study:
    """Normalize one raw v2 study (from /studies, /studies/{id} or a history version)."""
    nct = nct_id_of(raw)
    ps = raw.get("protocolSection") or {}
    ident = ps.get("identificationModule") or {}
    status = ps.get("statusModule") or {}
    sponsors = ps.get("sponsorCollaboratorsModule") or {}
    conditions = ps.get("conditionsModule") or {}
    design = ps.get("designModule") or {}
    arms = ps.get("armsInterventionsModule") or {}
    desc = ps.get("descriptionModule") or {}
    contacts = ps.get("contactsLocationsModule") or {}
    derived = raw.get("derivedSection") or {}

    enrollment = design.get("enrollmentInfo") or {}
    count = enrollment.get("count")
    try:
        count = int(count) if count is not None else None
    except (TypeError, ValueError):
        count = None
    if count == ENROLLMENT_UNKNOWN:
        count = None
    etype = enrollment.get("type")

    phases = {str(p).upper() for p in _list(design.get("phases"))}
    ordered_phases = tuple(p for p in PHASE_ORDER if p in phases) + tuple(sorted(phases - set(PHASE_ORDER)))

    lead = sponsors.get("leadSponsor") or {}
    return Study(
        nct_id=nct,
        brief_title=clean_text(ident.get("briefTitle")),
        official_title=clean_text(ident.get("officialTitle")),
        acronym=clean_text(ident.get("acronym")),
        aliases=tuple(sorted({str(a).strip().upper() for a in _list(ident.get("nctIdAliases")) if a})),
        study_type=(str(design["studyType"]).upper() if design.get("studyType") else None),
        overall_status=(str(status["overallStatus"]).upper() if status.get("overallStatus") else None),
        last_known_status=(str(status["lastKnownStatus"]).upper() if status.get("lastKnownStatus") else None),
        why_stopped=clean_text(status.get("whyStopped")),
        status_verified_date=clean_text(status.get("statusVerifiedDate")),
        start_date=_partial_date(status.get("startDateStruct")),
        primary_completion_date=_partial_date(status.get("primaryCompletionDateStruct")),
        completion_date=_partial_date(status.get("completionDateStruct")),
        enrollment_count=count,
        enrollment_type=(str(etype).upper() if etype and count is not None else None),
        phases=ordered_phases,
        conditions=_unique(_list(conditions.get("conditions"))),
        keywords=_unique(_list(conditions.get("keywords"))),
        condition_mesh=_mesh(derived.get("conditionBrowseModule"), "meshes"),
        condition_ancestors=_mesh(derived.get("conditionBrowseModule"), "ancestors"),
        intervention_mesh=_mesh(derived.get("interventionBrowseModule"), "meshes"),
        interventions=_interventions(arms),
        arms=_arms(arms),
        lead_sponsor=clean_text(lead.get("name")),
        lead_sponsor_class=(str(lead["class"]).upper() if lead.get("class") else None),
        collaborators=_unique(
            c.get("name") for c in _list(sponsors.get("collaborators")) if isinstance(c, dict)
        ),
        sites=_sites(contacts),
        has_results=bool(raw.get("hasResults")),
        results_first_post_date=_full_date(status.get("resultsFirstPostDateStruct")),
        first_post_date=_full_date(status.get("studyFirstPostDateStruct")),
        last_update_post_date=_full_date(status.get("lastUpdatePostDateStruct")),
        last_update_submit_date=clean_text(status.get("lastUpdateSubmitDate")),
        brief_summary=clean_text(desc.get("briefSummary")),
        detailed_description=clean_text(desc.get("detailedDescription")),
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
        "results": study.has_results,
        **protocol.tracked(study),
    }


def content_hash(study: Study) -> str:
    return hashlib.sha256(canonical_json(tracked_view(study))).hexdigest()

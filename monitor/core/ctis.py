"""An EU CTIS record (`/ctis-public-api/retrieve/{ctNumber}`) as a `Study`. Pure.

CTIS keeps what ClinicalTrials.gov keeps under other names and shapes (docs/REGISTRIES.md,
shared notes CTIS.md); this decoder is the edge's, so the core compares, classifies and
tells a CTIS trial as it does any study. Its traps are handled here, once:

- the public status is `ctPublicStatusCode` (an int, table 6.1); `ctStatus` in a full record
  is the *application* status ("Authorised"), never read as the recruitment status. The
  code is mapped to the reader's vocabulary (RECRUITING, ...) and the registry's own words
  are kept beside it (`registry_status`); an unknown code is no status, never a number;
- each member state's public status is kept as that country's entry among the sites
  ("Member state, Germany"), so a country's status moving, or a country joining, is a
  change like a site's; the trial sites themselves carry no status in CTIS;
- dates come as `DD/MM/YYYY`, `YYYY-MM-DD` or ISO timestamps with up to nine fraction
  digits: each read by its own shape, never by guessing the order;
- records fetched before the 2024 relaunch ("CTIS1": `authorizedPartI` at the top, a text
  `ctStatus`) read through the same paths with their own fallbacks;
- people's phone numbers and e-mail addresses are never read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from monitor.core.domain import Criterion, Intervention, Outcome, PartialDate, Site, Study
from monitor.core.record import RecordError
from monitor.core.text import clean_cached

CTIS_NUMBER = re.compile(r"^\d{4}-\d{6}-\d{2}-\d{2}$")

# Public status codes (CTIS.md table 6.1) -> (the registry's words, the reader's status).
PUBLIC_STATUS: dict[int, tuple[str, str]] = {
    1: ("Under evaluation", "NOT_YET_RECRUITING"),
    2: ("Authorised, recruitment pending", "NOT_YET_RECRUITING"),
    3: ("Authorised, recruiting", "RECRUITING"),
    4: ("Ongoing, recruiting", "RECRUITING"),
    5: ("Ongoing, recruitment ended", "ACTIVE_NOT_RECRUITING"),
    6: ("Temporarily halted", "SUSPENDED"),
    7: ("Suspended", "SUSPENDED"),
    8: ("Ended", "COMPLETED"),
    9: ("Expired", "WITHDRAWN"),
    10: ("Revoked", "TERMINATED"),
    11: ("Not authorised", "WITHDRAWN"),
    12: ("Cancelled", "WITHDRAWN"),
}
_BY_WORDS = {words.lower(): code for code, (words, _) in PUBLIC_STATUS.items()}

# Trial phase codes (CTIS.md table 6.3) -> ClinicalTrials.gov's phases.
PHASES: dict[str, tuple[str, ...]] = {
    "1": ("PHASE1",),
    "2": ("PHASE1",),
    "3": ("PHASE1",),
    "4": ("PHASE2",),
    "5": ("PHASE3",),
    "6": ("PHASE4",),
    "7": ("PHASE1", "PHASE2"),
    "8": ("PHASE1", "PHASE2"),
    "9": ("PHASE1", "PHASE2"),
    "10": ("PHASE2", "PHASE3"),
    "11": ("PHASE3", "PHASE4"),
}
_PHASE_WORDS = (
    ("phase i and phase ii", ("PHASE1", "PHASE2")),
    ("phase ii and phase iii", ("PHASE2", "PHASE3")),
    ("phase iii and phase iv", ("PHASE3", "PHASE4")),
    ("phase iv", ("PHASE4",)),
    ("phase iii", ("PHASE3",)),
    ("phase ii", ("PHASE2",)),
    ("phase i", ("PHASE1",)),
)
MEMBER_STATE = "Member state"  # the country's own entry among the sites: its public status


class CtisRecordError(RecordError):
    """A CTIS record without the minimum we need (a trial number), or of the wrong shape."""


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return clean_cached(str(value)) or None if value not in (None, "") else None


def iso_date(value: Any) -> str | None:
    """A CTIS date as YYYY-MM-DD, read by its own shape: `DD/MM/YYYY`, `YYYY-MM-DD`, or an
    ISO timestamp with any number of fraction digits; None for anything else."""
    if not isinstance(value, str):
        return None
    v = value.strip()
    if m := re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", v):
        return f"{m.group(3)}-{m.group(2)}-{m.group(1)}"
    if m := re.match(r"(\d{4}-\d{2}-\d{2})(?:$|T)", v):
        return m.group(1)
    return None


def public_status(code: Any) -> tuple[str | None, str | None]:
    """(the registry's words, the reader's status) of a public status code; (None, None) for
    a code the registry added without notice (never a bare number as a status)."""
    if isinstance(code, str):
        code = int(code) if code.strip().isdigit() else _BY_WORDS.get(code.strip().lower())
    if isinstance(code, int) and code in PUBLIC_STATUS:
        return PUBLIC_STATUS[code]
    return None, None


def _phases(code: Any, words: Any) -> tuple[str, ...]:
    if isinstance(code, (str, int)) and str(code) in PHASES:
        return PHASES[str(code)]
    text = " ".join(str(words or "").lower().split())
    return next((phases for key, phases in _PHASE_WORDS if key in text), ())


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for v in values:
        if v and v.strip():
            out.setdefault(" ".join(v.split()), None)
    return tuple(out)


def from_bytes(raw: bytes) -> Study:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CtisRecordError(f"a CTIS record that is not JSON: {exc}") from None
    return to_study(data)


def to_study(rec: dict[str, Any]) -> Study:
    """The Study of one full CTIS record (current or CTIS1 shape)."""
    if not isinstance(rec, dict):
        raise CtisRecordError("a CTIS record must be a JSON object")
    number = rec.get("ctNumber")
    if not isinstance(number, str) or not CTIS_NUMBER.match(number.strip()):
        raise CtisRecordError(f"a CTIS record without a trial number in the CTIS format: {number!r}")
    number = number.strip()
    app = _d(rec.get("authorizedApplication")) or rec  # CTIS1: the parts sit at the top
    part1 = _d(app.get("authorizedPartI"))
    details = _d(part1.get("trialDetails"))
    ids = _d(details.get("clinicalTrialIdentifiers"))
    info = _d(details.get("trialInformation"))
    parts2 = [_d(p) for p in _l(app.get("authorizedPartsII"))]

    words, status = public_status(
        rec.get("ctPublicStatusCode", rec.get("ctStatus") if "authorizedApplication" not in rec else None)
    )
    secondary = _d(ids.get("secondaryIdentifyingNumbers"))
    nct = _d(secondary.get("nctNumber")).get("number")
    others = [_d(r).get("number") for r in _l(secondary.get("additionalRegistries"))]
    eudract = _d(app.get("eudraCt")).get("eudraCtCode") or _d(rec.get("eudraCtInfo")).get("eudraCtCode")

    conditions = [_d(c).get("medicalCondition") for c in _l(part1.get("medicalConditions"))]
    conditions += [
        _d(c).get("medicalCondition")
        for c in _l(_d(info.get("medicalCondition")).get("partIMedicalConditions"))
    ]
    meddra = [_d(t).get("termName") for t in _l(_d(info.get("medicalCondition")).get("meddraConditionTerms"))]

    sponsors = [_d(s) for s in _l(part1.get("sponsors"))]
    lead = next((s for s in sponsors if s.get("primary")), sponsors[0] if sponsors else {})
    lead_org = _sponsor_org(lead)
    collaborators = [_sponsor_org(s).get("name") for s in sponsors if s is not lead]

    duration = _d(info.get("trialDuration"))
    starts = sorted(
        d
        for p in parts2
        for d in [iso_date(_d(_d(p.get("mscInfo")).get("activeTrialPeriod")).get("trialStartDate"))]
        if d
    )
    enrolled = sum(int(p.get("recruitmentSubjectCount") or 0) for p in parts2) + int(
        part1.get("rowSubjectCount") or 0
    )
    if (
        not parts2
        and isinstance(rec.get("totalNumberEnrolled"), (int, str))
        and str(rec["totalNumberEnrolled"]).isdigit()
    ):
        enrolled = int(rec["totalNumberEnrolled"])

    criteria = tuple(
        Criterion(section, text)
        for section, key in (
            ("Inclusion", "principalInclusionCriteria"),
            ("Exclusion", "principalExclusionCriteria"),
        )
        for item in sorted(
            _l(_d(info.get("eligibilityCriteria")).get(key)), key=lambda x: _d(x).get("number") or 0
        )
        if (text := _text(_d(item).get(key)))
    )
    endpoints = _d(info.get("endPoint"))
    outcomes = tuple(
        Outcome(f"{kind.lower()}:{i}", kind, measure)
        for kind, key in (("PRIMARY", "primaryEndPoints"), ("SECONDARY", "secondaryEndPoints"))
        for i, item in enumerate(_l(endpoints.get(key)), 1)
        if (measure := _text(_d(item).get("endPoint")))
    )
    population = _d(info.get("populationOfTrialSubjects"))
    sex = {(True, True): "ALL", (True, False): "FEMALE", (False, True): "MALE"}.get(
        (bool(population.get("isFemaleSubjects")), bool(population.get("isMaleSubjects")))
    )
    return Study(
        nct_id=number,
        brief_title=_text(ids.get("publicTitle")) or _text(ids.get("fullTitle")) or _text(rec.get("title")),
        official_title=_text(ids.get("fullTitle")) or _text(rec.get("title")),
        acronym=_text(ids.get("shortTitle")),
        secondary_ids=_unique([nct, *others, eudract]),
        study_type="INTERVENTIONAL",
        overall_status=status,
        registry_status=words,
        start_date=PartialDate(starts[0], "ACTUAL")
        if starts
        else _planned(duration.get("estimatedRecruitmentStartDate")),
        completion_date=_planned(duration.get("estimatedGlobalEndDate") or duration.get("estimatedEndDate")),
        enrollment_count=enrolled or None,
        enrollment_type="ACTUAL" if starts else "ESTIMATED" if enrolled else None,
        phases=_phases(_d(info.get("trialCategory")).get("trialPhase"), rec.get("trialPhase")),
        conditions=_unique(conditions),
        keywords=_unique(meddra),
        interventions=_products(part1),
        lead_sponsor=_text(lead_org.get("name")),
        lead_sponsor_class="INDUSTRY" if lead_org.get("commercial") else ("OTHER" if lead_org else None),
        collaborators=_unique(collaborators),
        sites=_sites(app, parts2),
        has_results=bool(_l(_d(rec.get("results")).get("summaryResults"))),
        first_post_date=iso_date(rec.get("decisionDateOverall")) or _first_decision(app),
        last_update_post_date=iso_date(rec.get("publishDate")) or iso_date(rec.get("lastUpdated")),
        brief_summary=_text(_d(info.get("trialObjective")).get("mainObjective")),
        criteria=criteria,
        sex=sex,
        outcomes=outcomes,
        modules=("eligibilityModule", "outcomesModule"),
        modifications=_modifications(rec),
    )


def _modifications(rec: dict[str, Any]) -> tuple[Any, ...]:
    from monitor.core import ctis_history  # it reads this module's dates and names

    return ctis_history.modifications(rec)


def _planned(value: Any) -> PartialDate | None:
    d = iso_date(value)
    return PartialDate(d, "ESTIMATED") if d else None


def _first_decision(app: dict[str, Any]) -> str | None:
    dates = sorted(
        d for m in _l(app.get("memberStatesConcerned")) if (d := iso_date(_d(m).get("firstDecisionDate")))
    )
    return dates[0] if dates else None


def _sponsor_org(sponsor: dict[str, Any]) -> dict[str, Any]:
    org = _d(sponsor.get("organisation"))
    if not org:
        contacts = _l(sponsor.get("publicContacts")) or _l(sponsor.get("scientificContacts"))
        org = _d(_d(contacts[0]).get("organisation")) if contacts else {}
    return org


def _products(part1: dict[str, Any]) -> tuple[Intervention, ...]:
    roles = {
        str(_d(p).get("id")): _d(g).get("productRoleName")
        for g in _l(part1.get("productRoleGroupInfos"))
        for p in _l(_d(g).get("products"))
    }
    out: list[Intervention] = []
    for p in _l(part1.get("products")):
        p = _d(p)
        info = _d(p.get("productDictionaryInfo"))
        name = (
            _text(p.get("productName"))
            or _text(info.get("prodName"))
            or _text(p.get("jsonActiveSubstanceNames"))
        )
        if not name:
            continue
        others = _unique(
            [
                p.get("sponsorProductCodeEdit"),
                p.get("jsonActiveSubstanceNames"),
                info.get("activeSubstanceName"),
            ]
        )
        role = roles.get(str(p.get("id")))
        kind = (
            "BIOLOGICAL"
            if any(_d(s).get("substanceOrigin") == "Biological" for s in _l(info.get("productSubstances")))
            else "DRUG"
        )
        if role and role.lower() == "placebo":
            kind = "DRUG"
        description = (
            "; ".join(x for x in (role and f"role: {role}", p.get("pharmaceuticalFormDisplay")) if x) or None
        )
        out.append(
            Intervention(
                f"{kind}:{name.lower()}",
                kind,
                name,
                tuple(o for o in others if o.lower() != name.lower()),
                description,
            )
        )
    return tuple(out)


def _sites(app: dict[str, Any], parts2: list[dict[str, Any]]) -> tuple[Site, ...]:
    out: dict[str, Site] = {}
    for m in _l(app.get("memberStatesConcerned")):
        m = _d(m)
        country = m.get("mscName") or m.get("countryName")
        if not country:
            continue
        _words, status = public_status(m.get("mscPublicStatusCode", m.get("trialStatus")))
        key = f"msc|{country}"
        out[key] = Site(key, MEMBER_STATE, None, None, country, status)
    for p in parts2:
        for site in _l(p.get("trialSites")):
            addr = _d(_d(site).get("organisationAddressInfo"))
            org = _d(addr.get("organisation")).get("name")
            place = _d(addr.get("address"))
            city, country = place.get("city"), place.get("countryName")
            name = _text(org) or _text(_d(site).get("departmentName"))
            key = "|".join(x or "" for x in (name, city, None, country)).lower()
            out.setdefault(key, Site(key, name, _text(city), None, _text(country), None))
    return tuple(out.values())


def record_number(rec: Any) -> str | None:
    """The trial number of a CTIS record (full or overview), when it has one."""
    number = rec.get("ctNumber") if isinstance(rec, dict) else None
    return number.strip() if isinstance(number, str) and CTIS_NUMBER.match(number.strip()) else None

"""The local registry's data: study records and their recorded histories, loaded from
files, indexed for the Essie searches the local API server answers (what each query
area reads in a record), and projected onto the fields a request asks for.
Used by monitor.registry.localserver; nothing here speaks HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = {
    "ACTIVE_NOT_RECRUITING",
    "COMPLETED",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "RECRUITING",
    "SUSPENDED",
    "TERMINATED",
    "WITHDRAWN",
    "AVAILABLE",
    "NO_LONGER_AVAILABLE",
    "TEMPORARILY_NOT_AVAILABLE",
    "APPROVED_FOR_MARKETING",
    "WITHHELD",
    "UNKNOWN",
}

STUDIES_PARAMS = {
    "format",
    "markupFormat",
    "query.cond",
    "query.term",
    "query.locn",
    "query.titles",
    "query.intr",
    "query.outc",
    "query.spons",
    "query.lead",
    "query.id",
    "query.patient",
    "filter.overallStatus",
    "filter.geo",
    "filter.ids",
    "filter.advanced",
    "filter.synonyms",
    "postFilter.overallStatus",
    "postFilter.geo",
    "postFilter.ids",
    "postFilter.advanced",
    "postFilter.synonyms",
    "aggFilters",
    "geoDecay",
    "fields",
    "sort",
    "countTotal",
    "pageSize",
    "pageToken",
}

QUERY_AREAS = {
    "query.cond": "ConditionSearch",
    "query.intr": "InterventionSearch",
    "query.term": "BasicSearch",
    "query.titles": "TitleSearch",
    "query.spons": "SponsorSearch",
    "query.lead": "LeadSponsorName",
    "query.id": "IdSearch",
    "query.locn": "LocationSearch",
}

NCT_PATTERN = re.compile(r"^[Nn][Cc][Tt]0*[1-9]\d{0,7}$")


def _g(obj: Any, *path: str) -> Any:
    for p in path:
        obj = obj.get(p) if isinstance(obj, dict) else None
    return obj


def _ls(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _strs(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values if v not in (None, "")]


def _pieces(raw: dict[str, Any]) -> dict[str, list[str]]:
    """The searchable pieces of one record, by the registry's piece names (lower-cased)."""
    ps = raw.get("protocolSection") or {}
    ident, status = ps.get("identificationModule") or {}, ps.get("statusModule") or {}
    cond, design = ps.get("conditionsModule") or {}, ps.get("designModule") or {}
    arms, spons = ps.get("armsInterventionsModule") or {}, ps.get("sponsorCollaboratorsModule") or {}
    desc, locs = ps.get("descriptionModule") or {}, _ls(_g(ps, "contactsLocationsModule", "locations"))
    derived = raw.get("derivedSection") or {}
    ivs, ags = _ls(arms.get("interventions")), _ls(arms.get("armGroups"))

    def mesh(module: str, kind: str) -> list[str]:
        return _strs(m.get("term") for m in _ls(_g(derived, module, kind)) if isinstance(m, dict))

    p = {
        "NCTId": _strs([ident.get("nctId")]),
        "NCTIdAlias": _strs(_ls(ident.get("nctIdAliases"))),
        "OrgStudyId": _strs([_g(ident, "orgStudyIdInfo", "id")]),
        "SecondaryId": _strs(s.get("id") for s in _ls(ident.get("secondaryIdInfos")) if isinstance(s, dict)),
        "Acronym": _strs([ident.get("acronym")]),
        "BriefTitle": _strs([ident.get("briefTitle")]),
        "OfficialTitle": _strs([ident.get("officialTitle")]),
        "OrgFullName": _strs([_g(ident, "organization", "fullName")]),
        "Condition": _strs(_ls(cond.get("conditions"))),
        "Keyword": _strs(_ls(cond.get("keywords"))),
        "ConditionMeshTerm": mesh("conditionBrowseModule", "meshes"),
        "ConditionAncestorTerm": mesh("conditionBrowseModule", "ancestors"),
        "InterventionMeshTerm": mesh("interventionBrowseModule", "meshes"),
        "InterventionAncestorTerm": mesh("interventionBrowseModule", "ancestors"),
        "InterventionName": _strs(i.get("name") for i in ivs if isinstance(i, dict)),
        "InterventionType": _strs(i.get("type") for i in ivs if isinstance(i, dict)),
        "InterventionOtherName": _strs(
            n for i in ivs if isinstance(i, dict) for n in _ls(i.get("otherNames"))
        ),
        "InterventionDescription": _strs(i.get("description") for i in ivs if isinstance(i, dict)),
        "ArmGroupLabel": _strs(a.get("label") for a in ags if isinstance(a, dict)),
        "ArmGroupType": _strs(a.get("type") for a in ags if isinstance(a, dict)),
        "ArmGroupDescription": _strs(a.get("description") for a in ags if isinstance(a, dict)),
        "BriefSummary": _strs([desc.get("briefSummary")]),
        "DetailedDescription": _strs([desc.get("detailedDescription")]),
        "LeadSponsorName": _strs([_g(spons, "leadSponsor", "name")]),
        "CollaboratorName": _strs(
            c.get("name") for c in _ls(spons.get("collaborators")) if isinstance(c, dict)
        ),
        "OverallStatus": _strs([status.get("overallStatus")]),
        "Phase": _strs(_ls(design.get("phases"))),
        "StudyType": _strs([design.get("studyType")]),
        "EnrollmentCount": _strs([_g(design, "enrollmentInfo", "count")]),
        "LastUpdatePostDate": _strs([_g(status, "lastUpdatePostDateStruct", "date")]),
        "StudyFirstPostDate": _strs([_g(status, "studyFirstPostDateStruct", "date")]),
        "StartDate": _strs([_g(status, "startDateStruct", "date")]),
        "LocationFacility": _strs(loc.get("facility") for loc in locs if isinstance(loc, dict)),
        "LocationCity": _strs(loc.get("city") for loc in locs if isinstance(loc, dict)),
        "LocationCountry": _strs(loc.get("country") for loc in locs if isinstance(loc, dict)),
        "LocationStatus": _strs(loc.get("status") for loc in locs if isinstance(loc, dict)),
        "LocationState": _strs(loc.get("state") for loc in locs if isinstance(loc, dict)),
        "StdAge": _strs(_ls(_g(ps, "eligibilityModule", "stdAges"))),
        "EligibilityCriteria": _strs([_g(ps, "eligibilityModule", "eligibilityCriteria")]),
        **{
            f"{kind.capitalize()}Outcome{part}": _strs(
                o.get(key) for o in _ls(_g(ps, "outcomesModule", f"{kind}Outcomes")) if isinstance(o, dict)
            )
            for kind in ("primary", "secondary", "other")
            for part, key in (("Measure", "measure"), ("Description", "description"))
        },
        "OverallOfficialName": _strs(
            o.get("name")
            for o in _ls(_g(ps, "contactsLocationsModule", "overallOfficials"))
            if isinstance(o, dict)
        ),
        "OverallOfficialAffiliation": _strs(
            o.get("affiliation")
            for o in _ls(_g(ps, "contactsLocationsModule", "overallOfficials"))
            if isinstance(o, dict)
        ),
    }
    areas = {
        "ConditionSearch": [
            "Condition",
            "BriefTitle",
            "OfficialTitle",
            "ConditionMeshTerm",
            "ConditionAncestorTerm",
            "Keyword",
            "NCTId",
        ],
        "InterventionSearch": [
            "InterventionName",
            "InterventionType",
            "ArmGroupType",
            "InterventionOtherName",
            "BriefTitle",
            "OfficialTitle",
            "ArmGroupLabel",
            "InterventionMeshTerm",
            "Keyword",
            "InterventionAncestorTerm",
            "InterventionDescription",
            "ArmGroupDescription",
        ],
        "TitleSearch": ["Acronym", "BriefTitle", "OfficialTitle"],
        "SponsorSearch": ["LeadSponsorName", "CollaboratorName", "OrgFullName"],
        "IdSearch": ["NCTId", "NCTIdAlias", "Acronym", "OrgStudyId", "SecondaryId"],
        "LocationSearch": ["LocationCity", "LocationCountry", "LocationFacility"],
    }
    out = {k.lower(): v for k, v in p.items()}
    for area, members in areas.items():
        out[area.lower()] = [t for m in members for t in p[m]]
    out["basicsearch"] = [t for k in BASIC_SEARCH if k in p for t in p[k]]
    return out


# The registry's BasicSearch area (query.term), from its "Search Areas" page: 57 fields,
# of which these are the ones a record here can carry. Not in it: DetailedDescription,
# EligibilityCriteria, the dates and counts. A term only there is found with AREA[...].
BASIC_SEARCH = [
    "NCTId",
    "Acronym",
    "BriefTitle",
    "OfficialTitle",
    "Condition",
    "InterventionName",
    "InterventionOtherName",
    "Phase",
    "StdAge",
    "PrimaryOutcomeMeasure",
    "Keyword",
    "BriefSummary",
    "ArmGroupLabel",
    "SecondaryOutcomeMeasure",
    "InterventionDescription",
    "ArmGroupDescription",
    "PrimaryOutcomeDescription",
    "LeadSponsorName",
    "OrgStudyId",
    "SecondaryId",
    "NCTIdAlias",
    "InterventionType",
    "ArmGroupType",
    "SecondaryOutcomeDescription",
    "LocationFacility",
    "LocationState",
    "LocationCountry",
    "LocationCity",
    "LocationStatus",
    "OverallOfficialAffiliation",
    "OverallOfficialName",
    "ConditionMeshTerm",
    "InterventionMeshTerm",
    "StudyType",
    "ConditionAncestorTerm",
    "InterventionAncestorTerm",
    "CollaboratorName",
    "OtherOutcomeMeasure",
    "OtherOutcomeDescription",
]


@dataclass
class Registry:
    """The data the server serves, swappable while it runs (to move the registry forward in time)."""

    studies: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_timestamp: str = "2026-11-02T09:00:05"
    api_version: str = "2.0.5"
    generation: int = 0
    # Recorded record histories: nct -> {"index": /history answer, "versions": {n: /history/{n} answer}}.
    histories: dict[str, dict[str, Any]] = field(default_factory=dict)
    history_available: bool = True
    _pieces_cache: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def replace(self, records: Iterable[dict[str, Any]], data_timestamp: str | None = None) -> None:
        self.studies = {}
        self._pieces_cache = {}
        for r in records:
            self.studies[str(_g(r, "protocolSection", "identificationModule", "nctId")).upper()] = r
        self.generation += 1
        if data_timestamp:
            self.data_timestamp = data_timestamp

    def put(self, record: dict[str, Any]) -> None:
        nct = str(_g(record, "protocolSection", "identificationModule", "nctId")).upper()
        self.studies[nct] = record
        self._pieces_cache.pop(nct, None)
        self.generation += 1

    def remove(self, nct_id: str) -> None:
        self.studies.pop(nct_id, None)
        self._pieces_cache.pop(nct_id, None)
        self.generation += 1

    def pieces(self, nct: str) -> dict[str, list[str]]:
        if nct not in self._pieces_cache:
            self._pieces_cache[nct] = _pieces(self.studies[nct])
        return self._pieces_cache[nct]

    def canonical(self, nct_id: str) -> str | None:
        nct = nct_id.upper()
        if nct in self.studies:
            return nct
        for key in self.studies:
            if nct in self.pieces(key)["nctidalias"]:
                return key
        return None


def load_histories(path: str | Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Recorded histories from a folder of study folders (index.json, v{N}.json, current.json).

    Returns (histories for `Registry.histories`, the current records found beside them).
    """
    histories: dict[str, dict[str, Any]] = {}
    current: list[dict[str, Any]] = []
    for folder in sorted(p for p in Path(path).iterdir() if p.is_dir()):
        index = folder / "index.json"
        if not index.exists():
            continue
        versions = {
            int(f.stem[1:]): json.loads(f.read_text(encoding="utf-8"))
            for f in folder.glob("v*.json")
            if f.stem[1:].isdigit()
        }
        histories[folder.name.upper()] = {
            "index": json.loads(index.read_text(encoding="utf-8")),
            "versions": versions,
        }
        if (folder / "current.json").exists():
            current.append(json.loads((folder / "current.json").read_text(encoding="utf-8")))
    return histories, current


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Study records from a file or folder: single-study JSON, `/studies` pages, or JSON lines."""
    p = Path(path)
    files = sorted(p.iterdir()) if p.is_dir() else [p]
    out: list[dict[str, Any]] = []
    for f in files:
        if f.suffix == ".jsonl":
            out += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif f.suffix == ".json":
            data = json.loads(f.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("studies"), list):
                out += data["studies"]
            elif isinstance(data, dict) and "protocolSection" in data:
                out.append(data)
    return out


def _project(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in fields:
        parts = path.split(".")
        src: Any = record
        for part in parts:
            src = src.get(part) if isinstance(src, dict) else None
        if src is None:
            continue
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = src
    return out


_KNOWN_ROOTS = {
    "protocolSection",
    "derivedSection",
    "resultsSection",
    "annotationSection",
    "documentSection",
    "hasResults",
}

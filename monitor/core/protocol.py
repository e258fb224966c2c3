"""The parts of a protocol a coordinator reads after the status: who may enrol, what is
measured, how the study is designed, what has been published. Pure.

Reading them from a raw record, and comparing two versions of them. The registry
reformats these texts more than any other (the history versions are HTML lists, the
data API's records Markdown lines; bullets, numbering, spacing and escapes change over
the years), so the comparison is made on what a reader would read:

- criteria are split into their lines (one criterion each; a long paragraph into its
  sentences), list markers and section headings taken off; the whole list is compared
  as one text with case and spacing folded, so re-wrapping, re-numbering or a new bullet
  style is no change, and when it did change the event names just the criteria that
  differ, pairing a reworded one with its earlier wording;
- outcomes are matched by their measure, references by PMID, design fields by value.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from monitor.core import record
from monitor.core.domain import Criterion, EventKind, FieldChange, Outcome, Reference, Study
from monitor.core.text import clean_cached, clean_lines

# The version of the list of record parts a poll fetches (config: api.fields). 2 added
# eligibility, outcomes, references and the IPD statement. A study last fetched with an
# earlier list gains the new parts at its next poll as a baseline (see `unknown_families`).
FIELDS_VERSION = 3
# Families first fetched with a later field list: unknown to a record fetched before it,
# whatever modules that record carries (a results section exists only once results do).
ADDED_IN = {"results": 3}

# The optional modules a record may lack: absent from a record fetched before ctmonitor
# asked for them means "unknown", which is why a Study says which ones it carried.
MODULES = ("eligibilityModule", "outcomesModule", "referencesModule", "ipdSharingStatementModule")

# Families of tracked fields, and the module each is read from. A family the previous
# version cannot know (its module was never fetched) is a baseline, not a change.
FAMILIES = {
    "eligibility": "eligibilityModule",
    "outcomes": "outcomesModule",
    "references": "referencesModule",
}

_HEADING = re.compile(r"^(?:key\s+|main\s+|major\s+)?(inclusion|exclusion)(?:\s+criteria)?\s*:?\s*$", re.I)
_HEADING_LONGEST = len("major exclusion criteria :")  # lines are spaced singly by then
_MARKER = re.compile(r"^(?:[*\-+•·▪◦‣○●–—]+|\(?\d{1,2}[.)]|\(?[a-zA-Z][.)]|\(?[ivxIVX]{1,4}[.)])\s+")
_SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z(])")
_PARAGRAPH = 250  # a line longer than this with no list marker is read sentence by sentence
# Outcome measures ("Incidence of adverse events") recur across records: short ones are
# keyed once (a bounded cache; monitor.core.text caches their cleaning).
_SHORT = 160
_REWORDED = 0.6  # word-level similarity above which a removed and an added criterion are one edit


def loose_key(text: str | None) -> str:
    """A comparison key that ignores case and spacing but keeps every symbol (`>=` is not `>`)."""
    if not text:
        return ""
    if len(text) <= _SHORT:
        return _loose_key_short(text)
    return _loose_key(text)


def _loose_key(text: str) -> str:
    if text.isascii():  # most registry text: NFKC leaves ASCII as it is, and casefold is lower
        return " ".join(text.lower().split())
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


_loose_key_short = functools.lru_cache(maxsize=8192)(_loose_key)


# -- reading ---------------------------------------------------------------------------


def _may_be_marked(line: str) -> bool:
    """False when `_MARKER` cannot match: the line begins with a letter that is no roman
    numeral and is not followed by `.` or `)` (most criteria, once their bullet is off)."""
    first = line[:1]
    return not (first.isalpha() and first not in "ivxIVX" and line[1:2] not in (".", ")"))


def criteria(text: Any) -> tuple[Criterion, ...]:
    """The criteria of an eligibility text, each in its section, in the registry's order."""
    if not isinstance(text, str) or not text.strip():
        return ()
    out: list[Criterion] = []
    section = ""
    for line in clean_lines(text):
        # a heading is a short line ("Key Inclusion Criteria:"); most lines are not looked at
        if len(line) <= _HEADING_LONGEST and (heading := _HEADING.match(line)):
            section = heading.group(1).title()
            continue
        marked = False
        while _may_be_marked(line) and (m := _MARKER.match(line)) is not None:
            line, marked = line[m.end() :], True
        if not line:
            continue
        if not marked and len(line) > _PARAGRAPH:
            out += [Criterion(section, s) for s in _SENTENCE_END.split(line) if s.strip()]
        else:
            out.append(Criterion(section, line))
    return tuple(out)


def criteria_key(items: Iterable[Criterion]) -> str:
    """The criteria as one text, as compared: headings, words and symbols, not layout."""
    parts: list[tuple[str, bool]] = []  # (text, is a section mark)
    section = None
    for c in items:
        if c.section != section:
            parts.append((f"[{c.section.lower()}]", True))
            section = c.section
        parts.append((c.text, False))
    whole = " ".join(text for text, _ in parts)
    if whole.isascii() and all(text.strip() for text, _ in parts):
        # As keying each text and joining: for ASCII, lower-casing and folding spaces commute
        # with the join (a blank text would leave a double space: hence the check).
        return " ".join(whole.lower().split())
    return " ".join(text if mark else loose_key(text) for text, mark in parts)


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    return clean_cached(value)


def _upper(value: str | None) -> str | None:
    return value.strip().upper() or None if value else None


def outcomes(module: record.Outcomes | None) -> tuple[Outcome, ...]:
    """Outcome measures by type, keyed by their measure (a repeated measure gets `#2`)."""
    if module is None:
        return ()
    rows: list[Outcome] = []
    seen: dict[str, int] = {}
    for items, kind in (
        (module.primaryOutcomes, "PRIMARY"),
        (module.secondaryOutcomes, "SECONDARY"),
        (module.otherOutcomes, "OTHER"),
    ):
        for o in items or ():
            if o is None or not (measure := _text(o.measure)):
                continue
            key = loose_key(measure)
            n = seen[key] = seen.get(key, 0) + 1
            if n > 1:
                key = f"{key} #{n}"
            rows.append(Outcome(key, kind, measure, _text(o.timeFrame), _text(o.description)))
    return tuple(rows)


def references(module: record.References | None) -> tuple[Reference, ...]:
    """Publications, keyed by PMID (a citation's wording may be corrected; its PMID stays)."""
    if module is None:
        return ()
    out: dict[str, Reference] = {}
    for r in module.references or ():
        if r is None:
            continue
        pmid = r.pmid.strip() or None if r.pmid else None
        citation = _text(r.citation)
        key = f"pmid:{pmid}" if pmid else loose_key(citation)[:300]
        if key and key not in out:
            out[key] = Reference(key, _upper(r.type), pmid, citation)
    return tuple(out[k] for k in sorted(out))


_ELIGIBILITY, _DESIGN_INFO, _IPD = record.Eligibility(), record.DesignInfo(), record.IpdSharing()


def read(ps: record.Protocol) -> dict[str, Any]:
    """The Study fields these modules give, from a record's protocolSection."""
    elig = ps.eligibilityModule or _ELIGIBILITY
    design = (ps.designModule.designInfo if ps.designModule else None) or _DESIGN_INFO
    ipd = ps.ipdSharingStatementModule or _IPD
    return {
        "criteria": criteria(elig.eligibilityCriteria),
        "minimum_age": _text(elig.minimumAge),
        "maximum_age": _text(elig.maximumAge),
        "sex": _upper(elig.sex),
        "healthy_volunteers": elig.healthyVolunteers,
        "std_ages": tuple(sorted({a.upper() for a in elig.stdAges or () if a})),
        "outcomes": outcomes(ps.outcomesModule),
        "allocation": _upper(design.allocation),
        "intervention_model": _upper(design.interventionModel),
        "masking": _upper(design.maskingInfo.masking if design.maskingInfo else None),
        "primary_purpose": _upper(design.primaryPurpose),
        "references": references(ps.referencesModule),
        "ipd_sharing": _upper(ipd.ipdSharing),
        "ipd_description": _text(ipd.description),
        "modules": tuple(m for m in MODULES if getattr(ps, m) is not None),
    }


def tracked(study: Study) -> dict[str, Any]:
    """The part of the content hash these fields make: exactly what `changes` compares."""
    return {
        "eligibility": [
            criteria_key(study.criteria),
            loose_key(study.minimum_age),
            loose_key(study.maximum_age),
            study.sex,
            study.healthy_volunteers,
        ],
        "outcomes": sorted(
            [o.key, o.type, loose_key(o.time_frame), loose_key(o.description)] for o in study.outcomes
        ),
        "design": [study.allocation, study.intervention_model, study.masking, study.primary_purpose],
        "references": sorted(r.key for r in study.references),
    }


# -- comparing -------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return loose_key(text).split()


def similarity(a: str, b: str) -> float:
    """How much of two texts' wording is shared (0..1), word by word."""
    return difflib.SequenceMatcher(None, _words(a), _words(b), autojunk=False).ratio()


def pair_criteria(
    removed: list[dict[str, str]], added: list[dict[str, str]]
) -> list[tuple[dict[str, str] | None, dict[str, str] | None]]:
    """Removed and added criteria as edits: (old, new) for a reworded criterion, (old, None)
    for one dropped, (None, new) for one added. Greedy by similarity, within a section;
    in the order of the newer list, the dropped ones last."""
    pairs: list[tuple[float, int, int]] = []
    for i, old in enumerate(removed):
        for j, new in enumerate(added):
            if old.get("section") == new.get("section"):
                score = similarity(old["text"], new["text"])
                if score >= _REWORDED:
                    pairs.append((score, i, j))
    used_old: dict[int, int] = {}
    used_new: set[int] = set()
    for _, i, j in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
        if i not in used_old and j not in used_new:
            used_old[i] = j
            used_new.add(j)
    by_new = {j: i for i, j in used_old.items()}
    out: list[tuple[dict[str, str] | None, dict[str, str] | None]] = [
        (removed[by_new[j]] if j in by_new else None, new) for j, new in enumerate(added)
    ]
    out += [(old, None) for i, old in enumerate(removed) if i not in used_old]
    return out


def _criteria_changes(old: tuple[Criterion, ...], new: tuple[Criterion, ...]) -> list[FieldChange]:
    if criteria_key(old) == criteria_key(new):
        return []
    a = Counter((c.section, loose_key(c.text)) for c in old)
    b = Counter((c.section, loose_key(c.text)) for c in new)
    gone, came = a - b, b - a

    def pick(items: tuple[Criterion, ...], wanted: Counter[tuple[str, str]]) -> list[dict[str, str]]:
        left = Counter(wanted)
        out = []
        for c in items:
            k = (c.section, loose_key(c.text))
            if left[k] > 0:
                left[k] -= 1
                out.append(c.to_json())
        return out

    # Empty lists on both sides: the same criteria, in another order.
    return [FieldChange(EventKind.ELIGIBILITY, "criteria", before=pick(old, gone), after=pick(new, came))]


def _outcome_json(o: Outcome) -> dict[str, Any]:
    return {"type": o.type, "measure": o.measure, "time_frame": o.time_frame, "description": o.description}


def _outcome_changes(old: tuple[Outcome, ...], new: tuple[Outcome, ...]) -> list[FieldChange]:
    a, b = {o.key: o for o in old}, {o.key: o for o in new}
    out: list[FieldChange] = []
    for k in sorted(a.keys() & b.keys()):
        x, y = a[k], b[k]
        if (x.type, loose_key(x.time_frame), loose_key(x.description)) != (
            y.type,
            loose_key(y.time_frame),
            loose_key(y.description),
        ):
            out.append(
                FieldChange(EventKind.OUTCOME_CHANGE, "outcomes", k, _outcome_json(x), _outcome_json(y))
            )
    gone = [a[k] for k in sorted(a.keys() - b.keys())]
    came = [b[k] for k in sorted(b.keys() - a.keys())]

    # A measure re-worded in place (same type, most words kept, or half of them with the
    # same time frame and description) is one re-specified outcome, not a drop and an add.
    def alike(x: Outcome, y: Outcome) -> float:
        score = similarity(x.measure, y.measure)
        same_rest = (loose_key(x.time_frame), loose_key(x.description)) == (
            loose_key(y.time_frame),
            loose_key(y.description),
        )
        return score if score >= 0.75 or (same_rest and score >= 0.5) else 0.0

    for x in list(gone):
        score, best = max(
            ((alike(x, y), y) for y in came if y.type == x.type), key=lambda p: p[0], default=(0.0, None)
        )
        if best is not None and score > 0:
            out.append(
                FieldChange(
                    EventKind.OUTCOME_CHANGE, "outcomes", best.key, _outcome_json(x), _outcome_json(best)
                )
            )
            gone.remove(x)
            came.remove(best)
    out += [FieldChange(EventKind.OUTCOME_REMOVED, "outcomes", o.key, _outcome_json(o), None) for o in gone]
    out += [FieldChange(EventKind.OUTCOME_ADDED, "outcomes", o.key, None, _outcome_json(o)) for o in came]
    # Primary outcomes first: they are what a study is judged on.
    rank = {"PRIMARY": 0, "SECONDARY": 1, "OTHER": 2}
    out.sort(key=lambda c: rank.get((c.after or c.before or {}).get("type"), 3))
    return out


def _reference_json(r: Reference) -> dict[str, Any]:
    return {"type": r.type, "pmid": r.pmid, "citation": r.citation}


def changes(old: Study, new: Study, *, skip: frozenset[str] = frozenset()) -> list[FieldChange]:
    """Eligibility, outcome, design and publication changes from `old` to `new`.

    `skip` names the families (see FAMILIES) that `old` cannot know, because its record
    was fetched before ctmonitor asked for them: those are taken as they are now (a
    baseline), never reported as added."""
    out: list[FieldChange] = []
    if "eligibility" not in skip:
        out += _criteria_changes(old.criteria, new.criteria)
        for name in ("minimum_age", "maximum_age"):
            a, b = getattr(old, name), getattr(new, name)
            if loose_key(a) != loose_key(b):
                out.append(FieldChange(EventKind.ELIGIBILITY, name, before=a, after=b))
        for name in ("sex", "healthy_volunteers"):
            a, b = getattr(old, name), getattr(new, name)
            if a != b:
                out.append(FieldChange(EventKind.ELIGIBILITY, name, before=a, after=b))
    if "outcomes" not in skip:
        out += _outcome_changes(old.outcomes, new.outcomes)
    for name in ("allocation", "intervention_model", "masking", "primary_purpose"):
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(FieldChange(EventKind.DESIGN, name, before=a, after=b))
    if "references" not in skip:
        a_refs, b_refs = {r.key: r for r in old.references}, {r.key: r for r in new.references}
        out += [
            FieldChange(EventKind.PUBLICATION_ADDED, "references", k, None, _reference_json(b_refs[k]))
            for k in sorted(b_refs.keys() - a_refs.keys())
        ]
        out += [
            FieldChange(EventKind.PUBLICATION_REMOVED, "references", k, _reference_json(a_refs[k]), None)
            for k in sorted(a_refs.keys() - b_refs.keys())
        ]
    return out


def unknown_families(old: Study, fields_version: int = 1) -> frozenset[str]:
    """The families a record fetched with an earlier field list (`fields_version`) cannot
    know: those whose module it does not carry (a module it does carry was fetched, and is
    compared), and those first asked for after that list (ADDED_IN)."""
    out = {f for f, module in FAMILIES.items() if module not in old.modules}
    out |= {f for f, version in ADDED_IN.items() if fields_version < version}
    return frozenset(out)

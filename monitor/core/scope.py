"""In scope or not, and why: the last step of classifying a study. Pure.

A study is in scope when it gives one of the watched modalities for an autoimmune
indication in an interventional study; a cancer treated in people with an autoimmune
disease is out, an autoimmune disease treated in people who had a cancer is in. What is
in scope but doubtful goes to the review queue with a reason a curator can act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from monitor.core.classification import WEAK, Evidence
from monitor.core.domain import Study
from monitor.core.vocabulary import Vocabulary

# The indication group of studies that name autoimmune disease only as a class.
BASKET = "autoimmune (basket)"
# The group of rare named autoimmune diseases; its evidence says which (pages list them).
OTHER = "other autoimmune"

Hit = tuple[str, str, str, str, str]  # (field, text, kind, value, words): one vocabulary match


@dataclass(slots=True)
class Working:
    """What the classifier gathers on its way through one record."""

    evidence: list[Evidence] = field(default_factory=list)
    confidence: dict[str, str] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)

    def note(self, label: str, value: str, hit: Hit) -> None:
        snippet = hit[1] if len(hit[1]) <= 160 else f"…{hit[4]}…"
        self.evidence.append(Evidence(label, value, hit[0], snippet))


def as_written(hit: Hit) -> str:
    """The matched words as the record writes them ("POEMS", not "poems"): the vocabulary
    matches lower-cased tokens; a reader is shown the registry's own casing."""
    pattern = r"[^A-Za-z0-9]+".join(re.escape(w) for w in hit[4].split())
    m = re.search(pattern, hit[1], re.IGNORECASE) if pattern else None
    return m.group(0) if m else hit[4]


# "... in patients with ...", "... among adults who had ...": where a title turns from
# what is treated to who is treated.
_POPULATION = re.compile(
    r"\b(?:in|among|of)\s+(?:adult\s+|adolescent\s+|pediatric\s+|paediatric\s+|elderly\s+)?"
    r"(?:patients|participants|subjects|people|persons|individuals|adults|children|recipients)\s+"
    r"(?:with\s+(?:a\s+)?(?:history\s+of|prior|previous|concomitant|coexisting|co-existing)\s+"
    r"|who\s+(?:have|had|has)\s+(?:had\s+)?|having\s+|with\s+|previously\s+treated\s+for\s+)",
    re.IGNORECASE,
)


def decide_scope(
    study: Study,
    modality: str | None,
    indications: list[str],
    oncology: list[Hit],
    excluded: list[Hit],
    treated: str | None,
    cancer_treated: bool,
    w: Working,
) -> tuple[bool, str]:
    """In scope or not, with the reason; what is in scope but doubtful goes to review."""
    if not modality:
        in_scope, reason = False, "no CAR, CAAR, CAR-Treg, CAR-NK or T-cell-engager therapy named"
    elif study.study_type == "OBSERVATIONAL":
        in_scope, reason = False, "observational study"
    elif cancer_treated:
        in_scope, reason = False, f"oncology indication: {treated}"
    elif not indications or (w.confidence.get("indications") == "low" and (oncology or excluded)):
        # A disease met only in the summary does not outweigh conditions that name another one.
        in_scope = False
        if oncology:
            reason = "oncology indication"
        elif excluded:
            reason = f"not an autoimmune indication ({as_written(excluded[0])})"
        else:
            reason = "no autoimmune indication named"
    else:
        in_scope, reason = True, "in scope"
        if oncology:
            w.review.append(
                f"treats an oncology indication ({as_written(oncology[0])}) beside autoimmune disease"
            )
        if w.confidence.get("modality") == "low":
            w.review.append("the therapy is named only in the summary or the detailed description")
        if w.confidence.get("indications") == "low":
            w.review.append(
                "the autoimmune indication is named only in the summary or the detailed description"
            )
    w.confidence["in_scope"] = "high" if not w.review else "medium"
    return in_scope, reason


def treated_and_population(vocabulary: Vocabulary, study: Study) -> str | None:
    """Read a title as "<what is treated> in patients with <who>". Returns "autoimmune"
    when an autoimmune disease is treated in people with (or who had) a cancer, a
    reason when a cancer is treated in people with an autoimmune disease, None when
    the titles do not say it that way."""
    for title in (study.brief_title, study.official_title):
        if not title:
            continue
        m = _POPULATION.search(title)
        if not m or not title[: m.start()].strip():
            continue
        what, who = title[: m.start()], title[m.end() :]
        what_kinds = {k: v for k, v, _ in reversed(vocabulary.find(what))}
        who_hits = vocabulary.find(who)
        who_kinds = {k: v for k, v, _ in reversed(who_hits)}
        if "oncology" in what_kinds and "indication" not in what_kinds and "indication" in who_kinds:
            cancer = next(w for k, _, w in vocabulary.find(what) if k == "oncology")
            disease = next(w for k, _, w in who_hits if k == "indication")
            return f"treats {cancer} in patients with {disease}"
        if "indication" in what_kinds and "oncology" not in what_kinds and "oncology" in who_kinds:
            return "autoimmune"
    return None


def indications_of(
    vocabulary: Vocabulary,
    found: Any,
    evidence: list[Evidence],
    confidence: dict[str, str],
    study: Study,
) -> list[str]:
    """The indication groups a record names: conditions first, then titles and keywords,
    then the summary; a basket beside named diseases is dropped; failing all, a condition
    under MeSH's autoimmune diseases is "other autoimmune", with the record's words."""
    order = vocabulary.indication_order
    for fields, level in ((("conditions",), "high"), (("titles", "keywords"), "medium"), (WEAK, "low")):
        groups: dict[str, tuple[str, str, str, str, str]] = {}
        for hit in found.of("indication", fields):
            groups.setdefault(hit[3], hit)
        if groups:
            # A basket named only as a class ("autoimmune diseases") beside named
            # diseases adds nothing: the named ones are the indications.
            if len(groups) > 1 and BASKET in groups:
                del groups[BASKET]
            for g, hit in groups.items():
                evidence.append(Evidence("indications", g, hit[0], hit[1][:160]))
            confidence["indications"] = level
            return sorted(groups, key=order.index)
    if any(m.term.casefold() == "autoimmune diseases" for m in study.condition_ancestors):
        evidence.append(
            Evidence(
                "indications",
                OTHER,
                "condition MeSH ancestors",
                "; ".join(study.conditions)[:160] or "Autoimmune Diseases",
            )
        )
        confidence["indications"] = "medium"
        return [OTHER]
    return []

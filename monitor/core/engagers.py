"""T-cell engagers recognised by what they do, whatever the wording. Pure.

An engager is an antibody (bi-, tri- or multispecific, in any format: IgG, IgM, BiTE,
DART, tandem scFv, a "double antibody", mRNA-encoded) with one arm on CD3 (or the T-cell
receptor complex) and another on a cell antigen, or one described as engaging,
redirecting or activating T cells against B cells or plasma cells. Records write it every
way: "CD19xCD3", "a bispecific antibody that binds BCMA and CD3, directing the patient's
own T cells ...", "a CD19/CD20 T-cell engager", "targets FcRH5 and CD3". `read` finds such
a description in one sentence of a text, with the antigens of its target arm; an arm the
vocabulary does not know is still a target (`label` writes it `<antigen>xCD3` and says it
is new).

What is not an engager is not read as one: a bispecific that engages no T cell (IL-13 and
IL-4, CD19 and FcγRIIb: no T-cell arm, no T cell engaged), an anti-CD3 monoclonal alone
(teplizumab: a T-cell arm but no second specificity); a "bispecific CAR" is a cell therapy,
which the CAR words settle before this is asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# More than one specificity: the antibody's format.
_FORMAT = re.compile(
    r"\b(?:bi-?specific|tri-?specific|multi-?specific|dual[- ](?:targeting|specific)|"
    r"double[- ]antibod(?:y|ies)|BiTEs?|TriTEs?|DARTs?|dual-affinity re-?targeting|tandem scFv|"
    r"T[- ]cell[- ]engag\w+|"
    r"T[- ]cell[- ]redirect\w+)\b",
    re.IGNORECASE,
)
# The T-cell arm: CD3 (CD3ε, CD3 epsilon) or the T-cell receptor complex.
_T_ARM = re.compile(
    r"(?:(?<=[x×X])|(?<![A-Za-z0-9]))"  # CD3 alone, or after the x of "CD19xCD3"
    r"(?:CD3(?:ε|e|[- ]?epsilon)?|T[- ]cell receptor(?: complex)?|TCR(?:/CD3)?)(?![0-9A-Za-z])",
    re.IGNORECASE,
)
# A T cell engaged, in words: "T-cell engager", "engaging T cells", "redirects the
# patient's own T cells", "recruits T cells", "activates T cells against plasma cells".
_T_CELLS = (
    r"(?:the\s+)?(?:patient'?s?\s+|body'?s?\s+)?(?:own\s+)?(?:cytotoxic\s+)?T[- ]?(?:cells?|lymphocytes)"
)
_ENGAGES = re.compile(
    r"\bT[- ]cell[- ](?:engag(?:er|ers|ing|ement)|redirect(?:ing|ion|ed)?)\b"
    rf"|\b(?:engag(?:es|ing|e)|re-?direct(?:s|ing|ed)?|recruit(?:s|ing)?)\s+{_T_CELLS}"
    rf"|\bactivat(?:es|ing|e)\s+{_T_CELLS}\s+(?:against|to\s+kill|to\s+eliminate|to\s+lyse)",
    re.IGNORECASE,
)
# What every description of an engager holds (a substring test, run in C, before any regex).
_T_WORDS = ("cd3", "t cell", "t-cell", "tcr", "t lymph", "t-lymph", "tcells", "t-cells")
_CD3 = re.compile(r"CD3(?:ε|e|E|epsilon)?", re.IGNORECASE)
_SENTENCES = re.compile(r"(?<=[.;:!?])\s+|\n+")
# A word in a sentence; "CD19xCD3" and "BCMA×CD3" are split at the x.
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9αβγδε]*")
_PAIR = re.compile(r"(?<=[0-9A-Za-z])\s*[x×X]\s*(?=CD|[A-Z]{2})|(?<=\d)x(?=[A-Z])")
# Words shaped like antigens that are not: formats, units, roles, diseases, immunoglobulins.
_NOT_ANTIGEN = frozenset(
    re.findall(
        r"\S+",
        """CD3 CD3E TCR MAB DART BITE TRITE SCFV CAR CART TCE DNA RNA MRNA LNP IGG IGG1 IGG2 IGG4
        IGM IGA IGE FC SLE ITP AAV NMOSD ANCA MOGAD CIDP AIHA TTP ALL AML CLL DLBCL NHL CRS ICANS
        HLA MHC CDR PK PD ADA DLT MTD RP2D BID QW Q2W Q3W Q4W SC IV FIH USA EU UK PHASE COVID HIV
        B T NK
        CD2 CD28 CD137 OX40 ICOS""",  # the last line: a trispecific's co-stimulatory T-cell arm
    )
)


@dataclass(frozen=True)
class Reading:
    """An engager described in one sentence: its target arm as written, and the words."""

    antigens: tuple[str, ...]  # the target arm's antigens as the record writes them
    sentence: str


def sentences(text: str) -> Iterator[str]:
    for s in _SENTENCES.split(text):
        if s.strip():
            yield s.strip()


def _antigen_like(word: str) -> bool:
    """An antigen the vocabulary may not know: letters then a digit somewhere, or capitals
    (FcRH5, GPRC5D, CLDN18, DLL3); not a format, a unit, a disease acronym or CD3."""
    up = word.upper()
    if up in _NOT_ANTIGEN or len(word) < 3 or len(word) > 10:
        return False
    capitals = sum(ch.isupper() for ch in word)
    return capitals >= 2 and any(ch.isdigit() for ch in word)


def antigens(sentence: str, known: Callable[[str], str | None]) -> list[str]:
    """The antigens a sentence names beside CD3: what `known` recognises (the vocabulary's
    targets, in its spelling) and words shaped like antigens, in the order written."""
    out: list[str] = []
    for word in _WORD.findall(_PAIR.sub(" ", sentence)):
        name = known(word)
        if name is None and _antigen_like(word):
            name = word
        if name and name.upper() not in _NOT_ANTIGEN and not _CD3.fullmatch(name) and name not in out:
            out.append(name)
    return out


def read(text: str, known: Callable[[str], str | None]) -> Reading | None:
    """The first sentence of `text` that describes a T-cell engager, or None: a format
    word with a T-cell arm (CD3, the TCR), or a T cell engaged in words."""
    low = text.lower()
    if not any(w in low for w in _T_WORDS):  # most texts say nothing of T cells: skip them fast
        return None
    for sentence in sentences(text):
        fmt = _FORMAT.search(sentence)
        if _ENGAGES.search(sentence) or (fmt and _T_ARM.search(sentence)):
            return Reading(tuple(antigens(sentence, known)), sentence)
    return None


def label(
    found: tuple[str, ...] | list[str], known: Callable[[str], str | None]
) -> tuple[str | None, list[str]]:
    """(the target label "BCMAxCD3", or None with no target arm named; the antigens the
    vocabulary does not know, which the label writes as the record does)."""
    arms: list[str] = []
    new: list[str] = []
    for a in found:
        if a not in arms:
            arms.append(a)
            if known(a) is None:
                new.append(a)
    return ("x".join(arms) + "xCD3" if arms else None), new

"""Products as entities: one canonical name per programme, however a record or a reader
writes it. Pure.

Analysts follow programmes, not sentences. A product in the vocabulary has a canonical
name, its codes and their spellings, its INN and brand names, modality, targets, cell
source and developer; `Catalogue` finds it from any of those, compared as letters and
digits only (KYV-101 = kyv101 = "KYV 101"; rese-cel = CABA-201). A record that names a
code the vocabulary does not know yet keeps that code as its product (`find_code`); a
record that names none gets a name that says what it is ("unnamed CD19 CAR-T, <sponsor>"),
never an arm's or an intervention's sentence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from monitor.core.domain import Study
from monitor.core.vocabulary import Product, Vocabulary, tokens

UNNAMED = "unnamed"

# How an unnamed product's modality reads in its name.
_MODALITY_WORDS = {
    "CAR-T": "CAR-T",
    "CAAR-T": "CAAR-T",
    "CAR-Treg": "CAR-Treg",
    "CAR-NK": "CAR-NK",
    "bispecific": "T-cell engager",
    "other": "engineered cell therapy",
}

# A product code: letters and digits, possibly hyphenated or dotted (PRG-2311, QT-019B,
# TI-0032-III, NEUK203-215, Meta10-19). Checked further by `_is_code`.
_CODE = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*)(?![\w-])")
# Words that carry digits but are no product: antigens, measures, doses, days, diseases.
_NOT_CODE = re.compile(
    r"""^(?:CD\d+[A-Z]?|IL\d+[A-Z]?R?|IGG\d|IGA\d?|IGM|HBA1C|COVID\d*|SARS\w*|HLA\w*|T[12]D|
    EQ5D\w*|SF\d+|DAS\d+\w*|SLEDAI\w*|BILAG\w*|D\d{1,3}|W\d{1,3}|M\d{1,2}|V\d{1,2}|
    (?:PHASE|DAY|DOSE|GROUP|ARM|COHORT|PART|STAGE|LEVEL|WEEK|MONTH|YEAR|VERSION|TYPE|
    GRADE|STEP|TIER|LINE|DL|CYCLE)\d+\w*|NCT\d+|CHICTR\w*|JRCT\w*|EUCT\w*)$""",
    re.VERBOSE,
)
# An international nonproprietary name of an engager or a CAR T (tarlatamab, cizutamig,
# obecabtagene autoleucel): a name, not a description.
_INN = re.compile(r"[A-Za-z]{3,}(?:tamab|tamig|cabtagene(?: [a-z]+leucel)?)", re.IGNORECASE)
_CAR_WORDS = {"car", "cart", "cars", "caar", "caart", "t", "nk", "cell", "cells", "treg", "tregs", "ucar"}


_NOT_ALNUM = re.compile(r"[\W_]+")


def compact(value: str | None) -> str:
    """Letters and digits only, case-folded, accents dropped: how product names compare."""
    text = value or ""
    if text.isascii():  # the usual case, read at C speed: nothing to decompose or drop
        return _NOT_ALNUM.sub("", text.lower())
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text.casefold() if ch.isalnum() and not unicodedata.combining(ch))


def slugify(name: str) -> str:
    """The URL name of a product or sponsor: lower-case ASCII words joined by hyphens; a
    parenthesis that only repeats another name of the product is left out ("CABA-201
    (rese-cel)" is caba-201)."""
    base = re.sub(r"\s*\([^)]*\)\s*$", "", name) or name
    return "-".join(tokens(base)) or "product"


@dataclass(frozen=True, slots=True)
class Entry:
    """One programme as a reader sees it: the vocabulary's product, or a name found only in
    records (a code the vocabulary does not know yet, or an unnamed product)."""

    name: str
    slug: str
    modality: str | None = None
    targets: tuple[str, ...] = ()
    source: str | None = None
    developer: str | None = None
    inn: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()  # every other way records write it (codes, spellings)
    known: bool = False  # in the vocabulary

    @property
    def unnamed(self) -> bool:
        return self.name.startswith(UNNAMED + " ")

    def names(self) -> tuple[str, ...]:
        """Every name it goes by, canonical first, each once (however spelt)."""
        out: list[str] = []
        seen: set[str] = set()
        for n in (self.name, *self.inn, *self.brands, *self.aliases):
            key = compact(n)
            if n and key not in seen:
                seen.add(key)
                out.append(n)
        return tuple(out)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "slug": self.slug,
            "modality": self.modality,
            "targets": list(self.targets),
            "cell_source": self.source,
            "developer": self.developer,
            "inn": list(self.inn),
            "brands": list(self.brands),
            "aliases": [a for a in self.names() if a != self.name],
            "in_vocabulary": self.known,
        }


def entry_of(product: Product) -> Entry:
    return Entry(
        name=product.name,
        slug=slugify(product.name),
        modality=product.modality,
        targets=product.targets,
        source=product.source,
        developer=product.developer,
        inn=product.inn,
        brands=product.brands,
        aliases=product.aliases,
        known=True,
    )


class Catalogue:
    """The vocabulary's products, found by any of their names however typed."""

    def __init__(self, products: Iterable[Product]) -> None:
        self.entries: dict[str, Entry] = {}
        self._by_name: dict[str, str] = {}
        self._by_slug: dict[str, str] = {}
        self._others: dict[str, tuple[str, ...]] = {}  # name -> its other names
        for p in products:
            e = entry_of(p)
            self.entries[e.name] = e
            self._by_slug.setdefault(e.slug, e.name)
            names = e.names()
            self._others[e.name] = names[1:]
            for n in names:
                self._by_name.setdefault(compact(n), e.name)

    @classmethod
    def of(cls, vocabulary: Vocabulary) -> Catalogue:
        return cls(vocabulary.products.values())

    def resolve(self, text: str) -> Entry | None:
        """The known product `text` names (a code, INN, brand or spelling of one), or None."""
        name = self._by_name.get(compact(text))
        if name is None:
            name = self._by_slug.get(text.strip().lower())
        return self.entries.get(name) if name else None

    def canonical(self, values: Iterable[str]) -> tuple[str, ...]:
        """What a reader typed, known names replaced by their canonical one; an unknown
        name is kept as typed (a code the vocabulary does not know yet is a product too)."""
        out: list[str] = []
        for v in values:
            v = v.strip()
            if not v:
                continue
            e = self.resolve(v)
            name = e.name if e else v
            if name not in out:
                out.append(name)
        return tuple(out)

    def entry(self, name: str) -> Entry:
        """The entry of a product name as studies carry it (known, or found only in records)."""
        known = self.entries.get(name) or self.resolve(name)
        return known or Entry(name=name, slug=slugify(name))

    def aliases(self, names: Iterable[str]) -> list[str]:
        """Every other name of the known products among `names` (what search reads)."""
        out: list[str] = []
        for n in names:
            out += self._others.get(n, ())
        return out


def name_parts(name: str) -> set[str]:
    """A product name and each name inside it, compacted: "GC012F / AZD0120" is also GC012F
    and AZD0120; "CABA-201 (rese-cel)" is also CABA-201 and rese-cel."""
    parts = {compact(name)} | {compact(p) for p in re.split(r"[/()+]", name)}
    return {p for p in parts if p}


def matches(wanted: Sequence[str], products: Iterable[str]) -> bool:
    """Whether a study with these products is one of the `wanted` products (canonical
    names, or codes as typed), compared as letters and digits: "caba 201" is the product
    "CABA-201 (rese-cel)"; "KYV-1010" is not KYV-101."""
    have: set[str] = set()
    for p in products:
        have |= name_parts(p)
    return any(compact(w) in have for w in wanted if compact(w))


def unnamed_name(
    modality: str | None, targets: Sequence[str], cell_source: str | None, sponsor: str | None
) -> str:
    """What an unnamed product is: "unnamed CD19 CAR-T, Ribeirão Preto Blood Center"; an
    allogeneic or in vivo one says so."""
    words = [UNNAMED]
    if cell_source in ("allogeneic", "in vivo"):
        words.append(cell_source)
    if targets:
        words.append(targets[0])
    words.append(_MODALITY_WORDS.get(modality or "", "cell therapy"))
    name = " ".join(words)
    return f"{name}, {sponsor.strip()}" if sponsor and sponsor.strip() else name


@lru_cache(maxsize=4096)
def _is_code(word: str, vocabulary: Vocabulary) -> bool:
    """A product code: letters then digits somewhere, not an antigen, a measure, a dose, a
    day or a disease, and not only CAR words around an antigen (CD19-CAR-T)."""
    letters = sum(ch.isalpha() for ch in word)
    digits = sum(ch.isdigit() for ch in word)
    if not digits or not any(ch.isupper() for ch in word):
        return False
    if word[0].isdigit():  # a dose or a count ("1x10", "3rd"), unless a CAR name (4SCAR)
        return "CAR" in word.upper() and letters >= 4
    if letters < 2 and digits < 3:
        return False
    squeezed = re.sub(r"[-.]", "", word.upper())
    if _NOT_CODE.match(squeezed):
        return False
    parts = [p for p in re.split(r"[-.]", word) if p]
    meaningful = []
    for part in parts:
        if part[0].isdigit():
            meaningful.append(part)  # PRG-2311, QT-019B: the number is the code's
            continue
        if part.lower() in _CAR_WORDS or _NOT_CODE.match(part.upper()):
            continue
        kinds = {k for k, _, _ in vocabulary.find(part)}
        if kinds & {"target", "indication", "oncology", "source"}:
            continue
        meaningful.append(part)
    joined = "".join(meaningful)
    return any(ch.isdigit() for ch in joined) and any(ch.isalpha() for ch in joined)


def find_code(study: Study, vocabulary: Vocabulary, modality_words: set[str]) -> tuple[str, str, str] | None:
    """(code, field, text) of a product code the vocabulary does not know, named where a
    study names what it gives: an intervention (its name or other names), an arm label, a
    title. An intervention or arm that also says what it is (a CAR word, "cells") is read
    first, then a title that does, then any intervention of the study's own kind."""

    def words(text: str) -> set[str]:
        return set(tokens(text))

    # An intervention that is nothing but a code names the product best, if it is what the
    # study gives (a biological, a genetic product, or the study's only intervention; not a
    # coded comparator drug beside it); an engager's or a CAR T's INN always does.
    alone = len(study.interventions) == 1
    for iv in study.interventions:
        given = alone or (iv.type or "").upper() in ("BIOLOGICAL", "GENETIC", "")
        for t in (iv.name, *iv.other_names):
            if given and _CODE.fullmatch(t.strip()) and _is_code(t.strip(), vocabulary):
                return t.strip(), "interventions", t
            if _INN.fullmatch(t.strip()):
                return t.strip(), "interventions", t
    cell_words = modality_words | {"cell", "cells", "injection", "infusion"}
    candidates: list[tuple[int, str, str]] = []
    for iv in study.interventions:
        texts = [iv.name, *iv.other_names]
        carries = any(words(t) & cell_words for t in texts) or bool(
            iv.description and words(iv.description) & modality_words
        )
        biological = (iv.type or "").upper() in ("BIOLOGICAL", "GENETIC", "")
        for t in texts:
            candidates.append((0 if carries else 3 if biological else 9, "interventions", t))
    for arm in study.arms:
        candidates.append((1 if words(arm.label) & cell_words else 9, "arms", arm.label))
    for title in (study.brief_title, study.official_title, study.acronym):
        if title:
            candidates.append((2 if words(title) & modality_words else 4, "titles", title))
    for rank, where, text in sorted(candidates, key=lambda c: c[0]):
        if rank >= 9:
            continue
        for m in _CODE.finditer(text):
            if _is_code(m.group(1), vocabulary):
                return m.group(1), where, text
    return None


# The USAN/INN stem of CAR T gene therapies: "-cabtagene" (axicabtagene, inaticabtagene,
# prulacabtagene ... autoleucel). A name built on it is a CAR T, whatever else it is called.
CAR_STEM = re.compile(r"\b[a-z]{2,}cabtagene\b", re.IGNORECASE)
# The short names sponsors give cell therapies: "azer-cel", "prula-cel", "obe-cel".
_CEL_NAME = re.compile(r"\b[a-z]{3,6}-cel\b", re.IGNORECASE)
# A product code with CAR in it: letters, CAR (maybe CAR-T, CAR-NK), then a code part with a
# digit or after a hyphen: ABCAR-001, XYCAR-Q7, CAR19X; not CARE-2 or CARDIO-7 (words).
_CAR_CODE = re.compile(r"\b[A-Z]{0,6}CAR(?:T|NK|TREG)?(?:-?[A-Z]{0,3}\d[A-Z0-9]*|-[A-Z][A-Z0-9]*\d?)\b")
# A code (letters and digits, as sponsors name products) given as cells: "QZ-2207 T cells",
# "QZ-2207 allogeneic T cells", "ZX101 NK cell injection".
_CODE_CELLS = re.compile(
    r"\b(?!CD\d)([A-Z]{1,6}-?\d{2,6}[A-Z0-9]{0,3})\b"  # upper-case, as codes are; an antigen (CD45RA) is none
    r"(?i:\s+(?:allogeneic|autologous|universal|engineered|modified))?"
    r"(?i:\s+((?:T|NK)[- ]?cells?))\b"
)


def guess_cell_product(study: Study) -> tuple[str, str, str, str] | None:
    """(modality, code, field, text) for a product code shaped like an engineered cell
    product: a code with CAR in it (ABCAR-001, XYCAR-Q7), or a code given as "<code>
    T cells" / "<code> NK cells" in the interventions. Read only when nothing else
    named a modality; the study then goes to the review queue, never silently out."""
    interventions = [("interventions", t) for i in study.interventions for t in (i.name, *i.other_names)]
    named = interventions + [("titles", t) for t in (study.brief_title, study.official_title) if t]
    # Each pattern is searched only in a text holding the letters it cannot match without
    # (a substring test in C, a tenth of a search's cost): the same matches, found faster.
    # None of c, a, b, t, g, e, n, l has another case folding in `re` (as s, k and i do).
    lowered = {text: text.lower() for _, text in named}
    for where, text in named:
        if "cabtagene" in lowered[text] and (m := CAR_STEM.search(text)):
            return "CAR-T", m.group(0), where, text
    for where, text in named:
        if ("CAR" in text and (m := _CAR_CODE.search(text))) or (
            "-cel" in lowered[text] and (m := _CEL_NAME.search(text))
        ):
            kind = "CAR-NK" if "NK" in m.group(0)[3:] else "CAR-T"
            return kind, m.group(0), where, text
    for where, text in interventions:  # "<code> T cells" counts only as what is given
        if "cell" in lowered[text] and (m := _CODE_CELLS.search(text)):
            kind = "CAR-NK" if m.group(2).upper().startswith("NK") else "CAR-T"
            return kind, m.group(1), where, text
    return None

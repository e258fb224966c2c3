"""The registrations of one trial that a record names: its own, and the other registries'
numbers it lists as secondary ids. Pure.

A trial is often registered more than once: on ClinicalTrials.gov and on the EU's CTIS
(an EU CT number, 2023-503456-12-00) or its predecessor EudraCT (2019-001234-56), on
China's ChiCTR (ChiCTR2300071234), on Japan's jRCT (jRCT2031230123). A
ClinicalTrials.gov record lists the others among its secondary ids, typed loosely
("EUDRACT_NUMBER", "CTIS", "REGISTRY" with a domain, or "OTHER"): each is recognised by
its own format, whatever type the sponsor chose, and linked to its registry's page. This
is the first step of following one trial across registries (docs/REGISTRIES.md): each
study knows its registrations; joining them into trials comes with the other registries.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.core.domain import Study


@dataclass(frozen=True, slots=True)
class Registry:
    key: str  # ctgov, ctis, eudract, chictr, jrct, isrctn, anzctr, drks
    name: str  # as readers know it
    pattern: re.Pattern[str]
    url: str  # {id} is the registration's number


REGISTRIES = (
    Registry("ctgov", "ClinicalTrials.gov", re.compile(r"NCT\d{8}"), "https://clinicaltrials.gov/study/{id}"),
    Registry(
        "ctis",
        "EU CTIS",
        re.compile(r"\d{4}-\d{6}-\d{2}-\d{2}"),  # 2024-510663-34-00; the last two count resubmissions
        "https://euclinicaltrials.eu/search-for-clinical-trials/?lang=en&EUCT={id}",
    ),
    Registry(
        "eudract",
        "EudraCT",
        re.compile(r"(?:19|20)\d{2}-\d{6}-\d{2}"),
        "https://www.clinicaltrialsregister.eu/ctr-search/search?query={id}",
    ),
    Registry(
        "chictr",
        "ChiCTR",
        re.compile(r"ChiCTR[-A-Z0-9]{6,20}"),
        "https://www.chictr.org.cn/searchprojEN.html?regno={id}",
    ),
    Registry(
        "jrct", "jRCT", re.compile(r"jRCT(?:\d{10}|s\d{9})"), "https://jrct.niph.go.jp/en-latest-detail/{id}"
    ),
    Registry("isrctn", "ISRCTN", re.compile(r"ISRCTN\d{8}"), "https://www.isrctn.com/{id}"),
    Registry(
        "anzctr",
        "ANZCTR",
        re.compile(r"ACTRN\d{14}"),
        "https://www.anzctr.org.au/Trial/Registration/TrialReview.aspx?ACTRN={id}",
    ),
    Registry("drks", "DRKS", re.compile(r"DRKS\d{8}"), "https://drks.de/search/en/trial/{id}"),
)
BY_KEY = {r.key: r for r in REGISTRIES}


@dataclass(frozen=True, slots=True)
class Registration:
    registry: str  # Registry.key
    id: str

    @property
    def registry_name(self) -> str:
        return BY_KEY[self.registry].name

    @property
    def url(self) -> str:
        return BY_KEY[self.registry].url.format(id=self.id)

    def to_dict(self) -> dict[str, str]:
        return {
            "registry": self.registry,
            "registry_name": self.registry_name,
            "id": self.id,
            "url": self.url,
        }


def recognise(text: str) -> list[Registration]:
    """Every registry number in `text`, by its own format (an EU CT number is tried before
    the shorter EudraCT one it starts like)."""
    text = re.sub(r"CTIS(?=\d{4}-\d{6}-)", "CTIS ", text)  # ICTRP writes CTIS2023-507385-11-00
    found: list[Registration] = []
    taken: list[tuple[int, int]] = []
    for reg in REGISTRIES:
        for m in re.finditer(
            rf"(?<![\w-]){reg.pattern.pattern}(?![\w-])",
            text,
            re.IGNORECASE if reg.key in ("chictr", "jrct") else 0,
        ):
            if any(a <= m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            number = m.group(0)
            if reg.key == "chictr":
                number = "ChiCTR" + number[6:].upper()
            elif reg.key == "jrct":
                number = "jRCT" + number[4:]
            found.append(Registration(reg.key, number))
    return found


def registrations(study: Study, texts: Iterable[str] = ()) -> list[Registration]:
    """The study's own registration first, then every other one its secondary ids (or the
    given texts) name, each once."""
    out = [Registration(registry_of(study.nct_id), study.nct_id)]
    for text in (*study.secondary_ids, *texts):
        for r in recognise(text):
            if r not in out:
                out.append(r)
    return out


@functools.lru_cache(maxsize=65536)
def registry_of(number: str) -> str:
    """The registry a registration's number belongs to, by its format (ctgov for an NCT id,
    and for a number of a register ctmonitor does not know). Cached: every change and row
    shown asks it."""
    found = recognise(number)
    return found[0].registry if found and found[0].id == number else "ctgov"


def parse_stored(values: Iterable[str]) -> list[Registration]:
    """Registrations as the studies row keeps them ("ctis:2024-510663-34-00")."""
    out = []
    for v in values:
        registry, _, number = v.partition(":")
        if registry in BY_KEY and number:
            out.append(Registration(registry, number))
    return out


_EU_CT = re.compile(r"^\d{4}-\d{6}-\d{2}-\d{2}$")


def check_study_id(value: str) -> str:
    """A tracked study's id as a reader types it: an NCT id (any case), an EU CT number, or
    another registry's number whose trials ctmonitor imports (ChiCTR, jRCT, EudraCT, ISRCTN,
    ANZCTR, DRKS; written as the registry writes it); UserError naming the forms otherwise."""
    from monitor.core.domain import UserError, check_nct_id

    v = value.strip()
    if _EU_CT.match(v):
        return v
    found = recognise(v)
    if len(found) == 1 and found[0].registry != "ctgov" and found[0].id.casefold() == v.casefold():
        return found[0].id
    try:
        return check_nct_id(v)
    except UserError:
        raise UserError(
            f"not a study id: {value!r} (an NCT id such as NCT05085418, an EU CT number such as "
            "2024-510663-34-00, or another registry's number such as ChiCTR2300071234)"
        ) from None


def registration_url(number: str) -> str:
    """The registry's own page of a registration, by its number's format."""
    return BY_KEY[registry_of(number)].url.format(id=number)


def study_link(template: str, number: str) -> str:
    """A study's address from a configured template (`{nct_id}`): the template itself, but a
    template pointing at ClinicalTrials.gov gives another registry's study its own page."""
    if "clinicaltrials.gov/study/" in template and registry_of(number) != "ctgov":
        return registration_url(number)
    return template.format(nct_id=number)


def resolve_registries(values: Iterable[str]) -> tuple[str, ...]:
    """Registry keys from what a reader typed: a key (ctis), a name as readers know it
    (EU CTIS, ClinicalTrials.gov) in any case; UserError naming the valid ones otherwise."""
    from monitor.core.domain import UserError

    names = {r.key: r.key for r in REGISTRIES} | {r.name.casefold(): r.key for r in REGISTRIES}
    names |= {"ctis": "ctis", "clinicaltrials": "ctgov", "nct": "ctgov", "euctr": "eudract"}
    out: list[str] = []
    for v in values:
        key = names.get(" ".join(v.split()).casefold())
        if key is None:
            valid = ", ".join(f"{r.key} ({r.name})" for r in REGISTRIES)
            raise UserError(f"registry: unknown value {v!r}; valid: {valid}")
        if key not in out:
            out.append(key)
    return tuple(out)


def registries_of(registered_on: str | None, registrations: Iterable[str] | None) -> set[str]:
    """The registries a study is on: its own, and those of the registrations its record names
    (as the studies row keeps them, "ctis:2024-…")."""
    out = {registered_on or "ctgov"}
    out |= {r.partition(":")[0] for r in registrations or () if ":" in r}
    return out


def registry_name(key: str) -> str:
    return BY_KEY[key].name if key in BY_KEY else key

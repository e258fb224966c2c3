"""Which studies a reader follows: the filters of subscribers, reports and feeds. Pure.

One definition serves the digest, the report and the feed, so "lupus CAR-T studies"
means the same thing in all three. Lists are "any of"; different kinds must all match.
NCT ids are the exception: listed studies are always included (even out of scope), and
when they are the only filter, only they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from monitor.core import products
from monitor.core.describe import PHASE_LABELS, phases_label, status_label
from monitor.core.domain import UserError
from monitor.core.registrations import registries_of, registry_name


class StudyFacts(Protocol):
    """What a filter reads: the summary columns of a tracked study (models.StudyRow has them)."""

    nct_id: str
    in_scope: bool | None
    modality: str | None
    targets: tuple[str, ...]
    indications: tuple[str, ...]
    overall_status: str | None
    lead_sponsor: str | None
    countries: tuple[str, ...]
    phases: tuple[str, ...]
    products: tuple[str, ...]


# The modalities the classifier labels (the vocabulary may add more).
MODALITIES = ("CAR-T", "CAAR-T", "CAR-Treg", "CAR-NK", "bispecific", "other")

# What people type for a label (compared with `alias_key`: case, accents, hyphens and
# apostrophes ignored). Each stands for one or more labels; anything else must be a
# label itself, so a typo is an error naming the valid values, never an empty result.
LABEL_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "modalities": {
        "cart": ("CAR-T",),
        "car t cell": ("CAR-T",),
        "car t cells": ("CAR-T",),
        "chimeric antigen receptor": ("CAR-T",),
        "caart": ("CAAR-T",),
        "chimeric autoantibody receptor": ("CAAR-T",),
        "treg": ("CAR-Treg",),
        "car tregs": ("CAR-Treg",),
        "nk": ("CAR-NK",),
        "bispecifics": ("bispecific",),
        "bispecific antibody": ("bispecific",),
        "bite": ("bispecific",),
        "engager": ("bispecific",),
        "t cell engager": ("bispecific",),
        "tce": ("bispecific",),
    },
    "indications": {
        "lupus": ("SLE", "lupus nephritis"),
        "systemic lupus erythematosus": ("SLE",),
        "ln": ("lupus nephritis",),
        "myasthenia": ("myasthenia gravis",),
        "mg": ("myasthenia gravis",),
        "scleroderma": ("systemic sclerosis",),
        "ssc": ("systemic sclerosis",),
        "myositis": ("myositis / antisynthetase",),
        "antisynthetase": ("myositis / antisynthetase",),
        "antisynthetase syndrome": ("myositis / antisynthetase",),
        "ms": ("multiple sclerosis",),
        "nmo": ("NMOSD",),
        "neuromyelitis optica": ("NMOSD",),
        "vasculitis": ("ANCA vasculitis",),
        "aav": ("ANCA vasculitis",),
        "ra": ("rheumatoid arthritis",),
        "sjogren": ("Sjögren's",),
        "sjogrens syndrome": ("Sjögren's",),
        "igg4": ("IgG4-RD",),
        "igg4 related disease": ("IgG4-RD",),
        "itp": ("AIHA/ITP",),
        "aiha": ("AIHA/ITP",),
        "t1d": ("type 1 diabetes",),
        "diabetes": ("type 1 diabetes",),
        "graves": ("Graves' disease",),
        "stiff person": ("stiff-person syndrome",),
        "sps": ("stiff-person syndrome",),
        "mn": ("membranous nephropathy",),
        "igan": ("IgA nephropathy",),
        "aps": ("antiphospholipid syndrome",),
        "behcet": ("Behçet's disease",),
        "behcets": ("Behçet's disease",),
        "basket": ("autoimmune (basket)",),
        "autoimmune": ("autoimmune (basket)",),
        "mog": ("MOGAD",),
        "encephalitis": ("autoimmune encephalitis",),
    },
}

# Status words that stand for several registry statuses.
ACTIVE_STATUSES = ("NOT_YET_RECRUITING", "RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING")
STATUS_ALIASES: dict[str, tuple[str, ...]] = {
    "ACTIVE": ACTIVE_STATUSES,
    "STOPPED": ("SUSPENDED", "TERMINATED", "WITHDRAWN"),
    "NOT_RECRUITING": ("ACTIVE_NOT_RECRUITING",),
    "UNKNOWN_STATUS": ("UNKNOWN",),
}


def alias_key(value: str) -> str:
    """`CAR-T`, `car t` and `Car T` read alike; `Sjögren's` and `sjogrens` too."""
    import unicodedata

    text = unicodedata.normalize("NFKD", value)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("'", "").replace("’", "")
    for ch in "-_/.,":
        text = text.replace(ch, " ")
    return " ".join(text.split())


def resolve_labels(name: str, values: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """Labels as the classifier writes them, from what a user typed (a label in any case,
    or an alias); UserError naming the valid values otherwise."""
    known = list(known)
    by_key = {alias_key(k): k for k in known}
    aliases = LABEL_ALIASES.get(name, {})
    out: list[str] = []
    for value in values:
        key = alias_key(value)
        if key in by_key:
            found: tuple[str, ...] = (by_key[key],)
        elif key in aliases and all(alias_key(a) in by_key for a in aliases[key]):
            found = tuple(by_key[alias_key(a)] for a in aliases[key])
        else:
            shown = sorted(by_key.values(), key=str.casefold)
            hint = f" (or: {', '.join(sorted(aliases))})" if aliases else ""
            raise UserError(f"{name}: unknown value {value!r}; valid: {', '.join(shown)}{hint}")
        out += [f for f in found if f not in out]
    return tuple(out)


PHASE_ALIASES = {
    "1": "PHASE1",
    "2": "PHASE2",
    "3": "PHASE3",
    "4": "PHASE4",
    "EARLY1": "EARLY_PHASE1",
    "EARLYPHASE1": "EARLY_PHASE1",
    "0": "EARLY_PHASE1",
    "N/A": "NA",
    "NOTAPPLICABLE": "NA",
}


def resolve_phases(values: Iterable[str]) -> tuple[str, ...]:
    """Registry phase codes from what a user typed: `PHASE2`, `Phase 2`, `2`, `early 1`,
    `NA`; a study of phase 1/2 lists both and matches either. UserError otherwise."""
    out: list[str] = []
    for value in values:
        code = value.strip().upper().replace(" ", "").replace("_", "").replace("-", "")
        code = {c.replace("_", ""): c for c in PHASE_LABELS}.get(code) or PHASE_ALIASES.get(
            code.removeprefix("PHASE")
        )
        if code is None:
            valid = ", ".join(c for c in PHASE_LABELS if c != "UNKNOWN")
            raise UserError(f"phase: unknown value {value!r}; valid: {valid} (or 1, 2, 3, 4, early 1)")
        if code not in out:
            out.append(code)
    return tuple(out)


def resolve_statuses(values: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """Registry status codes from what a user typed: a code, the registry's words
    ("Active, not recruiting"), or `active` / `stopped` for the statuses they stand for."""
    known = set(known)
    out: list[str] = []
    for value in values:
        code = value.strip().upper().replace(",", "").replace("-", "_").replace(" ", "_")
        codes = (code,) if code in known else STATUS_ALIASES.get(code)
        if not codes:
            raise UserError(
                f"status: unknown value {value!r}; valid: {', '.join(sorted(known))} "
                f"(or: {', '.join(a.lower() for a in STATUS_ALIASES)})"
            )
        out += [c for c in codes if c not in out]
    return tuple(out)


def fold(value: str | None) -> str:
    """How labels and text compare, for filters and the landscape alike: case-folded, runs
    of white space as one space."""
    return " ".join((value or "").casefold().split())


def _target_parts(labels: Sequence[str] | None) -> set[str]:
    """`CD19/BCMA` (a dual-target product) names each antigen; a filter on BCMA matches it."""
    parts: set[str] = set()
    for one in labels or ():
        for piece in one.split("/"):
            if piece.strip():
                parts.add(fold(piece))
    return parts


def _split(labels: Sequence[str] | None) -> set[str]:
    return {fold(p) for p in labels or () if p.strip()}


@dataclass(frozen=True, slots=True)
class StudyFilter:
    modalities: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    indications: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    sponsors: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    nct_ids: tuple[str, ...] = ()
    include_out_of_scope: bool = False
    phases: tuple[str, ...] = ()  # registry codes (PHASE1, ...): a phase 1/2 study matches either
    products: tuple[str, ...] = ()  # canonical names where known, else codes as typed
    registries: tuple[str, ...] = ()  # registry keys (core.registrations): on any of them

    @classmethod
    def from_settings(cls, sub: Any) -> StudyFilter:
        """From a SubscriberSettings (or anything with the same list attributes)."""
        return cls(
            modalities=tuple(sub.modalities),
            targets=tuple(sub.targets),
            indications=tuple(sub.indications),
            statuses=tuple(sub.statuses),
            sponsors=tuple(sub.sponsors),
            countries=tuple(sub.countries),
            nct_ids=tuple(sub.nct_ids),
            include_out_of_scope=sub.include_out_of_scope,
            phases=tuple(getattr(sub, "phases", ()) or ()),
            products=tuple(getattr(sub, "products", ()) or ()),
            registries=tuple(getattr(sub, "registries", ()) or ()),
        )

    @property
    def label_filters(self) -> bool:
        """Whether any label is asked for (besides the studies named by number)."""
        return bool(
            self.modalities
            or self.targets
            or self.indications
            or self.statuses
            or self.sponsors
            or self.countries
            or self.phases
            or self.products
            or self.registries
        )

    def matches(self, study: StudyFacts, *, leaving_scope: bool = False) -> bool:
        """True when the reader follows this study. `leaving_scope` lets an event that takes a
        study out of scope reach the readers who followed it until now."""
        if study.nct_id in self.nct_ids:
            return True
        if self.nct_ids and not self.label_filters:
            return False
        if not (self.include_out_of_scope or leaving_scope or study.in_scope):
            return False
        if self.modalities and fold(study.modality or "") not in {fold(m) for m in self.modalities}:
            return False
        if self.targets and not (_target_parts(study.targets) & {fold(t) for t in self.targets}):
            return False
        if self.indications and not (_split(study.indications) & {fold(i) for i in self.indications}):
            return False
        if self.statuses and (study.overall_status or "") not in self.statuses:
            return False
        if self.phases and not set(study.phases or ()) & set(self.phases):
            return False
        if self.products and not products.matches(self.products, getattr(study, "products", None) or ()):
            return False
        if self.registries and not (
            registries_of(
                getattr(study, "registered_on", None),
                getattr(study, "trial_registrations", None) or getattr(study, "registrations", None),
            )
            & set(self.registries)
        ):
            return False
        if self.sponsors:
            sponsor = fold(study.lead_sponsor or "")
            if not any(fold(s) in sponsor for s in self.sponsors):
                return False
        return not (self.countries and not (_split(study.countries) & {fold(c) for c in self.countries}))

    def resolved(
        self,
        *,
        modalities: Iterable[str],
        targets: Iterable[str],
        indications: Iterable[str],
        catalogue: products.Catalogue | None = None,
    ) -> StudyFilter:
        """This filter with labels as the classifier writes them (aliases expanded: `lupus`
        is SLE or lupus nephritis, `CART` is CAR-T). A label the classifier never produces
        is refused, naming the valid ones: a typo would mean an empty digest forever.
        Products are named canonically where the catalogue knows them (rese-cel is
        CABA-201); a code it does not know is kept: next month's product is one too."""
        from dataclasses import replace

        return replace(
            self,
            modalities=resolve_labels("modalities", self.modalities, modalities),
            targets=resolve_labels("targets", self.targets, targets),
            indications=resolve_labels("indications", self.indications, indications),
            products=catalogue.canonical(self.products) if catalogue else self.products,
        )

    def check_labels(
        self, *, modalities: Iterable[str], targets: Iterable[str], indications: Iterable[str]
    ) -> None:
        """Refuse labels the classifier never produces (see `resolved`)."""
        self.resolved(modalities=modalities, targets=targets, indications=indications)

    def describe(self) -> str:
        """One sentence a reader can check their subscription against."""
        parts: list[str] = []
        if self.modalities:
            parts.append("modality " + _any(self.modalities))
        if self.targets:
            parts.append("target " + _any(self.targets))
        if self.indications:
            parts.append("indication " + _any(self.indications))
        if self.statuses:
            parts.append("current status " + _any([status_label(s) for s in self.statuses]))
        if self.phases:
            parts.append("phase " + _any([phases_label([p]) for p in self.phases]))
        if self.products:
            parts.append("product " + _any(self.products))
        if self.sponsors:
            parts.append("lead sponsor containing " + _any(self.sponsors))
        if self.countries:
            parts.append("a site in " + _any(self.countries))
        if self.registries:
            parts.append("registered on " + _any([registry_name(r) for r in self.registries]))
        scope = "all tracked studies" if self.include_out_of_scope else "studies in scope"
        text = f"{scope} with " + "; ".join(parts) if parts else scope
        if self.nct_ids:
            ids = ", ".join(self.nct_ids)
            text = f"{ids}, and {text}" if parts else f"only {ids}"
        return text


def _any(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else " or ".join([", ".join(values[:-1]), values[-1]])

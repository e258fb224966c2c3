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

from monitor.core.describe import status_label
from monitor.core.domain import UserError


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


# The modalities the classifier labels (the vocabulary may add more).
MODALITIES = ("CAR-T", "CAAR-T", "CAR-Treg", "CAR-NK", "bispecific", "other")


def _fold(value: str) -> str:
    return " ".join(value.casefold().split())


def _target_parts(labels: Sequence[str] | None) -> set[str]:
    """`CD19/BCMA` (a dual-target product) names each antigen; a filter on BCMA matches it."""
    parts: set[str] = set()
    for one in labels or ():
        for piece in one.split("/"):
            if piece.strip():
                parts.add(_fold(piece))
    return parts


def _split(labels: Sequence[str] | None) -> set[str]:
    return {_fold(p) for p in labels or () if p.strip()}


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
        )

    @property
    def _label_filters(self) -> bool:
        return bool(
            self.modalities
            or self.targets
            or self.indications
            or self.statuses
            or self.sponsors
            or self.countries
        )

    def matches(self, study: StudyFacts, *, leaving_scope: bool = False) -> bool:
        """True when the reader follows this study. `leaving_scope` lets an event that takes a
        study out of scope reach the readers who followed it until now."""
        if study.nct_id in self.nct_ids:
            return True
        if self.nct_ids and not self._label_filters:
            return False
        if not (self.include_out_of_scope or leaving_scope or study.in_scope):
            return False
        if self.modalities and _fold(study.modality or "") not in {_fold(m) for m in self.modalities}:
            return False
        if self.targets and not (_target_parts(study.targets) & {_fold(t) for t in self.targets}):
            return False
        if self.indications and not (_split(study.indications) & {_fold(i) for i in self.indications}):
            return False
        if self.statuses and (study.overall_status or "") not in self.statuses:
            return False
        if self.sponsors:
            sponsor = _fold(study.lead_sponsor or "")
            if not any(_fold(s) in sponsor for s in self.sponsors):
                return False
        return not (self.countries and not (_split(study.countries) & {_fold(c) for c in self.countries}))

    def check_labels(
        self, *, modalities: Iterable[str], targets: Iterable[str], indications: Iterable[str]
    ) -> None:
        """Refuse labels the classifier never produces: a typo would mean an empty digest forever."""
        for name, wanted, known in (
            ("modalities", self.modalities, modalities),
            ("targets", self.targets, targets),
            ("indications", self.indications, indications),
        ):
            folded = {_fold(k): k for k in known}
            for value in wanted:
                if _fold(value) not in folded:
                    raise UserError(
                        f"{name}: unknown label {value!r}; known: {', '.join(sorted(folded.values()))}"
                    )

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
        if self.sponsors:
            parts.append("lead sponsor containing " + _any(self.sponsors))
        if self.countries:
            parts.append("a site in " + _any(self.countries))
        scope = "all tracked studies" if self.include_out_of_scope else "studies in scope"
        text = f"{scope} with " + "; ".join(parts) if parts else scope
        if self.nct_ids:
            ids = ", ".join(self.nct_ids)
            text = f"{ids}, and {text}" if parts else f"only {ids}"
        return text


def _any(values: Sequence[str]) -> str:
    return values[0] if len(values) == 1 else " or ".join([", ".join(values[:-1]), values[-1]])

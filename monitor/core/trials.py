"""One trial, several registrations: which tracked registrations are the same trial, which
of them stands for it, and whether their statuses disagree. Pure.

A trial registered on ClinicalTrials.gov and on EU CTIS is two records that name each
other (an EU CT or EudraCT number among the NCT record's secondary ids; the NCT number in
the CTIS record), or that both name a third number (the EudraCT number of a trial that
moved to CTIS). Readers follow the trial: the landscape, reports and digests show it once,
with all its registrations, and a status that differs between them is news in itself
("Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS").

Joins are derived from what the records say, never typed in, and never join two
registrations of one registry: two ClinicalTrials.gov records that both cite one EudraCT
number (a main trial and its long-term follow-up, say) stay two trials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from monitor.core.registrations import BY_KEY, REGISTRIES, registry_name

T = TypeVar("T")
_ORDER = {r.key: i for i, r in enumerate(REGISTRIES)}


@dataclass(frozen=True, slots=True)
class Member:
    """A tracked registration, as the studies row keeps it."""

    id: str  # its number (an NCT id, an EU CT number, ...)
    registry: str  # core.registrations key
    names: tuple[str, ...] = ()  # the registrations its record names, "registry:number"
    in_scope: bool = True


def _rank(m: Member) -> tuple[int, int, str]:
    # the registration that stands for the trial: one in scope, ClinicalTrials.gov's (the
    # fullest record, with a version history, and the number readers cite), then the
    # registries in their table's order, then the lowest number
    return (0 if m.in_scope else 1, _ORDER.get(m.registry, len(_ORDER)), m.id)


def join(members: Iterable[Member]) -> dict[str, str]:
    """Each member's trial: the id of the registration standing for it (its own id when it
    stands alone). Edges are a record naming another tracked registration, then two
    records naming the same untracked number; an edge that would put two registrations of
    one registry in a trial is not taken."""
    by_id = {m.id: m for m in members}
    parent = {i: i for i in by_id}
    registries = {i: {m.registry} for i, m in by_id.items()}

    def root(i: str) -> str:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra == rb or registries[ra] & registries[rb]:
            return
        parent[rb] = ra
        registries[ra] |= registries.pop(rb)

    shared: dict[str, list[str]] = {}
    for i in sorted(by_id):
        for name in by_id[i].names:
            _, _, number = name.partition(":")
            if number in by_id and number != i:
                union(i, number)
            elif number:
                shared.setdefault(name, []).append(i)
    for name in sorted(shared):
        ids = shared[name]
        for other in ids[1:]:
            union(ids[0], other)

    groups: dict[str, list[Member]] = {}
    for i in by_id:
        groups.setdefault(root(i), []).append(by_id[i])
    out: dict[str, str] = {}
    for group in groups.values():
        head = min(group, key=_rank).id
        for m in group:
            out[m.id] = head
    return out


def registrations_of(group: Sequence[Member], head: str) -> tuple[str, ...]:
    """Every registration of a trial, "registry:number": the one standing for it first, then
    the tracked ones, then those only named, each once, in the registries' order."""
    seen: dict[str, None] = {}
    own = sorted(group, key=lambda m: (m.id != head, _ORDER.get(m.registry, 99), m.id))
    for m in own:
        seen.setdefault(f"{m.registry}:{m.id}", None)
    named = sorted(
        {n for m in group for n in m.names if n.partition(":")[0] in BY_KEY},
        key=lambda n: (_ORDER.get(n.partition(":")[0], 99), n),
    )
    for n in named:
        seen.setdefault(n, None)
    return tuple(seen)


def with_heads(ids: Iterable[str], trial_of: Callable[[str], str | None]) -> set[str]:
    """The ids and the registrations standing for their trials (a digest block is headed
    by the standing registration, whichever registration changed)."""
    out = set(ids)
    out |= {t for i in list(out) if (t := trial_of(i))}
    return out


def _of_dict(row: Any) -> tuple[str, str | None]:
    return row["nct_id"], row.get("trial_id")


def _of_row(row: Any) -> tuple[str, str | None]:
    return row.nct_id, getattr(row, "trial_id", None)


def fold(rows: Sequence[T], *, dicts: bool = True) -> list[T]:
    """One row per trial: a registration's row is left out when the row standing for its
    trial is among `rows` (so what a filter or scope left out never hides a trial). Rows
    are summary dicts (the landscape's) or rows with attributes (the report's)."""
    ids: Callable[[Any], tuple[str, str | None]] = _of_dict if dicts else _of_row
    present = {ids(r)[0] for r in rows}
    out = []
    for r in rows:
        own, trial = ids(r)
        if not (trial and trial != own and trial in present):
            out.append(r)
    return out


# The status a reader compares: open to patients, closed to them but going on, halted,
# ended. A registration with an unknown status never disagrees.
_CLASS = {
    "NOT_YET_RECRUITING": "open",
    "RECRUITING": "open",
    "ENROLLING_BY_INVITATION": "open",
    "AVAILABLE": "open",
    "ACTIVE_NOT_RECRUITING": "closed",
    "SUSPENDED": "halted",
    "TEMPORARILY_NOT_AVAILABLE": "halted",
    "COMPLETED": "ended",
    "TERMINATED": "ended",
    "WITHDRAWN": "ended",
    "NO_LONGER_AVAILABLE": "ended",
}


@dataclass(frozen=True, slots=True)
class Standing:
    """One registration's status as its registry words it, with the member states (CTIS)
    that share it."""

    registry: str
    id: str
    status: str | None  # the reader's status code
    words: str  # the registry's own words for it
    places: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": self.registry,
            "id": self.id,
            "status": self.status,
            "words": self.words,
            "places": list(self.places),
        }


def disagree(standings: Sequence[Standing]) -> bool:
    """Whether a trial's registrations say different things: one open to patients while
    another has closed, halted or ended (within a class, the registries' words differ
    without disagreeing: "Recruiting" and "Ongoing, recruiting")."""
    classes = {_CLASS[s.status] for s in standings if s.status in _CLASS}
    return len(classes) > 1


def in_member_states(countries: Sequence[str]) -> str:
    """ "in Germany", "in France and Germany", "in 4 member states" (more than three)."""
    if len(countries) > 3:
        return f"in {len(countries)} member states"
    if len(countries) == 1:
        return f"in {countries[0]}"
    return "in " + ", ".join(countries[:-1]) + " and " + countries[-1]


def statuses_text(statuses: Iterable[Mapping[str, Any]]) -> str:
    """ "Recruiting on ClinicalTrials.gov, Ended in Germany on EU CTIS"."""
    parts = []
    for s in statuses:
        places = list(s.get("places") or [])
        where = f" {in_member_states(places)}" if places else ""
        parts.append(f"{s.get('words') or 'no status'}{where} on {registry_name(str(s.get('registry')))}")
    return ", ".join(parts)

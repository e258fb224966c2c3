"""A study's timeline and the diff between two of its versions, from what is stored. Pure.

Inputs are the study's stored versions (snapshots, normalized), its events, and the
registry's version list when a backfill fetched it. Three rules make the output
trustworthy for a coordinator:

- versions are ordered by snapshot seq, which is chronological by construction
  (backfilled registry versions have negative seqs, polled ones 1, 2, ...);
- a status "began" on the registry date of the first version that shows it (the
  day the registry published it, not the day we noticed), and lasted until the next
  status began; registry-listed versions we never fetched (published between two of our
  polls) still contribute their status and date;
- changes are listed oldest first by registry date, each marked as seen by our polls
  or taken from the registry's history.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import pairwise
from typing import Any

from monitor.core.describe import KIND_LABELS, change_text, status_label
from monitor.core.diff import diff
from monitor.core.domain import FieldChange, Study, UserError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Version:
    """One stored version of a study's record."""

    seq: int
    origin: str  # poll | backfill
    registry_version: int | None
    date: str | None  # the registry's last-update post date of this version
    fetched_at: datetime
    study: Study

    @property
    def label(self) -> str:
        """How commands refer to it: `r3` is registry version 3 (backfilled), `#2` our second polled one."""
        return f"r{self.registry_version}" if self.origin == "backfill" else f"#{self.seq}"

    @property
    def when(self) -> str:
        return self.date or self.fetched_at.date().isoformat()

    def describe(self) -> str:
        source = "registry history" if self.origin == "backfill" else "our poll"
        extra = (
            f", registry version {self.registry_version}"
            if self.origin == "poll" and self.registry_version is not None
            else ""
        )
        return f"{self.label} ({self.when}, {source}{extra})"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "seq": self.seq,
            "origin": self.origin,
            "registry_version": self.registry_version,
            "date": self.when,
            "fetched_at": self.fetched_at.isoformat(),
            "status": self.study.overall_status,
        }


@dataclass(frozen=True, slots=True)
class StatusPeriod:
    status: str | None
    began: str
    ended: str | None  # None: still the status today
    days: int | None  # how long it lasted (so far, for the current one)
    source: str  # poll | backfill | registry-list
    # False for a first status seen on a version later than the registration: it held by
    # `began`, and may have begun long before (then `days` is a lower bound).
    began_known: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "label": status_label(self.status),
            "began": self.began,
            "began_known": self.began_known,
            "ended": self.ended,
            "days": self.days,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One stored event, as a timeline line."""

    event_id: int
    date: str
    detected_at: datetime
    kind: str
    field: str
    item_key: str
    before: Any
    after: Any
    origin: str  # poll | backfill | reclassify
    held: bool
    version: str | None  # the label of the version that introduced it

    @property
    def text(self) -> str:
        return change_text(self.kind, self.field, self.before, self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "date": self.date,
            "detected_at": self.detected_at.isoformat(),
            "kind": self.kind,
            "label": KIND_LABELS.get(self.kind, self.kind),
            "field": self.field,
            "item": self.item_key,
            "before": self.before,
            "after": self.after,
            "text": self.text,
            "origin": self.origin,
            "held": self.held,
            "version": self.version,
        }


def _days(a: str, b: str) -> int | None:
    try:
        return (date.fromisoformat(b) - date.fromisoformat(a)).days
    except ValueError:
        return None


def status_periods(
    versions: Sequence[Version],
    registry_list: Sequence[dict[str, Any]] | None,
    today: date,
) -> list[StatusPeriod]:
    """Every status with the date it began and how long it lasted, oldest first.

    A status is dated by the day the registry published the version that first showed
    it: the stored versions (in seq order) give those points. The registry's version list
    (kept by backfill) only fills a gap between two stored versions where it shows a
    status neither of them has (say, a suspension lifted before our next poll). Its dates
    are submission dates, days before the post dates, so it never moves a date a stored
    version gives:
    - a listed entry that is a stored version (the same registry version number, or the
      same submission date as the stored record's) is that version, already dated;
    - in a gap, listed entries after the last change that show the later stored version's
      status are that version's own listing unless the later version was matched to
      another entry; they are then dropped and the stored version dates the status.
    """
    stored_numbers = {v.registry_version for v in versions if v.registry_version is not None}
    stored_dates = {v.study.last_update_submit_date for v in versions} - {None}
    # (date, status, source, registry version): version 0 is the registration
    points: list[tuple[str, str | None, str, int | None]] = [
        (v.when, v.study.overall_status, v.origin, v.registry_version) for v in versions
    ]
    listed = sorted(
        (str(item["date"]), item.get("status"), item.get("version"))
        for item in registry_list or ()
        if item.get("date")
        and _DATE.match(str(item["date"]))
        and item.get("version") not in stored_numbers
        and str(item["date"]) not in stored_dates
    )
    matched = {
        id(v)
        for v in versions
        if v.registry_version is not None
        or any(v.study.last_update_submit_date == item.get("date") for item in registry_list or ())
    }
    for lo, hi in pairwise([None, *versions, None]):
        gap = [
            (d, st, n) for d, st, n in listed if (lo is None or d > lo.when) and (hi is None or d < hi.when)
        ]
        seen = {v.study.overall_status for v in (lo, hi) if v is not None}
        if not any(st not in seen for _, st, _ in gap):
            continue
        if hi is not None and id(hi) not in matched:
            while gap and gap[-1][1] == hi.study.overall_status:
                gap.pop()  # most likely `hi` itself, listed by its submission date
        points += [(d, st, "registry-list", n) for d, st, n in gap]
    points.sort(key=lambda p: p[0])

    starts: list[tuple[str, str | None, str, int | None]] = []
    for point in points:
        if not starts or starts[-1][1] != point[1]:
            starts.append(point)
    out = []
    for i, (when, status, source, number) in enumerate(starts):
        ended = starts[i + 1][0] if i + 1 < len(starts) else None
        days = _days(when, ended or today.isoformat())
        out.append(StatusPeriod(status, when, ended, days, source, began_known=i > 0 or number == 0))
    return out


def order_changes(changes: Iterable[Change]) -> list[Change]:
    """Oldest first by registry date; on one day, registry history before our polls, then as stored."""
    return sorted(changes, key=lambda c: (c.date, 0 if c.origin == "backfill" else 1, c.event_id))


# -- versions and diffs ------------------------------------------------------------------


def resolve(versions: Sequence[Version], ref: str, *, before_date: bool = False) -> Version:
    """A version by reference: `latest`, `first`, `r3` (registry version), `#2` or `2` (our
    snapshot), or a date YYYY-MM-DD (the version current on that day; with before_date,
    the one current just before it). UserError naming the choices if none matches."""
    if not versions:
        raise UserError("no stored versions")
    text = ref.strip().lower()
    if text == "latest":
        return versions[-1]
    if text == "first":
        return versions[0]
    if _DATE.match(text):
        try:
            date.fromisoformat(text)
        except ValueError:
            raise UserError(f"{ref!r} is not a date (YYYY-MM-DD)") from None
        earlier = [v for v in versions if (v.when < text if before_date else v.when <= text)]
        return earlier[-1] if earlier else versions[0]
    if text.startswith("r") and text[1:].isdigit():
        n = int(text[1:])
        for v in versions:
            if v.registry_version == n:
                return v
    elif text.lstrip("#").isdigit():
        n = int(text.lstrip("#"))
        for v in versions:
            if v.origin == "poll" and v.seq == n:
                return v
    else:
        raise UserError(f"{ref!r} is not a version: use latest, first, rN, #N or a date YYYY-MM-DD")
    known = ", ".join(v.label for v in versions)
    raise UserError(f"no version {ref!r} stored for this study (versions: {known})")


@dataclass(frozen=True, slots=True)
class Comparison:
    nct_id: str
    old: Version
    new: Version
    changes: list[FieldChange]

    def to_json(self) -> dict[str, Any]:
        return {
            "nct_id": self.nct_id,
            "from": self.old.to_json(),
            "to": self.new.to_json(),
            "changes": [
                {
                    "kind": c.kind.value,
                    "label": KIND_LABELS.get(c.kind.value, c.kind.value),
                    "field": c.field,
                    "item": c.key,
                    "before": c.before,
                    "after": c.after,
                    "text": change_text(c.kind.value, c.field, c.before, c.after),
                }
                for c in self.changes
            ],
        }


def compare(nct_id: str, old: Version, new: Version) -> Comparison:
    """The tracked differences from one stored version to another (the differ the polls use)."""
    return Comparison(nct_id, old, new, diff(old.study, new.study))

"""What a reader is told about: one rule for every surface (the change log, the web's
change stream and its API, the feeds, reports and each subscriber's digest).

A study's arrival in the watch is recorded as a `new_study` event, but it is news only
when the study is new in the world. Three cases, judged here and nowhere else:

- **registered**: first posted on the registry in the period the reader asked about (a
  digest's period starts where their last one ended). This is the "New study" a reader
  acts on.
- **found**: registered before the period, and reached now because its record changed to
  match the watch queries, or because a reader followed it by id. Shown as such ("Newly
  found, registered 2024-03"), counted apart from new studies, and worth knowing rather
  than acting on (importance 2).
- **baseline**: reached by a baseline poll (the first poll, or the first after the watch
  queries changed), which reaches every study at once. Recorded, and listed only when a
  reader asks for it explicitly; never presented as a change.

Without a period (an open-ended list), "in the period" means within `LAG_DAYS` of the
day ctmonitor detected it: the time a poll can take to see a new registration.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum

NEW_STUDY = "new_study"
LAG_DAYS = 3
FOUND_IMPORTANCE = 2


class Arrival(StrEnum):
    REGISTERED = "registered"
    FOUND = "found"
    BASELINE = "baseline"


def registry_day(value: str | None) -> date | None:
    """A registry date (`2024`, `2024-03`, `2024-03-15`) as its first possible day."""
    if not value:
        return None
    try:
        parts = [int(p) for p in value[:10].split("-")] + [1, 1]
        return date(parts[0], parts[1], parts[2])
    except ValueError:
        return None


def arrival(
    first_posted: str | None, detected_at: datetime, *, baseline: bool, period_start: date | None
) -> Arrival:
    """How a study's arrival reads in a period that starts on `period_start` (None: open)."""
    if baseline:
        return Arrival.BASELINE
    first = registry_day(first_posted)
    if first is None:
        return Arrival.REGISTERED  # no date to judge by: err on the side of telling
    reference = period_start if period_start is not None else detected_at.date() - timedelta(days=LAG_DAYS)
    return Arrival.REGISTERED if first >= reference else Arrival.FOUND


def reader_importance(kind: str, importance: int, arrival_: Arrival | None) -> int:
    """The importance a reader sees: a study found (not registered) is worth knowing, not
    a change to act on."""
    if kind == NEW_STUDY and arrival_ is Arrival.FOUND:
        return min(importance, FOUND_IMPORTANCE)
    return importance


def arrival_label(arrival_: Arrival | None) -> str | None:
    """The headline of a new-study change as a reader reads it (None: not a new study)."""
    if arrival_ is Arrival.REGISTERED:
        return "New study"
    if arrival_ is Arrival.FOUND:
        return "Newly found"
    if arrival_ is Arrival.BASELINE:
        return "First reached by the initial sync"
    return None


def arrival_note(arrival_: Arrival | None, first_posted: str | None) -> str:
    """What a found (or baseline) study's line adds to its text (which gives the date it
    was first posted, where the registry gives one)."""
    if arrival_ is Arrival.FOUND:
        if first_posted:
            return "registered before the period; it matches the watch for the first time"
        return "it matches the watch for the first time"
    if arrival_ is Arrival.BASELINE:
        return "part of the starting picture, not news"
    return ""

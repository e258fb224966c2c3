"""How a use case says it could not do its work (beside UserError, for bad input)."""

from __future__ import annotations

from monitor.core.domain import UserError


class WorkFailed(Exception):
    """The use case ran but its work could not be done (e.g. the database cannot be opened)."""


class NotTracked(UserError):
    """No study with this id is tracked (the web answers 404)."""


def not_tracked(nct: str) -> NotTracked:
    return NotTracked(f"{nct} is not tracked: run `ctmonitor poll` first, or check the id")

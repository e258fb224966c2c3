"""How a use case says it could not do its work (beside UserError, for bad input)."""

from __future__ import annotations

from monitor.core.domain import UserError


class WorkFailed(Exception):
    """The use case ran but its work could not be done (e.g. the database cannot be opened)."""


class NotTracked(UserError):
    """No study with this id is tracked (the web answers 404)."""


def not_tracked(nct: str, database: str = "", tracked: int | None = None) -> NotTracked:
    """Says which database was read and what it holds: an empty one (a first poll not yet
    run, or the wrong file) reads differently from a full one without this id."""
    where = f" in {database}" if database else ""
    if tracked == 0:
        return NotTracked(f"{nct} is not tracked{where}: it holds no studies yet (`ctmonitor poll` fills it)")
    if tracked is not None:
        return NotTracked(
            f"{nct} is not tracked{where} ({tracked} studies are): check the id, or follow it with "
            "`ids = [...]` in a [[queries]] entry"
        )
    return NotTracked(f"{nct} is not tracked: run `ctmonitor poll` first, or check the id")

"""How a use case says it could not do its work (beside UserError, for bad input)."""

from __future__ import annotations

from monitor.core.domain import UserError


class WorkFailed(Exception):
    """The use case ran but its work could not be done (e.g. the database cannot be opened)."""


class NotTracked(UserError):
    """No study with this id is tracked (the web answers 404). The message is the
    operator's (which database was read); `nct` lets a public page say it in a reader's
    words instead."""

    def __init__(self, message: str, nct: str | None = None) -> None:
        super().__init__(message)
        self.nct = nct


class NotFound(UserError):
    """No such product or sponsor here (the web answers 404 with this reader's sentence)."""


def not_tracked(nct: str, database: str = "", tracked: int | None = None) -> NotTracked:
    """Says which database was read and what it holds: an empty one (a first poll not yet
    run, or the wrong file) reads differently from a full one without this id."""
    where = f" in {database}" if database else ""
    if tracked == 0:
        return NotTracked(
            f"{nct} is not tracked{where}: it holds no studies yet (`ctmonitor poll` fills it)", nct
        )
    if tracked is not None:
        return NotTracked(
            f"{nct} is not tracked{where} ({tracked} studies are): check the id, or follow it with "
            "`ids = [...]` in a [[queries]] entry",
            nct,
        )
    return NotTracked(f"{nct} is not tracked: run `ctmonitor poll` first, or check the id", nct)

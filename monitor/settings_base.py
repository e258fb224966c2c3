"""What every settings section shares: strict sections (an unknown key or a wrong type is
an error naming the key) and the checks of NCT ids and filter lists that turn the core's
one-line UserErrors into validation errors pydantic reports with the key's name."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import BaseModel, ConfigDict

from monitor.core.domain import UserError, check_nct_id


class Section(BaseModel):
    """A config.toml table: unknown keys refused, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def checked(resolve: Callable[[list[str]], Iterable[str]], values: list[str]) -> list[str]:
    """A filter list as the shared resolver (monitor.core.filters) reads it; its one-line
    UserError becomes the validation error pydantic reports with the key's name."""
    try:
        return list(resolve(values))
    except UserError as exc:
        raise ValueError(str(exc)) from None


def nct_ids(values: list[str]) -> list[str]:
    try:
        return [check_nct_id(x) for x in values]
    except UserError as exc:
        raise ValueError(str(exc)) from None

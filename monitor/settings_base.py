"""What every settings section shares: strict sections (an unknown key or a wrong type is
an error naming the key) and the checks of NCT ids and filter lists that turn the core's
one-line UserErrors into validation errors pydantic reports with the key's name."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from monitor.core.domain import UserError, check_nct_id
from monitor.core.registrations import check_study_id


class Section(BaseModel):
    """A config.toml table: unknown keys refused, values frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Pacing(Section):
    """How a service is asked: timeout, the least time between requests, and the one retry
    rule (monitor.registry.paced) — the same keys in [api] and [literature]."""

    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    min_interval_seconds: Annotated[float, Field(ge=0, le=60)] = 1.2
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    retry_budget_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    backoff_base_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    backoff_max_seconds: Annotated[float, Field(ge=0, le=600)] = 60.0
    max_retry_after_seconds: Annotated[float, Field(ge=0, le=3600)] = 120.0


def checked(resolve: Callable[[list[str]], Iterable[str]], values: list[str]) -> list[str]:
    """A filter list as the shared resolver (monitor.core.filters) reads it; its one-line
    UserError becomes the validation error pydantic reports with the key's name."""
    try:
        return list(resolve(values))
    except UserError as exc:
        raise ValueError(str(exc)) from None


def nct_ids(values: list[str]) -> list[str]:
    """ClinicalTrials.gov ids (a watch query's `ids`)."""
    try:
        return [check_nct_id(x) for x in values]
    except UserError as exc:
        raise ValueError(str(exc)) from None


def study_ids(values: list[str]) -> list[str]:
    """Studies a reader follows: NCT ids or EU CT numbers (any tracked registration)."""
    try:
        return [check_study_id(x) for x in values]
    except UserError as exc:
        raise ValueError(str(exc)) from None


def http_url(value: str, example: str) -> str:
    """A service's base URL: http(s) with a host, without its trailing slash."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL such as {example}, got {value!r}")
    return value.rstrip("/")

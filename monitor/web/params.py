"""Query strings -> the application's queries; bad values are one-line UserErrors (400)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from monitor.app.browse import ChangesQuery
from monitor.core.domain import UserError
from monitor.core.filters import StudyFilter, resolve_phases
from monitor.core.landscape import status_codes
from monitor.core.registrations import check_study_id, resolve_registries

FILTER_PARAMS = {
    "modality": "modalities",
    "target": "targets",
    "indication": "indications",
    "status": "statuses",
    "sponsor": "sponsors",
    "country": "countries",
    "phase": "phases",
    "product": "products",
    "registry": "registries",
    "study": "nct_ids",
}
CHANGE_PARAMS = {
    "kind",
    "importance",
    "since",
    "until",
    "by",
    "backfill",
    "baseline",
    "all",
    "cursor",
    "limit",
}
YES = ("1", "true", "on", "yes")
REPORT_PARAMS = {"since", "until", "format", "all", "kind"}


def multi(params: Mapping[str, Sequence[str]], key: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in params.get(key, ()) if v.strip())


def one(params: Mapping[str, Sequence[str]], key: str, default: str = "") -> str:
    values = multi(params, key)
    return values[-1] if values else default


def check_keys(params: Mapping[str, Sequence[str]], allowed: set[str]) -> None:
    for key in params:
        if key not in allowed:
            raise UserError(f"unknown parameter {key!r}; known: {', '.join(sorted(allowed))}")


def study_filter(params: Mapping[str, Sequence[str]]) -> StudyFilter:
    """The filters reports, feeds and subscribers have, from a query string."""
    values = {dest: multi(params, name) for name, dest in FILTER_PARAMS.items()}
    values["statuses"] = status_codes(values["statuses"])
    values["phases"] = resolve_phases(values["phases"])
    values["nct_ids"] = tuple(check_study_id(x) for x in values["nct_ids"])
    values["registries"] = resolve_registries(values["registries"])
    return StudyFilter(**values, include_out_of_scope=one(params, "all") in ("1", "true", "on", "yes"))


def day(params: Mapping[str, Sequence[str]], key: str) -> date | None:
    raw = one(params, key)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise UserError(f"{key}: {raw!r} is not a date (YYYY-MM-DD)") from None


def number(params: Mapping[str, Sequence[str]], key: str) -> int | None:
    raw = one(params, key)
    if not raw:
        return None
    if not raw.isdigit():
        raise UserError(f"{key}: {raw!r} is not a whole number")
    return int(raw)


def changes_query(params: Mapping[str, Sequence[str]]) -> ChangesQuery:
    check_keys(params, set(FILTER_PARAMS) | CHANGE_PARAMS)
    raw = one(params, "importance", "1")
    if raw not in ("1", "2", "3"):
        raise UserError(f"importance: {raw!r} is not 1, 2 or 3")
    return ChangesQuery(
        filter=study_filter(params),
        include_baseline=one(params, "baseline") in YES,
        before=number(params, "cursor"),
        limit=ChangesQuery.limit if (given := number(params, "limit")) is None else given,
        kinds=multi(params, "kind"),
        min_importance=int(raw),
        since=day(params, "since"),
        until=day(params, "until"),
        by=one(params, "by", "detected"),
        include_backfill=one(params, "backfill") in ("1", "true", "on", "yes"),
    ).check()

"""config.toml's [ctis] table: the EU Clinical Trials Information System, polled beside
ClinicalTrials.gov. Kept apart from monitor.config (which reads it) so each stays a readable size.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from monitor.settings_base import Pacing, http_url

# The watch in CTIS's own search: its full-text "contains any" over titles, conditions,
# products and substances, one search per line, meaning what the ClinicalTrials.gov
# queries mean (engineered cell therapies and T-cell engagers); what they return is
# classified like any study, so oncology trials they reach are kept out of scope.
DEFAULT_SEARCHES = [
    "chimeric antigen receptor",
    "CAR-T",
    "CAR T",
    "CAAR-T",
    "CAR-NK",
    "CAR-Treg",
    "autoleucel",
    "T-cell engager",
    "bispecific",
]


class CtisSettings(Pacing):
    """euclinicaltrials.eu's public API (no key, no login)."""

    enabled: bool = True
    base_url: str = "https://euclinicaltrials.eu"
    # Trials per search page: CTIS answers at most 100.
    page_size: Annotated[int, Field(ge=1, le=100)] = 100
    # CTIS answers no more than this many trials for one search, silently (its pages past it
    # come back empty): a search that reaches more is read from both ends, and one beyond
    # twice this fails the poll, saying so, so that it is narrowed rather than cut short.
    result_cap: Annotated[int, Field(ge=1, le=100_000)] = 10_000
    searches: list[str] = Field(default_factory=lambda: list(DEFAULT_SEARCHES))
    # CTIS publishes changes overnight and sorts by its publication date only roughly:
    # an incremental poll reads back this many days before the last good one.
    overlap_days: Annotated[int, Field(ge=0, le=60)] = 3
    # Every trial the searches return is read in full this often (CTIS keeps no versions
    # and a date is only a hint of a change).
    full_every_days: Annotated[int, Field(ge=1, le=365)] = 7
    min_interval_seconds: Annotated[float, Field(ge=0, le=60)] = 0.5

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        return http_url(v, "https://euclinicaltrials.eu")

    @field_validator("searches")
    @classmethod
    def _some_searches(cls, v: list[str]) -> list[str]:
        out = [" ".join(s.split()) for s in v if s.strip()]
        if not out:
            raise ValueError("at least one search is needed (or enabled = false)")
        return out

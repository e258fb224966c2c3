"""The literature use cases: search PubMed and Europe PMC for the tracked studies' registry
numbers, and show what was found (mixed into Application)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitor.core.domain import UserError
from monitor.core.literature import SERVICES

if TYPE_CHECKING:
    from monitor.tracking.literature import LiteratureClient, LiteratureSummary


@dataclass(frozen=True)
class LiteratureResult:
    runs: list[LiteratureSummary]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def stopped(self) -> bool:
        return any(r.outcome == "stopped" for r in self.runs)

    def text(self) -> str:
        if not self.runs:
            return "No literature service is switched on ([literature] pubmed and europepmc in config.toml)."
        return "\n".join(r.text() for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "runs": [r.to_json() for r in self.runs]}


def make_client(settings: Any, name: str) -> LiteratureClient:
    """The real client of one service, from [literature]; the NCBI key from the environment."""
    lit = settings.literature
    if name == "pubmed":
        from monitor.registry.pubmed import PubMedClient

        return PubMedClient(lit, api_key=os.environ.get(lit.api_key_env, "").strip())
    from monitor.registry.europepmc import EuropePmcClient

    return EuropePmcClient(lit)


class LiteratureUseCases:
    """Mixed into Application (settings, database, now, literature_factory)."""

    settings: Any
    database: Any
    now: Callable[..., Any]
    literature_factory: Callable[[str], LiteratureClient] | None = None

    def literature(
        self, sources: Sequence[str] = (), *, should_stop: Callable[[], bool] = lambda: False
    ) -> LiteratureResult:
        """Search each switched-on service (or the ones named) once; each run on its own."""
        from monitor.tracking.literature import LiteratureSearch

        lit = self.settings.literature
        for s in sources:
            if s not in SERVICES:
                raise UserError(f"unknown literature service {s!r}; known: {', '.join(SERVICES)}")
        chosen = list(sources) or [s for s in SERVICES if getattr(lit, s)]
        factory = self.literature_factory or (lambda name: make_client(self.settings, name))
        runs = []
        for name in chosen:
            client = factory(name)
            try:
                search = LiteratureSearch(
                    self.database,
                    client,
                    terms_per_request=lit.terms_per_request,
                    overlap_days=lit.overlap_days,
                    now=self.now,
                )
                runs.append(search.run(should_stop))
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
            if should_stop():
                break
        return LiteratureResult(runs)

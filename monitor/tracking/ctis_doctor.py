"""`ctmonitor doctor`'s probe of EU CTIS, as it probes ClinicalTrials.gov: each search
counted (a search that finds nothing, or more than CTIS returns, is said), and one listed
trial read in full, decoded and classified, so a change in CTIS's answers shows before a
poll meets it. A few requests; no database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor.core import ctis
from monitor.core.classify import Classifier
from monitor.registry.answers import ApiError
from monitor.registry.ctis import CtisClient, IncompleteSearch, TrialUnavailable
from monitor.tracking.doctor import Check


def probe_ctis(
    client: CtisClient, settings: Any, classifier: Classifier, tick: Callable[[str], None] | None = None
) -> list[Check]:
    """The checks of the CTIS probe (needed: CTIS is polled when it is switched on)."""
    cfg = settings.ctis
    counts: dict[str, int] = {}
    first: str | None = None
    try:
        for search in cfg.searches:
            page = next(client.search({"containAll": search}))
            counts[search] = page.total_records
            if first is None and page.trials:
                first = page.trials[0].number
            if tick:
                tick(f"CTIS: {search}")
    except (ApiError, StopIteration) as exc:
        if isinstance(exc, IncompleteSearch):
            return [Check("EU CTIS", False, str(exc))]
        return [Check("EU CTIS", False, f"{cfg.base_url} did not answer a search: {exc}")]
    listed = ", ".join(f"“{s}” {n}" for s, n in counts.items())
    checks = [Check("EU CTIS searches", True, f"{cfg.base_url}: {listed}")]
    empty = [s for s, n in counts.items() if n == 0]
    if empty:
        checks.append(Check("EU CTIS searches", False, f"find nothing: {', '.join(empty)}", needed=False))
    over = [s for s, n in counts.items() if n > 2 * cfg.result_cap]
    if over:
        narrow = f"more than CTIS returns; narrow: {', '.join(over)}"
        checks.append(Check("EU CTIS searches", False, narrow))
    if first is None:
        return checks
    try:
        record = client.retrieve(first)
        study = ctis.from_bytes(record.raw)
    except TrialUnavailable as exc:
        checks.append(Check("EU CTIS record", False, str(exc), needed=False))
        return checks
    except (ApiError, ctis.CtisRecordError) as exc:
        checks.append(Check("EU CTIS record", False, f"{first}: {exc}"))
        return checks
    label = classifier.classify(study)
    status = study.registry_status or "no public status"
    checks.append(
        Check(
            "EU CTIS record",
            study.overall_status is not None,
            f"{first} read and decoded ({status}; {'in scope' if label.in_scope else 'out of scope'})",
        )
    )
    return checks

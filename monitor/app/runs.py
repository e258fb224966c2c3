"""Results of the use cases that change the database: poll, digests, backfill, reclassify,
release. Each says whether the work succeeded, in words and as JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from monitor.core.describe import KIND_LABELS, count
from monitor.core.domain import JobOutcome, PollSummary, RunOutcome


def _import_text(s: PollSummary) -> str:
    """The paragraph an ICTRP import ends with."""
    head = f"ICTRP import #{s.run_id}" + (
        f" FAILED: {s.error}." if s.outcome == RunOutcome.FAILED else " done."
    )
    return (
        f"{head} {s.expected} trials in the file, {s.fetched} kept (in scope, or already tracked; "
        "trials of ClinicalTrials.gov and CTIS come from those registries, and other registers' "
        "numbers ctmonitor does not know yet are skipped); "
        f"{s.new_studies} new, {s.changed_studies} changed; {count(s.events, 'event')}; {s.seconds:.1f}s."
    )


def summary_text(s: PollSummary) -> str:
    """The one paragraph a poll ends with."""
    if s.outcome == RunOutcome.UNCHANGED:
        return (
            f"Poll #{s.run_id}: the registry's data has not changed since the last poll "
            f"(data timestamp {s.data_timestamp}); {s.requests} request, {s.seconds:.1f}s."
        )
    if s.mode == "ictrp-import":
        return _import_text(s)
    ctis = s.mode.startswith("ctis-")
    head = (
        f"EU CTIS poll #{s.run_id} ({s.mode.removeprefix('ctis-')})"
        if ctis
        else f"Poll #{s.run_id} ({s.mode})"
    )
    if s.outcome == RunOutcome.FAILED:
        head += f" FAILED: {s.error}."
    elif s.outcome == RunOutcome.STOPPED:
        head += f" STOPPED: {s.error}."
    else:
        head += " done."
    kinds = ", ".join(
        f"{KIND_LABELS.get(k, k).lower()} {n}"
        for k, n in sorted(s.events_by_kind.items(), key=lambda kv: -kv[1])
    )
    fetched = (
        f" {s.expected} trials listed, {s.fetched} read in full (new, or updated since they were read)"
        if ctis
        else f" Fetched {s.fetched} of {s.expected} records the registry reported"
    )
    body = (
        f"{fetched}; {s.new_studies} new studies, "
        f"{s.changed_studies} changed; {count(s.events, 'event')}"
        + (f" ({kinds})" if kinds else "")
        + f"; {s.requests} requests in {s.seconds:.1f}s."
    )
    if s.baselined:
        body += (
            f" {s.baselined} studies gained their eligibility, outcomes and publications as a baseline "
            "(no events: their earlier records were fetched without them; changes from now on are tracked)."
        )
    if s.held:
        body += (
            " An unusually large share of studies changed at once (with those of any failed poll since the "
            "last successful one), so these events are HELD for review: "
            "see `ctmonitor events --held`, then `ctmonitor release`."
        )
    if s.outcome == RunOutcome.FAILED:
        body += " What was stored before the failure is consistent; the next poll covers the rest."
    elif s.outcome == RunOutcome.STOPPED:
        body += " Every page stored is whole."
    return head + body


@dataclass(frozen=True)
class PollResult:
    summary: PollSummary

    @property
    def ok(self) -> bool:
        return self.summary.outcome not in (RunOutcome.FAILED, RunOutcome.STOPPED)

    @property
    def stopped(self) -> bool:
        return self.summary.outcome == RunOutcome.STOPPED

    def text(self) -> str:
        return summary_text(self.summary)

    def job_outcome(self) -> JobOutcome:
        """The service's word for this poll: a stop request (SIGTERM) is not a failure; the
        next poll covers the rest."""
        return JobOutcome.STOPPED if self.stopped else JobOutcome.OK if self.ok else JobOutcome.FAILED

    def job_detail(self) -> str:
        """What the service's job table records for this poll."""
        s = self.summary
        if s.outcome == RunOutcome.FAILED:
            return f"run #{s.run_id}: {s.error}"
        detail = f"run #{s.run_id} {s.mode}: {s.events} events, {s.fetched} fetched"
        return f"{detail}; {s.error}" if s.outcome == RunOutcome.STOPPED else detail

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self.summary), "events": self.summary.events}


@dataclass(frozen=True)
class DigestResult:
    """One outcome per subscriber (delivery.Outcome): sent, previewed, nothing due or failed."""

    outcomes: list[Any]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed(self) -> list[Any]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def sent(self) -> int:
        return sum(o.status == "sent" for o in self.outcomes)

    def text(self) -> str:
        return "\n".join(o.line() for o in self.outcomes)

    def job_outcome(self) -> JobOutcome:
        return JobOutcome.OK if self.ok else JobOutcome.FAILED

    def job_detail(self) -> str:
        if self.failed:
            return "; ".join(f"{o.subscriber}: {o.error}" for o in self.failed)
        return f"{self.sent} digests sent"

    def to_json(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(o) for o in self.outcomes]


@dataclass(frozen=True)
class BackfillResult:
    """A backfill run (backfill.BackfillSummary), per study and in total."""

    summary: Any

    @property
    def ok(self) -> bool:
        return bool(self.summary.ok)

    @property
    def job_failed(self) -> bool:
        """For the service: a stop request (SIGTERM) is not a failure; the registry withdrawing
        the endpoint, not answering, or refusing a study is, so that `status` shows it."""
        s = self.summary
        interrupted = s.stopped == "asked to stop"
        return s.count("failed") > 0 or (s.stopped is not None and not interrupted)

    def job_outcome(self) -> JobOutcome:
        return JobOutcome.FAILED if self.job_failed else JobOutcome.OK

    def text(self) -> str:
        lines = []
        for st in self.summary.studies:
            if st.outcome in ("failed", "empty", "skipped"):
                lines.append(f"{st.nct_id}: {st.outcome}: {st.detail}")
            else:
                lines.append(
                    f"{st.nct_id}: {st.outcome}: {st.versions_stored} of {st.versions_listed} registry "
                    f"versions stored, {st.events} changes"
                )
        lines.append(self.summary.text())
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return self.summary.to_json()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ReclassifyResult:
    relabelled: int
    moved: int
    ok: bool = True

    def text(self) -> str:
        if not self.relabelled:
            return "every study is already labelled with the current vocabulary and overrides"
        return f"relabelled {count(self.relabelled, 'study')}; {self.moved} moved in or out of scope"

    def to_json(self) -> dict[str, Any]:
        return {"relabelled": self.relabelled, "moved_scope": self.moved}


@dataclass(frozen=True)
class ReleaseResult:
    released: int
    ok: bool = True

    def text(self) -> str:
        return f"released {count(self.released, 'event')}" if self.released else "no held events to release"

    def to_json(self) -> dict[str, Any]:
        return {"released": self.released}

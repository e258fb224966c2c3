"""Results that describe the database as it is: status, the change log, the landscape,
and a classification of records on file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor.core.describe import KIND_LABELS, change_text, count, phases_label, status_label, targets_label
from monitor.core.literature import SERVICES
from monitor.core.registrations import Registration, registry_name, registry_of
from monitor.core.summary import registrations_of, summary
from monitor.store import SUMMARY_COLUMNS

RUN_FIELDS = (
    "id",
    "mode",
    "source",
    "outcome",
    "started_at",
    "finished_at",
    "window_start",
    "data_timestamp",
    "requests",
    "fetched",
    "expected",
    "new_studies",
    "changed_studies",
    "events",
    "held",
    "error",
)


def run_dict(r: Any) -> dict[str, Any]:
    """A poll run (models.PollRun) as JSON."""
    return {k: getattr(r, k) for k in RUN_FIELDS}


def event_dict(e: Any) -> dict[str, Any]:
    """A stored change (models.EventRow) as JSON, with its sentence."""
    return {
        "id": e.id,
        "nct_id": e.nct_id,
        "kind": e.kind,
        "field": e.field,
        "item": e.item_key or None,
        "before": e.before,
        "after": e.after,
        "importance": e.importance,
        "registry_date": e.registry_date,
        "detected_at": e.detected_at,
        "run_id": e.run_id,
        "origin": e.origin,
        # where the change was seen: the registry of the study's registration, or the
        # literature service that found a paper (origin pubmed, europepmc)
        "registry": registry_of(e.nct_id),
        "source": e.origin if e.origin in SERVICES else registry_of(e.nct_id),
        "held": e.held,
        "text": change_text(e.kind, e.field, e.before, e.after),
    }


def study_dict(r: Any) -> dict[str, Any]:
    """A tracked study's summary columns (models.StudyRow) as JSON, with its review and
    curated marks."""
    classification = r.classification or {}
    return summary_dict(r, classification.get("review", []), classification.get("curated", []))


def _columns(r: Any, fields: Sequence[str] | None = None) -> dict[str, Any]:
    """A row's summary columns by name: a store.study_summaries row's values zipped with its
    column names (`fields`: the result's keys, read once for every row; a light row's
    attributes are read one by one in Python, ten times a dict's cost, and the landscape
    reads every tracked study's), or a StudyRow's attributes."""
    if fields is not None:
        given = dict(zip(fields, r, strict=True))
        if tuple(fields) == SUMMARY_COLUMNS:
            return given  # exactly the summary columns (a landscape batch): nothing to pick
        return {k: given.get(k) for k in SUMMARY_COLUMNS}
    return {k: getattr(r, k, None) for k in SUMMARY_COLUMNS}


def summary_dict(
    r: Any,
    review: list[str] | None = None,
    curated: list[str] | None = None,
    *,
    fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The summary columns of a StudyRow or a store.study_summaries row as JSON; review and
    curated come from the classification, where the caller has it; `fields`, a light row's
    column names (`row._fields`), read once by a caller of many rows."""
    out = summary(_columns(r, fields if fields is not None else getattr(r, "_fields", None)))
    out["review"], out["curated"] = review or [], curated or []
    return out


def row_registrations(r: Any) -> list[Registration]:
    """A studies row's registrations: its own first, then the rest of its trial's (or, alone,
    those its record names)."""
    return registrations_of(_columns(r))


@dataclass(frozen=True)
class StatusResult:
    data: dict[str, Any]
    last_ok: dict[str, Any] | None
    timezone: str
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return self.data

    def text(self) -> str:
        data, last_ok = self.data, self.last_ok
        totals, held = data["studies"], data["held_events"]
        lines = [f"Database: {data['database']}"]
        if last_ok:
            lines.append(
                f"Last successful ClinicalTrials.gov poll: #{last_ok['id']} at "
                f"{last_ok['finished_at']:%Y-%m-%d %H:%M} UTC; "
                f"registry data as of {last_ok['data_timestamp']}"
            )
        else:
            lines.append("No successful poll yet: run `ctmonitor poll`.")
        lines.append(
            f"Studies: {totals['tracked']} tracked ({totals['in_query']} in the watch queries, "
            f"{totals['left_query']} followed by id after leaving them), {totals['gone']} gone from the "
            f"registry, {totals['merged']} renumbered"
        )
        regs = data.get("registries") or {}
        for r in regs.get("polls", []):  # the other registries' freshness, beside ClinicalTrials.gov's
            lines.append(
                f"Last successful {r['what']}: #{r['id']} at {r['finished_at']:%Y-%m-%d %H:%M} UTC"
                + (f", from {r['source']}" if r.get("source") else "")
            )
        on = [(registry_name(k), n) for k, n in regs.get("tracked", {}).items()]
        if len(on) > 1:
            lines.append(
                "By registry: "
                + ", ".join(f"{n} on {name}" for name, n in sorted(on, key=lambda kv: (-kv[1], kv[0])))
                + f"; {regs['trials']} trials once registrations that name each other are joined"
            )
        if held:
            lines.append(
                f"HELD: {held} events wait for review (`ctmonitor events --held`, `ctmonitor release`)"
            )
        bf = data["backfill"]
        if any(bf[k] for k in ("done", "empty", "failed", "running")) or (last_ok and bf["waiting"]):
            line = (
                f"Registry histories: {bf['done']} backfilled, {bf['empty']} with none listed, "
                f"{bf['failed']} failed, {bf['waiting']} in scope waiting (`ctmonitor backfill`)"
            )
            if bf["last_failure"]:
                line += f"\n  last failure: {bf['last_failure']}"
            lines.append(line)
        if data.get("literature"):
            lines.append("Literature searches (`ctmonitor literature`):")
            for r in data["literature"]:
                line = (
                    f"  {r['started_at']:%Y-%m-%d %H:%M}  {r['source']:<10} {r['outcome']:<8} "
                    f"{r['studies']} studies, {r['linked']} new links, {r['events']} told, "
                    f"{r['requests']} requests"
                )
                lines.append(line + (f"\n    {r['error']}" if r["error"] else ""))
        if data["runs"]:
            lines.append("Recent polls:")
            for r in data["runs"]:
                line = (
                    f"  #{r['id']:<4} {r['started_at']:%Y-%m-%d %H:%M}  {r['mode']:<16} {r['outcome']:<9} "
                    f"fetched {r['fetched']}/{r['expected']}  new {r['new_studies']}  "
                    f"changed {r['changed_studies']}  events {r['events']}  requests {r['requests']}"
                )
                if r.get("source"):
                    line += f"\n         read from {r['source']}"
                if r["held"]:
                    line += "  HELD"
                if r["error"]:
                    line += f"\n         error: {r['error']}"
                lines.append(line)
        if data["jobs"]:
            lines.append(f"Service jobs (`ctmonitor run`, time zone {self.timezone}):")
            for j in data["jobs"]:
                nxt = f"next {j['next_run']:%Y-%m-%d %H:%M %Z}" if j["next_run"] else "off"
                last = (
                    f"last {j['last_started']:%Y-%m-%d %H:%M} UTC {j['last_outcome']}"
                    if j["last_started"]
                    else "never run"
                )
                line = f"  {j['job']:<8} {nxt}; {last}"
                if j["failures_in_a_row"]:
                    line += f"; {j['failures_in_a_row']} failures in a row: {j['last_detail']}"
                lines.append(line)
        if data["subscribers"]:
            lines.append("Digests:")
            for sub in data["subscribers"]:
                last = (
                    f"last sent {sub['last_sent_at']:%Y-%m-%d %H:%M}" if sub["last_sent_at"] else "never sent"
                )
                state = "" if sub.get("status", "active") == "active" else f" [{sub['status']}]"
                via = "" if sub.get("channel", "e-mail") == "e-mail" else f" via {sub['channel']}"
                line = (
                    f"  {sub['name']:<20}{state}{via} {last}; "
                    f"{sub['pending']} changes not yet sent or filtered out"
                )
                if sub["last_failure"]:
                    when = f"{sub['last_failure_at']:%Y-%m-%d %H:%M}"
                    line += (
                        f"\n    LAST ATTEMPT FAILED {when}: {sub['last_failure']} (the changes stay pending)"
                    )
                lines.append(line)
        return "\n".join(lines)


def _label(e: dict[str, Any]) -> str:
    return e.get("label") or KIND_LABELS.get(e["kind"], e["kind"])


@dataclass(frozen=True)
class EventsResult:
    rows: list[dict[str, Any]]
    ok: bool = True

    def to_json(self) -> list[dict[str, Any]]:
        return self.rows

    def text(self) -> str:
        if not self.rows:
            return "No events match."
        return "\n".join(
            f"{e['detected_at']:%Y-%m-%d}  {e['nct_id']}  {_label(e)}: "
            f"{e['text']}  (registry {e['registry_date'] or '?'}"
            + (", registry history" if e["origin"] == "backfill" else "")
            + ")"
            + (" [HELD]" if e["held"] else "")
            for e in self.rows
        )


@dataclass(frozen=True)
class StudiesResult:
    rows: list[dict[str, Any]]
    empty_in: str = ""  # the database read, when it holds no studies at all
    ok: bool = True

    def to_json(self) -> list[dict[str, Any]]:
        return self.rows

    def text(self) -> str:
        if not self.rows:
            if self.empty_in:
                return f"No studies yet: {self.empty_in} holds none (`ctmonitor poll` fills it)."
            return "No studies match."
        lines = []
        for d in self.rows:
            labels = " · ".join(
                x
                for x in (
                    d["modality"],
                    targets_label(d["targets"], "target undisclosed"),
                    d["cell_source"],
                    ", ".join(d["indications"]),
                )
                if x
            )
            flags = (" [REVIEW: " + "; ".join(d["review"]) + "]" if d["needs_review"] else "") + (
                " [curated: " + ", ".join(d["curated"]) + "]" if d["curated"] else ""
            )
            scope = "" if d["in_scope"] else f" [out of scope: {d['scope_reason']}]"
            lines.append(
                f"{d['nct_id']}  {status_label(d['status']):<24} {phases_label(d['phases']):<16} {labels}"
                f"{scope}{flags}\n             {d['title']} — {d['sponsor'] or 'no sponsor'}"
            )
        lines.append(count(len(self.rows), "study"))
        return "\n".join(lines)


def classification_text(nct: str, title: str, c: Any) -> str:
    lines = [f"{nct}  {title}"]
    scope = "IN SCOPE" if c.in_scope else f"out of scope: {c.scope_reason}"
    lines.append(f"  scope:       {scope}" + (f"   [review: {'; '.join(c.review)}]" if c.review else ""))
    conf = c.confidence

    def row(name: str, value: str, key: str) -> str:
        mark = f" ({conf[key]})" if key in conf else ""
        return f"  {name:<12} {value}{mark}"

    lines.append(row("modality:", c.modality or "none", "modality"))
    lines.append(row("targets:", c.target_label, "targets"))
    lines.append(row("cell source:", c.cell_source or "not stated", "cell_source"))
    if c.platform:
        lines.append(row("platform:", c.platform, "platform"))
    lines.append(row("product:", c.product or "-", "product"))
    lines.append(row("indications:", ", ".join(c.indications) or "none", "indications"))
    for e in c.evidence:
        text = e.text if len(e.text) <= 90 else e.text[:87] + "..."
        lines.append(f"    evidence  {e.label}={e.value}  [{e.field}] {text}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ClassifyResult:
    """Records on file (normalize.Study) with their classification."""

    items: list[tuple[Any, Any]]
    ok: bool = True

    def to_json(self) -> list[dict[str, Any]]:
        return [{"nct_id": st.nct_id, "title": st.title, **cl.to_dict()} for st, cl in self.items]

    def text(self) -> str:
        return "\n\n".join(classification_text(st.nct_id, st.title, cl) for st, cl in self.items)

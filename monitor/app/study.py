"""Results about one study: its timeline (statuses, changes, versions) and a comparison of
two of its versions. The command line prints them; the web renders the same data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.app.style import Style, plain
from monitor.core.describe import (
    SITE_KINDS,
    change_edits,
    change_lead,
    change_parts,
    site_counts,
    status_label,
)

SOURCE_LABELS = {"backfill": "registry history", "registry-list": "registry version list"}


def history_lines(h: dict[str, Any], style: Style = plain) -> list[str]:
    """A study's timeline as `ctmonitor history` prints it."""
    lines = [style(f"{h['nct_id']} · {h['title'] or '(no title)'}", bold=True)]
    now = f"Now: {status_label(h['status'])}"
    if h["merged_into"]:
        now += f" · renumbered, now {h['merged_into']}"
    if h["gone"]:
        now += " · no longer in the registry"
    if h["first_posted"]:
        now += f" · first posted {h['first_posted']}"
    now += f" · tracked since {h['tracked_since']}"
    lines.append(now)
    bf = h["backfill"]
    if bf is None:
        lines.append(
            # first_polled is the registry date of the first version we polled, not the poll's date
            f"Versions before {h['first_polled']} (the one our first poll saw): not backfilled yet "
            f"(`ctmonitor backfill {h['nct_id']}` fetches the registry's own history)."
        )
    elif bf["status"] == "done" and not bf["registry_versions"]:  # EU CTIS: read from the record
        lines.append(f"Registry history: {bf['events']} changes read from the registry's record.")
    elif bf["status"] == "done":
        lines.append(
            f"Registry history: backfilled ({bf['registry_versions']} versions listed, "
            f"0-{bf['stored_through']} stored)."
        )
    else:
        lines.append(f"Registry history: {bf['status']}" + (f" ({bf['note']})" if bf["note"] else "") + ".")
    lines += ["", style("Status", bold=True)]
    width = max([len(status_label(p["status"])) for p in h["statuses"]] + [10])
    rows = []
    for p in h["statuses"]:
        # A first status seen after the registration held by that date; it may be older.
        since, at_least = ("since", "") if p["began_known"] else ("by   ", "≥")
        if p["days"] is None:
            span = ""
        elif p["ended"]:
            span = f"{at_least}{p['days']} days"
        else:
            span = f"{at_least}{p['days']} days so far"
        rows.append(
            (since, p["began"], status_label(p["status"]), span, SOURCE_LABELS.get(p["source"], "our poll"))
        )
    span_width = max([len(r[3]) for r in rows] + [15])
    for since, began, label, span, source in rows:
        lines.append(f"  {since} {began}  {label:<{width}}  {span:<{span_width}} ({source})")
    lines += [
        "",
        style("Changes, oldest first", bold=True)
        + "  (R: registry history, P: our polls, L: the literature)",
    ]
    if not h["changes"]:
        lines.append("  none recorded")
    for ch in h["changes"]:
        mark = {"backfill": "R", "pubmed": "L", "europepmc": "L"}.get(ch["origin"], "P")
        held = style(" [HELD]", fg="yellow") if ch["held"] else ""
        # The poll's "new study" is where our own record starts, not the registration.
        label = "First polled" if ch["kind"] == "new_study" else ch["label"]
        lines.append(f"  {ch['date']}  {mark}  {label}: {ch['text']}{held}")
    versions = " · ".join(f"{v['label']} {v['date']}" for v in h["versions"])
    lines += ["", f"Versions (for `ctmonitor diff --from/--to`): {versions}"]
    return lines


def marked(pieces: list[tuple[str, str]], style: Style = plain) -> str:
    """Word pieces as a terminal shows them: removed words [-like this-], added ones
    {+like this+} (the marks wdiff uses, readable without colour), coloured when styled."""
    out = []
    for op, text in pieces:
        if op == "del":
            out.append(style(f"[-{text}-]", fg="red"))
        elif op == "ins":
            out.append(style(f"{{+{text}+}}", fg="green"))
        else:
            out.append(text)
    return "".join(out)


@dataclass(frozen=True)
class HistoryResult:
    """One timeline per study asked for (JSON: one object, or a list for several)."""

    studies: list[dict[str, Any]]
    ok: bool = True

    def to_json(self) -> Any:
        return self.studies if len(self.studies) > 1 else self.studies[0]

    def text(self, style: Style = plain) -> str:
        return "\n\n".join("\n".join(history_lines(h, style)) for h in self.studies)


@dataclass(frozen=True)
class CompareResult:
    """Two versions of a study (timeline.Version), older first, and what changed between them."""

    nct_id: str
    old: Any
    new: Any
    comparison: Any  # timeline.Comparison
    versions: int
    all_sites: bool = False  # list every site change (default: a summary per country)
    ok: bool = True

    @property
    def same(self) -> bool:
        return bool(self.old.seq == self.new.seq)

    def to_json(self) -> dict[str, Any]:
        return self.comparison.to_json()  # type: ignore[no-any-return]

    def text(self, style: Style = plain) -> str:
        n = len(self.comparison.changes)
        head = f"{self.nct_id}: {self.old.describe()} → {self.new.describe()}: "
        if self.same:
            return head + (
                "the same version; nothing to compare" if self.versions > 1 else "only one version stored"
            )
        lines = [head + (f"{n} change{'s' if n != 1 else ''}" if n else "no change in the tracked fields")]
        changes = self.comparison.changes
        site_changes = [ch for ch in changes if ch.kind.value in SITE_KINDS]
        if not self.all_sites and len(site_changes) > SITE_LINES:
            changes = [ch for ch in changes if ch.kind.value not in SITE_KINDS]
        else:
            site_changes = []
        for ch in changes:
            what, before, after = change_parts(ch.kind.value, ch.field, ch.before, ch.after)
            edits = change_edits(ch.kind.value, ch.field, ch.before, ch.after)
            if edits:
                lines.append(f"  {what}: {change_lead(ch.kind.value, ch.field, ch.before, ch.after)}")
                lines += [f"    {label}: {marked(pieces, style)}" for label, pieces in edits]
                continue
            if before is not None and after is not None:
                text = f"{style(before, fg='red')} → {style(after, fg='green')}"
            elif after is not None:
                text = style(f"+ {after}", fg="green")
            elif before is not None:
                text = style(f"- {before}", fg="red")
            else:
                text = ""
            lines.append(f"  {what}: {text}")
        if site_changes:
            lines.append(f"  Sites ({len(site_changes)} changes; --sites lists each):")
            lines += [f"    {line}" for line in site_summary(site_changes)]
        return "\n".join(lines)


SITE_LINES = 8  # more site changes than this are summarised per country


def site_summary(changes: list[Any]) -> list[str]:
    """Site changes counted per country, the largest first: "Germany: 3 added, 2 now
    Recruiting, 1 removed" (what a coordinator scans for; `--sites` lists each)."""
    counts = site_counts((ch.kind.value, ch.key, ch.before, ch.after) for ch in changes)
    return [f"{country}: {said}" for country, said in counts]

"""Change events -> the content of one subscriber's digest. Pure: no database, no SMTP, no templates.

Decides what a reader sees and in what order: sections by importance, one block per
study, the size cap (most important first; the rest counted, never silently dropped),
what counts as "new" (judged by the registry's first-posted date, never by when
ctmonitor first saw a study), the completeness banner, and the subject line.
`render.py` turns a Digest into HTML and text; `delivery.py` feeds it from the database.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.core import literature
from monitor.core.describe import (
    KIND_LABELS,
    SITE_KINDS,
    change_edits,
    change_lead,
    change_text,
    phases_label,
    site_counts,
    status_label,
    targets_label,
)
from monitor.core.digest_views import (
    ChangeLine,
    Digest,
    DigestOptions,
    EventView,
    Health,
    Landscape,
    Section,
    StudyBlock,
    StudyView,
)
from monitor.core.news import NEW_STUDY, Arrival, arrival_label, arrival_note, registry_day
from monitor.core.registrations import parse_stored, registry_name, registry_of, study_link
from monitor.core.results import results_url

# Sections in the order a reader acts on them; every event kind belongs to exactly one.
SECTIONS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("new", "New studies", frozenset({"new_study", "entered_scope"})),
    # A study registered before the period that the watch reaches now (core.news): its
    # new-study event goes here, by its arrival rather than its kind.
    ("found", "Newly found (registered earlier)", frozenset()),
    (
        "status",
        "Status changes",
        frozenset(
            {
                "status_change",
                "why_stopped_change",
                "gone_from_registry",
                "back_in_registry",
                "id_changed",
                "status_across_registries",
            }
        ),
    ),
    (
        "results",
        "Results and publications",
        frozenset(
            {
                "results_posted",
                "results_updated",
                "results_removed",
                "publication_found",
                "publication_added",
                "publication_removed",
            }
        ),
    ),
    (
        "timeline",
        "Enrollment, dates and phase",
        frozenset({"enrollment_change", "date_change", "phase_change"}),
    ),
    (
        "protocol",
        "Eligibility, outcomes and design",
        frozenset(
            {
                "eligibility_change",
                "outcome_added",
                "outcome_removed",
                "outcome_change",
                "design_change",
                "modification",
            }
        ),
    ),
    ("sites", "Sites", frozenset({"site_added", "site_removed", "site_status_change"})),
    (
        "design",
        "Conditions, interventions, sponsor and titles",
        frozenset(
            {
                "condition_added",
                "condition_removed",
                "intervention_added",
                "intervention_removed",
                "arm_added",
                "arm_removed",
                "sponsor_change",
                "title_change",
            }
        ),
    ),
    (
        "leaving",
        "Leaving scope or the watch queries",
        frozenset({"left_scope", "left_query", "rejoined_query"}),
    ),
)
SECTION_OF = {kind: key for key, _, kinds in SECTIONS for kind in kinds}
SECTION_RANK = {key: i for i, (key, _, _) in enumerate(SECTIONS)}
SECTION_TITLE = {key: title for key, title, _ in SECTIONS}


def section_of(e: EventView) -> str:
    """The section an event reads in: by its kind, a found study's arrival apart."""
    if e.kind == NEW_STUDY and e.arrival == Arrival.FOUND:
        return "found"
    return SECTION_OF.get(e.kind, "design")


STATUS_HEADLINES = {
    "RECRUITING": "Now recruiting",
    "NOT_YET_RECRUITING": "Not yet recruiting",
    "ENROLLING_BY_INVITATION": "Enrolling by invitation",
    "ACTIVE_NOT_RECRUITING": "Recruitment closed",
    "SUSPENDED": "Suspended",
    "TERMINATED": "Terminated",
    "WITHDRAWN": "Withdrawn",
    "COMPLETED": "Completed",
    "UNKNOWN": "Status now unknown",
}
TITLE_MAX = 160


# -- pieces --------------------------------------------------------------------------


def _first_posted(event: EventView, study: StudyView | None) -> str | None:
    after = event.after if isinstance(event.after, dict) else {}
    return (study.first_post_date if study else None) or after.get("first_posted")


def _title(text: str | None) -> str:
    text = (text or "").strip() or "(no title)"
    return text if len(text) <= TITLE_MAX else text[: TITLE_MAX - 1].rstrip() + "…"


def study_labels(s: StudyView) -> str:
    parts = [s.modality or "modality not stated"]
    if s.targets:
        parts.append(targets_label(s.targets))
    if s.cell_source:
        parts.append(s.cell_source)
    if s.indications:
        parts.append(", ".join(s.indications))
    if s.in_scope is False:
        parts.append("out of scope")
    return " · ".join(parts)


def study_block(s: StudyView, opts: DigestOptions) -> StudyBlock:
    url = study_link(opts.study_url, s.nct_id)
    also = tuple(
        (r.registry_name, r.id, r.url) for r in parse_stored(s.trial_registrations or ()) if r.id != s.nct_id
    )
    return StudyBlock(
        nct_id=s.nct_id,
        url=url,
        history_url=url + ("&" if "?" in url else "?") + "tab=history",
        title=_title(s.brief_title),
        labels=study_labels(s),
        sponsor=s.lead_sponsor or "sponsor not given",
        phase=phases_label(s.phases),
        status=status_label(s.overall_status),
        also=also,
    )


def _from(line: ChangeLine, e: EventView, block: StudyBlock) -> ChangeLine:
    """The line, naming its registration when the trial is registered more than once."""
    if not block.also or e.kind == "status_across_registries":
        return line
    return dataclasses.replace(line, source=f"{registry_name(registry_of(e.nct_id))} {e.nct_id}")


def _unknown_study(nct_id: str) -> StudyView:
    return StudyView(nct_id, None, None, (), None, None, (), (), None, None, None)


def change_line(e: EventView, study: StudyView | None, block: StudyBlock) -> ChangeLine:
    label = KIND_LABELS.get(e.kind, e.kind)
    text = change_text(e.kind, e.field, e.before, e.after)
    if e.kind == NEW_STUDY:
        how = Arrival(e.arrival) if e.arrival else Arrival.REGISTERED
        label = arrival_label(how) or label
        if note := arrival_note(how, _first_posted(e, study)):
            text = note if not text else f"{text}; {note}"
    elif e.kind == "status_change":
        after = e.after.get("status") if isinstance(e.after, dict) else e.after
        label = STATUS_HEADLINES.get(after or "", "Status")
    elif e.kind == "why_stopped_change":
        label = "Reason given"
    compare = None
    old, new = e.versions
    if old is not None and new is not None:
        compare = f"{block.history_url}&a={old}&b={new}#version-content-panel"
    edits = tuple((what, tuple(pieces)) for what, pieces in change_edits(e.kind, e.field, e.before, e.after))
    lead = change_lead(e.kind, e.field, e.before, e.after) if edits else ""
    links: tuple[tuple[str, str], ...] = ()
    if e.kind == "publication_found" and isinstance(e.after, dict):
        links = tuple(
            (k, u) for k, u in literature.links(e.after) if k != "Europe PMC" or not e.after.get("pmid")
        )
    elif e.kind in ("results_posted", "results_updated"):
        links = (("Results", results_url(e.nct_id)),)
    return ChangeLine(e.kind, label, text, e.registry_date, e.importance, compare, edits, lead, links)


def sort_events(events: Iterable[EventView]) -> list[EventView]:
    """The events in the order a digest lists them (see `build_changes_digest`)."""
    return sorted(events, key=_sort_key)


def _sort_key(e: EventView) -> tuple[Any, ...]:
    # Most important first; within that, the reader's section order, newest registry date first.
    return (
        -e.importance,
        SECTION_RANK.get(section_of(e), 99),
        _neg_date(e.registry_date),
        e.id,
    )


_INVERT = str.maketrans("0123456789", "9876543210")


def _neg_date(value: str | None) -> str:
    # Sort newest first with an ascending sort: invert the digits.
    return (value or "0000").translate(_INVERT)


def _period_text(start: datetime | None, end: datetime) -> str:
    if start is None:
        return f"to {end:%d %b %Y}"
    if start.date() == end.date():  # "01 Dec 2026", not "01 Dec – 01 Dec 2026"
        return f"{end:%d %b %Y}"
    if start.year == end.year:
        return f"{start:%d %b} – {end:%d %b %Y}"
    return f"{start:%d %b %Y} – {end:%d %b %Y}"


def build_changes_digest(
    *,
    subscriber: str,
    events: Sequence[EventView],
    studies: dict[str, StudyView],
    period_start: datetime | None,
    now: datetime,
    health: Health,
    filters: str,
    opts: DigestOptions,
    max_items: int,
    sites_over: int | None = None,
    presorted: bool = False,
) -> Digest:
    """The weekly digest: every pending event for this subscriber, most important listed first.
    `presorted`: the events come in `sort_events` order already (a caller that builds the
    digest again with fewer items sorts them once).

    With `sites_over`, a study with more site changes than that shows them as one line
    counted per country (the report's long periods), not one line each.

    Every event passed in is accounted for: listed, or counted among the omitted (the
    size cap). The caller has already judged each new study's arrival (core.news) and
    left out what a reader is not told (a baseline poll's arrivals); it records all of
    them as delivered once the server accepts the message.

    Every number shown is what is listed under it: a section's count is the changes in
    it, each chip is a section's count, and the chips with "not listed" add up to every
    change passed in.
    """
    start = min((d for d in (period_start, *(e.detected_at for e in events)) if d is not None), default=None)
    listable = list(events) if presorted else sorted(events, key=_sort_key)
    listed, rest = listable[:max_items], listable[max_items:]

    # One block per trial (its registrations joined, core.trials), in the section of its
    # most important change (a status change and a date slip of one trial read together,
    # under "Status changes"); a change of a trial registered more than once names the
    # registration it came from.
    def trial(e: EventView) -> str:
        s = studies.get(e.nct_id)
        return s.trial if s is not None else e.nct_id

    home: dict[str, str] = {}
    for e in listed:  # sorted most important first
        home.setdefault(trial(e), section_of(e))
    blocks: dict[tuple[str, str], StudyBlock] = {}
    site_events: dict[str, list[EventView]] = {}
    for e in listed:
        if e.kind in SITE_KINDS:
            site_events.setdefault(e.nct_id, []).append(e)
    listed_in: Counter[str] = Counter(home[trial(e)] for e in listed)  # changes under each heading
    for e in sorted(listed, key=lambda e: (SECTION_RANK[home[trial(e)]], trial(e), e.id)):
        t = trial(e)
        key = home[t]
        study = studies.get(e.nct_id)
        block = blocks.get((key, t))
        if block is None:
            head = studies.get(t) or study or _unknown_study(t)
            block = blocks[(key, t)] = study_block(head, opts)
        sites = site_events.get(e.nct_id, [])
        if sites_over is not None and e.kind in SITE_KINDS and len(sites) > sites_over:
            if e is sites[0]:
                block.changes.append(_from(site_summary_line(sites), e, block))
            continue
        block.changes.append(_from(change_line(e, study, block), e, block))
    sections = []
    for key, title, _ in SECTIONS:
        mine = [b for (k, _), b in blocks.items() if k == key]
        if not mine:
            continue
        # Studies with the most important change first, then by id for a stable order.
        mine.sort(key=lambda b: (-max(c.importance for c in b.changes), b.nct_id))
        for b in mine:
            b.changes.sort(key=lambda c: (-c.importance, _neg_date(c.registry_date), c.kind, c.text))
        sections.append(Section(key, title, mine, listed_in[key]))

    counts = [(f"{SECTION_TITLE[k]} {listed_in[k]}", listed_in[k]) for k, _, _ in SECTIONS if listed_in[k]]
    if rest:
        counts.append((f"Not listed {len(rest)}", len(rest)))
    omitted_studies, omitted_more = _omitted_studies(rest, studies)
    omitted_kinds: Counter[str] = Counter(_omitted_label(e) for e in rest)
    omitted = sorted(omitted_kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    kind = "changes" if events else "nothing"
    subject = _changes_subject(opts.subject_prefix, events, start, now, health.warning(now) is not None)
    return Digest(
        subscriber=subscriber,
        kind=kind,
        subject=subject,
        period_start=start,
        period_end=now,
        sections=sections,
        counts=counts,
        events=len(events),
        listed=len(listed),
        omitted=omitted,
        health_summary=health.summary(),
        warning=health.warning(now),
        filters=filters,
        report_hint=opts.report_url,
        report_page_url=opts.report_page_url,
        listed_ids=frozenset(e.id for e in listed),
        all_ids=frozenset(e.id for e in events),
        omitted_studies=omitted_studies,
        omitted_more=omitted_more,
    )


def site_summary_line(events: Sequence[EventView]) -> ChangeLine:
    """Many site changes of one study as one line, counted per country, largest first:
    "32 changes: United States 30 now Completed; Germany 2 added"."""
    counts = site_counts((e.kind, e.item_key, e.before, e.after) for e in events)
    latest = max((e.registry_date or "" for e in events), default="") or None
    importance = max(e.importance for e in events)
    text = f"{len(events)} changes: " + "; ".join(f"{country} {said}" for country, said in counts)
    return ChangeLine("site_summary", "Sites", text, latest, importance)


OMITTED_LISTED = 40  # left-out studies named one line each before the rest are only counted
HEADLINE_MAX = 90


def _omitted_label(e: EventView) -> str:
    return arrival_label(Arrival(e.arrival)) or "" if e.arrival else KIND_LABELS.get(e.kind, e.kind)


def _omitted_studies(
    rest: Sequence[EventView], studies: dict[str, StudyView]
) -> tuple[list[tuple[str, str, int]], int]:
    """The studies whose changes the size cap left out, the first OMITTED_LISTED named: NCT
    id, the headline of the most important one (`rest` is sorted most important first), and
    how many changes; and how many more studies are only counted (their headlines are never
    written: a run for a thousand readers would write them a thousand times)."""
    first: dict[str, EventView] = {}
    count: Counter[str] = Counter()
    for e in rest:
        first.setdefault(e.nct_id, e)
        count[e.nct_id] += 1
    out = []
    for nct, e in list(first.items())[:OMITTED_LISTED]:
        study = studies.get(nct)
        block = study_block(study or _unknown_study(nct), DigestOptions())
        line = change_line(e, study, block)
        headline = f"{line.label}: {line.text}"
        if len(headline) > HEADLINE_MAX:
            headline = headline[: HEADLINE_MAX - 1].rstrip() + "…"
        out.append((nct, headline, count[nct]))
    return out, len(first) - len(out)


def _changes_subject(
    prefix: str, events: Sequence[EventView], start: datetime | None, end: datetime, warn: bool
) -> str:
    """New studies, status changes and results named, every other change summed: the
    numbers add up to the changes the digest accounts for."""
    new = sum(1 for e in events if section_of(e) == "new")
    status = sum(1 for e in events if e.kind == "status_change")
    results = sum(1 for e in events if e.kind == "results_posted")
    parts = []
    if new:
        parts.append(f"{new} new {'study' if new == 1 else 'studies'}")
    if status:
        parts.append(f"{status} status {'change' if status == 1 else 'changes'}")
    if results:
        parts.append(f"{results} with results posted")
    others = len(events) - new - status - results
    if others:
        parts.append(f"{others} other change{'s' if others != 1 else ''}")
    what = ", ".join(parts) if parts else "No changes"
    flag = " (poll problem: see top)" if warn else ""
    return f"{prefix} {what}{flag} · {_period_text(start, end)}".strip()


def _ranked(values: Iterable[str | None]) -> list[tuple[str, int]]:
    counts = Counter(v for v in values if v)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def build_landscape_digest(
    *,
    subscriber: str,
    studies: Sequence[StudyView],
    event_ids: Iterable[int],
    now: datetime,
    health: Health,
    filters: str,
    opts: DigestOptions,
    max_items: int,
    landscape_url: str = "",
) -> Digest:
    """A subscriber's first digest: the landscape they follow, and what was registered recently.

    It stands in for the backlog (a first sync makes every study "new" to ctmonitor, not
    to the world), which it accounts for without listing.
    """
    since = (now - timedelta(days=opts.new_within_days)).date()
    recent_rows = [s for s in studies if (d := registry_day(s.first_post_date)) is not None and d >= since]
    recent_rows.sort(key=lambda s: (_neg_date(s.first_post_date), s.nct_id))
    recent = []
    for s in recent_rows[:max_items]:
        block = study_block(s, opts)
        block.changes.append(
            ChangeLine("new_study", "Registered", f"first posted {s.first_post_date}", s.first_post_date, 3)
        )
        recent.append(block)
    indications = [i for s in studies for i in s.indications]
    landscape = Landscape(
        studies=len(studies),
        by_modality=_ranked(s.modality or "not stated" for s in studies),
        by_indication=_ranked(indications),
        by_status=_ranked(status_label(s.overall_status) for s in studies),
        recent_days=opts.new_within_days,
        recent=recent,
    )
    ids = frozenset(event_ids)
    n = len(studies)
    subject = (
        f"{opts.subject_prefix} Your starting picture: {n} {'study' if n == 1 else 'studies'} followed, "
        f"{len(recent_rows)} registered in the last {opts.new_within_days} days"
    ).strip()
    return Digest(
        subscriber=subscriber,
        kind="landscape",
        subject=subject,
        period_start=None,
        period_end=now,
        sections=[],
        counts=[],
        events=len(ids),
        listed=0,
        omitted=[],
        health_summary=health.summary(),
        warning=health.warning(now),
        filters=filters,
        report_hint=opts.report_url,
        report_page_url=opts.report_page_url,
        landscape=landscape,
        listed_ids=frozenset(),
        all_ids=ids,
        landscape_url=landscape_url,
    )

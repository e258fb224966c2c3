"""`ctmonitor feed`: the classified change stream as an Atom feed (RFC 4287), for feed readers.

One entry per study per poll that changed it (the events of one record version), so a
reader sees "KYSA-1: Recruiting -> Active, not recruiting; enrollment 20 -> 6" as one item.
What makes it safe to regenerate on every poll:

- entry ids are `urn:uuid:` UUIDv5 of (study, run, snapshot): the same change keeps its
  id in every run, so readers never show it twice; the feed id is derived the same way
  from the filters, so two feeds with different filters never collide;
- every timestamp comes from the database (when a change was detected, or released from
  review), none from the clock: with nothing new, the file is byte-for-byte the same;
- the XML is written by ElementTree, so registry text cannot break the markup.

Like the digests it leaves out events held for review, changes backfilled from the
registry's history (history, not news) and the bulk "new study" events of a first sync.
"""

from __future__ import annotations

import html
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor import store
from monitor.core.describe import KIND_LABELS, change_text, status_label, targets_label
from monitor.core.filters import StudyFilter
from monitor.core.news import arrival_label, arrival_note
from monitor.core.registrations import parse_stored, registry_name, registry_of, study_link
from monitor.store import Session

ATOM = "http://www.w3.org/2005/Atom"
_NS = uuid.UUID("8f4b9a52-3c1e-5d7a-9b61-2f0e4c8d1a37")  # ctmonitor's namespace for UUIDv5 ids
LEAVING = ("left_scope", "left_query")


def _stamp(t: datetime) -> str:
    """RFC 3339 in UTC (timestamps are stored as naive UTC)."""
    return t.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@dataclass(slots=True)
class Entry:
    id: str
    nct_id: str
    title: str
    link: str
    published: datetime
    updated: datetime
    changes: list[tuple[str, str]]  # (label, text), most important first
    study_line: str
    categories: list[str] = field(default_factory=list)

    def content_html(self) -> str:
        items = "".join(
            f"<li><b>{html.escape(label)}</b>: {html.escape(text)}</li>" for label, text in self.changes
        )
        return f"<ul>{items}</ul><p>{html.escape(self.study_line)}</p>"


@dataclass(slots=True)
class Feed:
    id: str
    title: str
    subtitle: str
    updated: datetime | None
    entries: list[Entry]


def feed_id(description: str, kinds: Sequence[str]) -> str:
    return "urn:uuid:" + str(uuid.uuid5(_NS, "feed|" + description + "|" + ",".join(sorted(kinds))))


def _entry_id(nct_id: str, run_id: int | None, seq: int | None, first_event: int) -> str:
    # Events without a snapshot (left the registry, relabelled) are keyed by their first event.
    key = f"{nct_id}|{run_id}|{seq}" if seq is not None else f"{nct_id}|{run_id}|event{first_event}"
    return "urn:uuid:" + str(uuid.uuid5(_NS, key))


def _study_line(row: Any) -> str:  # a study_summaries row
    labels = [
        x
        for x in (
            row.modality,
            targets_label(row.targets),
            ", ".join(row.indications),
        )
        if x
    ]
    line = " · ".join([*labels, f"now {status_label(row.overall_status)}"])
    # one trial, several registrations (core.trials): the entry names the others
    trial = parse_stored(getattr(row, "trial_registrations", None) or ())
    also = [f"{r.registry_name} {r.id}" for r in trial if r.id != row.nct_id]
    return line + (f" · also registered as {', '.join(also)}" if also else "")


def build(
    changes: Iterable[store.ReaderChange],
    flt: StudyFilter,
    *,
    study_url: str,
    limit: int,
) -> list[Entry]:
    """Group changes into entries (study x run x snapshot), keep those the filter follows,
    newest first. Only the `limit` entries kept are worded: a feed over a year of changes
    ranks thousands of groups and writes a hundred."""
    groups: dict[tuple[str, int | None, int | None, int | None], list[store.ReaderChange]] = {}
    for c in changes:
        e = c.event
        key = (e.nct_id, e.run_id, e.snapshot_seq, e.id if e.snapshot_seq is None else None)
        groups.setdefault(key, []).append(c)
    ranked: list[tuple[datetime, str, list[store.ReaderChange]]] = []
    for (nct, run_id, seq, _), group in groups.items():
        row = group[0].study
        evs = [c.event for c in group]
        if row is None or not flt.matches(row, leaving_scope=any(e.kind in LEAVING for e in evs)):
            continue
        updated = max(e.released_at or e.detected_at for e in evs)
        ranked.append((updated, _entry_id(nct, run_id, seq, min(e.id for e in evs)), group))
    ranked.sort(key=lambda x: (x[0], x[1]), reverse=True)
    return [_entry(entry_id, updated, group, study_url) for updated, entry_id, group in ranked[:limit]]


def _entry(entry_id: str, updated: datetime, group: list[store.ReaderChange], study_url: str) -> Entry:
    row = group[0].study
    nct = group[0].event.nct_id
    group.sort(key=lambda c: (-c.importance, c.event.id))
    evs = [c.event for c in group]
    changes = [_words(c, row) for c in group]
    head_label, head_text = changes[0]
    more = f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""
    name = row.brief_title or ""
    name = name if len(name) <= 90 else name[:89].rstrip() + "…"  # the change, not the title, matters
    where = "" if registry_of(nct) == "ctgov" else f"{registry_name(registry_of(nct))} "
    return Entry(
        id=entry_id,
        nct_id=nct,
        title=f"{where}{nct} · {name}: {head_label}: {head_text}{more}",
        link=study_link(study_url, nct),
        published=min(e.detected_at for e in evs),
        updated=updated,
        changes=changes,
        study_line=_study_line(row),
        categories=sorted({e.kind for e in evs} | {x for x in (row.modality,) if x}),
    )


def _words(c: store.ReaderChange, row: Any) -> tuple[str, str]:
    """A change's label and text; a new study's as core.news words its arrival."""
    e = c.event
    text = change_text(e.kind, e.field, e.before, e.after)
    label = arrival_label(c.arrival) or KIND_LABELS.get(e.kind, e.kind)
    if note := arrival_note(c.arrival, row.first_post_date):
        text = f"{text}; {note}" if text else note
    return label, text


def gather(
    session: Session,
    flt: StudyFilter,
    *,
    kinds: Sequence[str] = (),
    since: datetime | None = None,
    limit: int = 100,
    study_url: str,
) -> Feed:
    """The feed for these filters from the stored change log: the changes every surface
    shows for them (store.reader_changes), grouped into entries."""
    changes = list(
        store.reader_changes(
            session, store.ChangeScope(filter=flt, kinds=tuple(kinds), since=since), newest_first=False
        )
    )
    entries = build(changes, flt, study_url=study_url, limit=limit)
    description = flt.describe()
    kinds_text = ", ".join(KIND_LABELS.get(k, k) for k in kinds) if kinds else "All changes"
    if entries:
        updated: datetime | None = max(e.updated for e in entries)
    else:  # nothing yet: the last successful poll says how current the (empty) feed is
        last_ok = store.last_run(session, outcomes=store.SUCCESSFUL)
        updated = last_ok.finished_at if last_ok else None
    return Feed(
        id=feed_id(description, kinds),
        title=f"ctmonitor · {kinds_text} · {description}",
        subtitle="Changes to the registry records of " + description + ", as detected by ctmonitor.",
        updated=updated,
        entries=entries,
    )


def render(feed: Feed, *, self_url: str | None = None) -> bytes:
    """Atom XML (UTF-8) for the feed."""
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{ATOM}}}feed")
    sub(root, "id", feed.id)
    sub(root, "title", feed.title)
    sub(root, "subtitle", feed.subtitle)
    sub(root, "updated", _stamp(feed.updated or datetime(1970, 1, 1)))
    author = sub(root, "author")
    sub(author, "name", "ctmonitor")
    sub(root, "generator", "ctmonitor")
    if self_url:
        sub(root, "link", rel="self", href=self_url, type="application/atom+xml")
    for entry in feed.entries:
        el = sub(root, "entry")
        sub(el, "id", entry.id)
        sub(el, "title", entry.title)
        sub(el, "link", rel="alternate", href=entry.link, type="text/html")
        sub(el, "published", _stamp(entry.published))
        sub(el, "updated", _stamp(entry.updated))
        for term in entry.categories:
            sub(el, "category", term=term, label=KIND_LABELS.get(term, term))
        sub(el, "summary", "; ".join(f"{label}: {text}" for label, text in entry.changes))
        sub(el, "content", entry.content_html(), type="html")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def as_json(feed: Feed) -> dict[str, Any]:
    return {
        "id": feed.id,
        "title": feed.title,
        "updated": _stamp(feed.updated) if feed.updated else None,
        "entries": [
            {
                "id": e.id,
                "nct_id": e.nct_id,
                "title": e.title,
                "link": e.link,
                "published": _stamp(e.published),
                "updated": _stamp(e.updated),
                "changes": [{"label": label, "text": text} for label, text in e.changes],
            }
            for e in feed.entries
        ],
    }

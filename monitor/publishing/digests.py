"""Building one subscriber's digest from the database: the links it carries, the filter
it reads, the health of the polls behind it, and which of the pending changes it lists
(store.changes' one rule: the same changes every surface shows). Sending, the roster and
exactly-once settlement are monitor.publishing.delivery's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from monitor import store
from monitor.config import REGISTRY_STUDY_URL, Settings, SubscriberSettings
from monitor.core.classify import Classifier
from monitor.core.digest import (
    Digest,
    DigestOptions,
    EventView,
    Health,
    StudyView,
    build_changes_digest,
    build_landscape_digest,
    sort_events,
)
from monitor.core.domain import RunOutcome, UserError
from monitor.core.filters import MODALITIES, StudyFilter
from monitor.core.news import Arrival
from monitor.core.trials import with_heads
from monitor.publishing import links
from monitor.publishing.render import Rendered, render_within
from monitor.store import Session


@dataclass(slots=True)
class Prepared:
    """A subscriber's digest, built and rendered, not yet sent."""

    sub: SubscriberSettings
    rendered: Rendered | None  # None: nothing to mail, only filtered-out events to settle
    filtered_ids: list[int]
    upto_event_id: int | None


def options(settings: Settings, flt: StudyFilter | None = None) -> DigestOptions:
    """How digests link out. With `web.base_url` set (ctmonitor serve), each study links to
    its page there (unless digest.study_url was changed from the registry's), and the
    "full list" pointer to /changes with this reader's filters (unless digest.report_url
    is set)."""
    d = settings.digest
    study_url, report_url = d.study_url, d.report_url
    base = settings.web.base_url
    if base and study_url == REGISTRY_STUDY_URL:
        study_url = base + "/studies/{nct_id}"
    if base and not report_url:
        report_url = base + "/changes" + (changes_query(flt) if flt is not None else "")
    report_page = base + "/report" + (changes_query(flt) if flt is not None else "") if base else ""
    return DigestOptions(
        study_url=study_url,
        subject_prefix=d.subject_prefix,
        new_within_days=d.new_within_days,
        report_url=report_url,
        web_url=base or "",
        report_page_url=report_page,
    )


def changes_query(flt: StudyFilter) -> str:
    """The query string of /changes (and /feeds/changes.xml) for a reader's filter."""
    from urllib.parse import urlencode

    pairs = [
        (name, v)
        for name, values in (
            ("modality", flt.modalities),
            ("target", flt.targets),
            ("indication", flt.indications),
            ("status", flt.statuses),
            ("sponsor", flt.sponsors),
            ("country", flt.countries),
            ("phase", flt.phases),
            ("product", flt.products),
            ("study", flt.nct_ids),
        )
        for v in values
    ]
    if flt.include_out_of_scope:
        pairs.append(("all", "1"))
    return "?" + urlencode(pairs) if pairs else ""


def subscriber_filter(sub: SubscriberSettings, classifier: Classifier) -> StudyFilter:
    """The subscriber's filter, checked against the labels the classifier can produce."""
    f = StudyFilter.from_settings(sub)
    vocab = classifier.vocabulary
    modalities = {*MODALITIES, *vocab.modality_needs}
    try:
        return f.resolved(
            modalities=modalities,
            targets=vocab.target_order,
            indications=vocab.indication_order,
            catalogue=classifier.catalogue,
        )
    except UserError as exc:
        raise UserError(f"subscriber {sub.name!r}: {exc}") from None


# -- reading -------------------------------------------------------------------------


def health(session: Session) -> Health:
    last_ok = store.last_run(session, outcomes=store.SUCCESSFUL)
    last_full_ok = store.last_run(session, outcomes=(RunOutcome.OK,), mode="full")
    last = store.last_finished_run(session)
    held = store.count_held_events(session)
    basis = last_full_ok or last_ok
    return Health(
        last_ok_at=last_ok.finished_at if last_ok else None,
        data_timestamp=last_ok.data_timestamp if last_ok else None,
        fetched=basis.fetched if basis else 0,
        expected=basis.expected if basis else 0,
        last_outcome=last.outcome if last else None,
        last_at=last.started_at if last else None,
        last_error=last.error if last else None,
        held_events=held,
        in_progress_events=store.events_in_progress(session),
    )


@dataclass
class RunData:
    """What every digest of one run reads, read once for the run: the study rows and each
    subscriber's pending events (a run for a thousand readers reads the changes once)."""

    rows: dict[str, Any]
    pending: dict[str, list[Any]]
    # what readers with the same filters share: the studies their landscape follows, and
    # each change as a digest line's input (by event, arrival and importance)
    followed: dict[Any, list[StudyView]] = field(default_factory=dict)
    views: dict[tuple[int, Any, int], EventView] = field(default_factory=dict)
    matched: dict[Any, dict[tuple[str, bool], bool]] = field(default_factory=dict)  # by filter

    @classmethod
    def read(cls, session: Session, subscribers: list[str]) -> RunData:
        return cls(store.study_index(session), store.pending_for_all(session, subscribers))


def prepare(
    session: Session,
    settings: Settings,
    sub: SubscriberSettings,
    flt: StudyFilter,
    now: datetime,
    run: RunData | None = None,
) -> Prepared | None:
    """Build and render this subscriber's digest from the database (and `run`'s shared
    reads, when a run sends many). None: nothing to send."""
    opts = options(settings, flt)
    row = store.get_subscriber(session, sub.name)
    # A team channel's digest is read by many: it carries no one person's links.
    team = bool(sub.channel)
    personal = {
        "unsubscribe_url": "" if team else unsubscribe_url(session, settings, sub.name, now),
        "manage_url": "" if team else manage_url(session, settings, sub.name),
        "filters_by_file": row is None or row.managed_by == store.FILE,
        "studies_on_web": opts.study_url != REGISTRY_STUDY_URL,
    }
    h = health(session)
    rows = run.rows if run is not None else store.study_index(session)
    last = store.last_sent_digest(session, sub.name)
    first = last is None
    due: list[store.ReaderChange] = []
    filtered: list[int] = []
    starting: list[int] = []  # a baseline poll's arrivals: settled, never told
    max_id = 0
    # One rule with every other surface (store.changes): the filter, the kinds and the
    # importance a reader sees; a baseline poll's arrivals are settled, never told.
    scope = store.ChangeScope(
        filter=flt,
        kinds=sub.wanted_kinds(),
        min_importance=sub.min_importance,
        since=last.period_end if last else None,
        # whether each study is followed, judged once per run for readers with these filters
        matched=run.matched.setdefault(flt, {}) if run is not None else {},
    )
    base = store.baseline_runs(session)
    pending = run.pending.get(sub.name, []) if run is not None else store.pending_events(session, sub.name)
    for e in pending:
        max_id = max(max_id, e.id)
        change = store.judge(e, rows.get(e.nct_id), scope, base)
        if change is not None and change.arrival is Arrival.BASELINE:
            starting.append(e.id)
            filtered.append(e.id)
        elif change is None:
            filtered.append(e.id)
        else:
            due.append(change)
    max_html = settings.digest.max_html_kilobytes * 1024
    if first and h.last_ok_at is None:
        return None  # no picture to show yet: the first digest waits for a successful poll
    if first:
        followed = run.followed.get(flt) if run is not None else None
        if followed is None:
            followed = [
                StudyView.of(r)
                for r in rows.values()
                if r.merged_into is None and not r.gone and flt.matches(r)
            ]
            if run is not None:
                run.followed[flt] = followed
        ids = [c.event.id for c in due] + starting  # the landscape stands in for them all

        def build_landscape(limit: int) -> Digest:
            return build_landscape_digest(
                subscriber=sub.name,
                studies=followed,
                event_ids=ids,
                now=now,
                health=h,
                filters=flt.describe(),
                opts=opts,
                max_items=limit,
                landscape_url=(
                    opts.web_url + "/" + changes_query(flt) if opts.web_url and not flt.nct_ids else ""
                ),
            )

        rendered = render_within(
            lambda limit: replace(build_landscape(limit), **personal),
            settings.digest.max_items,
            max_html,
        )
        # Everything up to now is accounted for by the landscape; nothing is "filtered" on top.
        return Prepared(sub, rendered, [], max_id or store.max_published_event_id(session))
    if not due and not sub.send_empty:
        return Prepared(sub, None, filtered, None) if filtered else None
    versions = store.registry_versions(session, [c.event for c in due])
    views = sort_events(_view(c, versions.get(c.event.id, (None, None)), run) for c in due)
    changed = with_heads({c.event.nct_id for c in due}, lambda i: rows[i].trial_id if i in rows else None)
    studies = {n: StudyView.of(rows[n]) for n in changed if n in rows}

    def build_changes(limit: int) -> Digest:
        return build_changes_digest(
            subscriber=sub.name,
            events=views,
            studies=studies,
            period_start=last.period_end if last else None,
            now=now,
            health=h,
            filters=flt.describe(),
            opts=opts,
            max_items=limit,
            presorted=True,
        )

    rendered = render_within(
        lambda limit: replace(build_changes(limit), **personal),
        settings.digest.max_items,
        max_html,
    )
    return Prepared(sub, rendered, filtered, None)


def _view(c: store.ReaderChange, versions: tuple[int | None, int | None], run: RunData | None) -> EventView:
    """A change as a digest line's input, made once per run for every reader it reaches."""
    if run is None:
        return EventView.of_change(c, versions)
    key = (c.event.id, c.arrival, c.importance)
    view = run.views.get(key)
    if view is None:
        view = run.views[key] = EventView.of_change(c, versions)
    return view


def unsubscribe_url(session: Session, settings: Settings, name: str, now: datetime) -> str:
    """The subscriber's one-click link (web.base_url + /unsubscribe/<signed token>), or ""
    when ctmonitor serve has no public address to receive it."""
    return _personal_url(session, settings, name, links.UNSUBSCRIBE)


def manage_url(session: Session, settings: Settings, name: str) -> str:
    """The subscriber's own page (filters, pause, leave, what changed since their last look)."""
    return _personal_url(session, settings, name, links.MANAGE)


def _personal_url(session: Session, settings: Settings, name: str, purpose: str) -> str:
    base = settings.web.base_url
    row = store.get_subscriber(session, name)
    if not base or row is None:
        return ""
    return f"{base}/{purpose}/{links.make_token(session, name, row.link_generation, purpose)}"


# -- who -------------------------------------------------------------------------------------

"""Building one subscriber's digest from the database: the links it carries, the filter
it reads, the health of the polls behind it, and which of the pending changes it lists
(store.changes' one rule: the same changes every surface shows). Sending, the roster and
exactly-once settlement are monitor.publishing.delivery's.
"""

from __future__ import annotations

from collections.abc import Callable
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
from monitor.store.changes import LEAVING


@dataclass(slots=True)
class Prepared:
    """A subscriber's digest, built and rendered, not yet sent."""

    sub: SubscriberSettings
    rendered: Rendered | None  # None: nothing to mail, only filtered-out events to settle
    filtered_ids: list[int]
    upto_event_id: int | None
    # how far the reader's floor rises once this is settled (store.frontier, read first)
    floor: int = 0


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
    """What every digest of one run reads, read once for the run: the polls' health, each
    subscriber's pending events (`store.Pending`: the changes read once) and the studies
    they name. Readers who follow the same things share the work: each change is judged
    once per scope, and a digest with the same content is rendered once (their own links
    put in after, see `_shared`)."""

    health: Health
    pending: store.Pending
    rows: dict[str, Any]  # the studies the pending changes name, and their trials' heads
    every: list[Any] | None = None  # every study: read when a reader's first digest needs it
    followed: dict[Any, list[StudyView]] = field(default_factory=dict)
    views: dict[tuple[int, Any, int], EventView] = field(default_factory=dict)
    matched: dict[Any, dict[tuple[str, bool], bool]] = field(default_factory=dict)  # by filter
    study_views: dict[str, StudyView] = field(default_factory=dict)
    judged: dict[Any, _Judged] = field(default_factory=dict)
    lines: dict[Any, tuple[list[EventView], dict[str, StudyView]]] = field(default_factory=dict)
    rendered: dict[Any, Rendered] = field(default_factory=dict)

    @classmethod
    def read(cls, session: Session, subscribers: list[str]) -> RunData:
        pending = store.Pending(session, subscribers)
        rows = {
            r.nct_id: r for r in store.study_summaries_of(session, sorted({e.nct_id for e in pending.events}))
        }
        heads = sorted({r.trial_id for r in rows.values() if r.trial_id} - set(rows))
        rows.update((r.nct_id, r) for r in store.study_summaries_of(session, heads))
        return cls(health(session), pending, rows)

    def let_go(self) -> None:
        """Forget what the last group of readers shared (the changes and studies stay)."""
        for made in (self.followed, self.matched, self.judged, self.lines, self.rendered):
            made.clear()

    def every_study(self, session: Session) -> list[Any]:
        if self.every is None:
            self.every = list(store.study_index(session).values())
        return self.every

    def study_view(self, row: Any) -> StudyView:
        view = self.study_views.get(row.nct_id)
        if view is None:
            view = self.study_views[row.nct_id] = StudyView.of(row)
        return view


@dataclass(slots=True)
class _Judged:
    """A reader's pending changes sorted out against their scope."""

    due: list[store.ReaderChange]
    filtered: list[int]
    starting: list[int]  # a baseline poll's arrivals: settled, never told
    max_id: int


def _judge(pending: list[Any], rows: Any, scope: store.ChangeScope, base: frozenset[int]) -> _Judged:
    out = _Judged([], [], [], max((e.id for e in pending), default=0))
    follows = scope.matched  # what `judge` found of each study for this filter
    for e in pending:
        if follows.get((e.nct_id, e.kind in LEAVING)) is False:
            out.filtered.append(e.id)  # a study the filter does not follow: judge's answer, known
            continue
        change = store.judge(e, rows.get(e.nct_id), scope, base)
        if change is not None and change.arrival is Arrival.BASELINE:
            out.starting.append(e.id)
            out.filtered.append(e.id)
        elif change is None:
            out.filtered.append(e.id)
        else:
            out.due.append(change)
    return out


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
    if run is not None:
        h, rows, floor = run.health, run.rows, run.pending.frontier
        pending = run.pending.of(sub.name)
    else:
        h = health(session)
        floor = store.frontier(session)  # read before the events (see store.frontier)
        pending = list(store.pending_events(session, sub.name))
        rows = store.StudyRows(session)
        rows.fetch({e.nct_id for e in pending})
    last = store.last_sent_digest(session, sub.name)
    first = last is None
    # One rule with every other surface (store.changes): the filter, the kinds and the
    # importance a reader sees; a baseline poll's arrivals are settled, never told.
    kinds = sub.wanted_kinds()
    since = last.period_end if last else None
    scope = store.ChangeScope(
        filter=flt,
        kinds=kinds,
        min_importance=sub.min_importance,
        since=since,
        # whether each study is followed, judged once per run for readers with these filters
        matched=run.matched.setdefault(flt, {}) if run is not None else {},
    )
    base = store.baseline_runs(session)
    key = (flt, tuple(kinds or ()), sub.min_importance, since, tuple(e.id for e in pending))
    judged = run.judged.get(key) if run is not None else None
    if judged is None:
        judged = _judge(pending, rows, scope, base)
        if run is not None:
            run.judged[key] = judged
    due, max_id = judged.due, judged.max_id
    max_html = settings.digest.max_html_kilobytes * 1024
    # the content's key: readers with the same one share its rendering
    shape = (key, personal["filters_by_file"], personal["studies_on_web"])
    if first and h.last_ok_at is None:
        return None  # no picture to show yet: the first digest waits for a successful poll
    if first:
        followed = run.followed.get(flt) if run is not None else None
        if followed is None:
            every = run.every_study(session) if run is not None else store.study_index(session).values()
            followed = [
                StudyView.of(r) for r in every if r.merged_into is None and not r.gone and flt.matches(r)
            ]
            if run is not None:
                run.followed[flt] = followed
        ids = [c.event.id for c in due] + judged.starting  # the landscape stands in for them all

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

        rendered = _shared(
            run,
            ("landscape", *shape),
            sub.name,
            personal,
            lambda links: render_within(
                lambda limit: replace(build_landscape(limit), **links), settings.digest.max_items, max_html
            ),
        )
        # Everything up to now is accounted for by the landscape; nothing is "filtered" on top.
        return Prepared(sub, rendered, [], max_id or store.max_published_event_id(session), floor)
    if not due and not sub.send_empty:
        return Prepared(sub, None, judged.filtered, None, floor)
    made = run.lines.get(key) if run is not None else None
    if made is None:
        versions = store.registry_versions(session, [c.event for c in due])
        made = (
            sort_events(_view(c, versions.get(c.event.id, (None, None)), run) for c in due),
            {
                n: run.study_view(rows[n]) if run is not None else StudyView.of(rows[n])
                for n in with_heads(
                    {c.event.nct_id for c in due}, lambda i: rows[i].trial_id if i in rows else None
                )
                if n in rows
            },
        )
        if run is not None:
            run.lines[key] = made
    views, studies = made

    def build_changes(limit: int) -> Digest:
        return build_changes_digest(
            subscriber=sub.name,
            events=views,
            studies=studies,
            period_start=since,
            now=now,
            health=h,
            filters=flt.describe(),
            opts=opts,
            max_items=limit,
            presorted=True,
        )

    rendered = _shared(
        run,
        ("changes", *shape),
        sub.name,
        personal,
        lambda links: render_within(
            lambda limit: replace(build_changes(limit), **links), settings.digest.max_items, max_html
        ),
    )
    return Prepared(sub, rendered, judged.filtered, None, floor)


def _shared(
    run: RunData | None,
    shape: tuple[Any, ...],
    name: str,
    personal: dict[str, Any],
    render: Callable[[dict[str, Any]], Rendered],
) -> Rendered:
    """The digest rendered with this reader's links. Within a run, readers whose digests
    have the same content share one rendering: made with stand-ins for the personal links
    (as long as the real ones, of characters quoted-printable leaves alone, so the size cap
    measured the same bytes), which are then replaced by each reader's own."""
    if run is None:
        return render(personal)
    real = {k: personal[k] for k in _LINKS if personal[k]}
    stand_ins = {k: _stand_in(v, _LINKS[k]) for k, v in real.items()}
    if personal["filters_by_file"]:  # the digest names its reader (config.toml's name)
        real["subscriber"] = name
        # a name too short to stand in for safely keeps the rendering its own
        stand_ins["subscriber"] = _pattern("Qn7", len(name)) if len(name) >= _SHORTEST else name
    key = (shape, tuple((k, len(v)) for k, v in real.items()), stand_ins.get("subscriber"))
    hit = run.rendered.get(key)
    if hit is None:
        hit = run.rendered[key] = render({**personal, **stand_ins})
    html, text = hit.html, hit.text
    for k, stand_in in stand_ins.items():
        if stand_in != real[k]:
            html, text = html.replace(stand_in, real[k]), text.replace(stand_in, real[k])
    return Rendered(replace(hit.digest, subscriber=name, **personal), html, text)


# Stand-ins: characters quoted-printable leaves alone, as the names and links they stand
# for are (a name is [A-Za-z0-9._-], a link's token URL-safe base64), in a pattern no
# registry text has; six characters at least, so no word of a digest is mistaken for one.
_LINKS = {"unsubscribe_url": "Qu7", "manage_url": "Qm7"}
_SHORTEST = 6


def _pattern(mark: str, length: int) -> str:
    return (mark + "xZ" * length)[:length]


def _stand_in(url: str, mark: str) -> str:
    """`url` with its last part (the signed token) replaced by a stand-in of its length."""
    head, _, token = url.rpartition("/")
    return f"{head}/{_pattern(mark, len(token))}"


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

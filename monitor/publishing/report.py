"""On-demand landscape reports: what is in scope today, what changed in a period, how the set was selected.

`gather()` reads the database into a Report (plain data); `render()` writes it as a
self-contained HTML file (inline CSS and SVG charts), Markdown, CSV (spreadsheet-safe)
or JSON. The changes section reuses the digest's grouping, so a report and a digest of
the same period say the same thing.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from monitor import store
from monitor.core import charts
from monitor.core.describe import phases_label, status_label, targets_label
from monitor.core.digest import DigestOptions, EventView, Section, StudyView, build_changes_digest
from monitor.core.filters import StudyFilter
from monitor.core.news import Arrival
from monitor.core.registrations import registries_of, registry_name, study_link
from monitor.core.trials import fold, with_heads
from monitor.publishing import delivery
from monitor.publishing.render import environment
from monitor.store import Session, StudyRow

FORMATS = ("html", "md", "csv", "json")

# Why a record the queries returned is not in scope, in the words of a systematic review.
EXCLUSION_REASONS = (
    ("no CAR", "Out-of-scope modality (no CAR, CAAR, CAR-Treg, CAR-NK or T-cell engager)"),
    ("observational", "Observational study"),
    ("oncology", "Oncology only"),
    ("not an autoimmune", "Not an autoimmune indication"),
    ("no autoimmune", "No autoimmune indication named"),
    ("curated", "Curated exclusion"),
)


def exclusion_reason(scope_reason: str | None) -> str:
    if not scope_reason:
        return "Not yet classified"
    for prefix, label in EXCLUSION_REASONS:
        if scope_reason.startswith(prefix):
            return label
    return scope_reason


@dataclass(slots=True)
class ReportStudy:
    nct_id: str
    title: str
    modality: str
    targets: str
    cell_source: str
    indications: str
    status: str
    phase: str
    sponsor: str
    countries: str
    first_posted: str
    last_update: str
    url: str
    product: str = ""
    enrollment: int | None = None
    start: str = ""  # as the registry writes it: 2024, 2024-03 or 2024-03-15
    status_code: str = ""  # the registry's code, for its colour and order


@dataclass(slots=True)
class Selection:
    identified: int  # every record the queries ever returned (renumbered ones counted once)
    gone: int  # no longer in the registry
    screened: int
    excluded: list[tuple[str, int]]
    in_scope: int
    matching: int  # in scope and matching this report's filters (trials: registrations joined)
    trials: int = 0  # in scope, registrations of one trial counted once (core.trials)
    previous_at: datetime | None = None
    previous_matching: int | None = None
    added: list[str] = field(default_factory=list)  # matching now, not in the previous report
    removed: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    generated_at: datetime
    since: date  # the period's first day
    until: date  # its last day, included whole
    filters: str
    selection: Selection
    studies: list[ReportStudy]
    modalities: list[str]
    indications: list[str]
    matrix: dict[str, dict[str, int]]  # modality -> indication -> studies
    by_modality: list[tuple[str, int]]
    by_indication: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    by_phase: list[tuple[str, int]]
    by_sponsor: list[tuple[str, int]]
    by_country: list[tuple[str, int]]
    by_year: list[tuple[str, int]]  # registrations per year (first posted)
    new_studies: list[ReportStudy]  # first posted in the period (core.news: registered)
    changes: list[Section]
    change_count: int  # changes listed in the period
    health: str
    change_total: int = 0  # every change of the period: listed + omitted
    found_studies: list[ReportStudy] = field(default_factory=list)  # newly found, registered earlier
    change_omitted: int = 0  # changes of the period beyond the listed ones (counted by kind)
    change_omitted_kinds: list[tuple[str, int]] = field(default_factory=list)
    landscape_url: str = ""  # the web's landscape with these filters, when a base URL is set
    changes_url: str = ""  # the web's change list of this period and these filters
    # (registry name, studies on it): each study on every registry it is on; and how many
    # are on more than one (the landscape's count, the same rule)
    by_registry: list[tuple[str, int]] = field(default_factory=list)
    on_several: int = 0


def _ranked(values: Sequence[str], top: int | None = None) -> list[tuple[str, int]]:
    ranked = sorted(Counter(v for v in values if v).items(), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:top] if top else ranked


def _study(r: StudyRow, study_url: str) -> ReportStudy:
    return ReportStudy(
        nct_id=r.nct_id,
        title=r.brief_title or "",
        modality=r.modality or "not stated",
        targets=targets_label(r.targets, "undisclosed"),
        cell_source=r.cell_source or "not stated",
        indications=", ".join(r.indications),
        status=status_label(r.overall_status),
        phase=phases_label(r.phases),
        sponsor=r.lead_sponsor or "",
        countries=", ".join(r.countries),
        first_posted=r.first_post_date or "",
        last_update=r.last_update_post_date or "",
        url=study_link(study_url, r.nct_id),
        product="; ".join(getattr(r, "products", None) or ([r.product] if r.product else [])),
        enrollment=r.enrollment_count,
        start=r.start_date or "",
        status_code=r.overall_status or "",
    )


# The study table's order: studies still under way first (recruiting, then soon to), then
# those that ended; within a status, the latest start first. The web landscape sorts by
# any column; this file stays a plain, printable table.
STATUS_ORDER = (
    "RECRUITING",
    "ENROLLING_BY_INVITATION",
    "NOT_YET_RECRUITING",
    "ACTIVE_NOT_RECRUITING",
    "SUSPENDED",
    "COMPLETED",
    "TERMINATED",
    "WITHDRAWN",
    "UNKNOWN",
)


def table_order(studies: Sequence[ReportStudy]) -> list[ReportStudy]:
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    by_start = sorted(studies, key=lambda s: (s.start or "0000", s.nct_id), reverse=True)
    return sorted(by_start, key=lambda s: rank.get(s.status_code, len(rank)))


def gather(
    session: Session,
    flt: StudyFilter,
    *,
    now: datetime,
    since: date | None = None,
    until: date | None = None,
    opts: DigestOptions | None = None,
    record: bool = True,
    kinds: Sequence[str] = (),
) -> Report:
    """Read the landscape and the period's changes (whole days, `until` included: a
    datetime counts as its day; by default the week up to `now`'s day); with `record`,
    remember this report's selection so the next report with the same filters can say
    what moved in and out."""
    opts = opts or DigestOptions()
    until = _day(until) if until is not None else now.date()
    since = _day(since) if since is not None else until - timedelta(days=6)
    rows = store.current_study_rows(session)
    screened = [r for r in rows if not r.gone]
    # one row per trial, as on the landscape: a registration of a trial whose standing
    # registration is in scope is counted and listed in that one (core.trials)
    trials = fold([r for r in screened if r.in_scope], dicts=False)
    kept = {r.nct_id for r in trials}
    joined = [r for r in screened if r.in_scope is False or r.nct_id in kept]
    matching = sorted((r for r in joined if flt.matches(r)), key=lambda r: r.nct_id)
    studies = [_study(r, opts.study_url) for r in matching]

    by_modality = _ranked([s.modality for s in studies])
    by_indication = _ranked([i for r in matching for i in r.indications])
    modalities = [m for m, _ in by_modality]
    indications = [i for i, _ in by_indication]
    matrix: dict[str, dict[str, int]] = {m: dict.fromkeys(indications, 0) for m in modalities}
    for r, s in zip(matching, studies, strict=True):
        for ind in r.indications:
            matrix[s.modality][ind] += 1
    countries = [c for r in matching for c in r.countries]
    registries = [registries_of(r.registered_on, r.trial_registrations or r.registrations) for r in matching]
    by_registry = _ranked([k for on in registries for k in sorted(on)])
    years = Counter((s.first_posted or "")[:4] for s in studies if s.first_posted)
    first_year = min(years, default=None)
    by_year = (
        [(str(y), years.get(str(y), 0)) for y in range(int(first_year), until.year + 1)] if first_year else []
    )

    by_id = {r.nct_id: r for r in rows}
    ids = {r.nct_id for r in matching}
    health = delivery.health(session)
    changes = list(
        store.reader_changes(
            session,
            store.ChangeScope(filter=flt, kinds=tuple(kinds), since=start_of(since), until=end_of(until)),
            newest_first=False,
        )
    )
    digest = _period_changes(changes, by_id, since=since, until=until, health=health, opts=opts, flt=flt)
    omitted = digest.omitted
    arrivals = {c.event.nct_id: c.arrival for c in changes if c.arrival is not None}
    new = [
        _study(by_id[n], opts.study_url)
        for n, a in arrivals.items()
        if a is Arrival.REGISTERED and n in by_id
    ]
    found = [
        _study(by_id[n], opts.study_url) for n, a in arrivals.items() if a is Arrival.FOUND and n in by_id
    ]
    landscape_url = ""
    if opts.web_url and not flt.nct_ids:  # the landscape filters by labels, not by id lists
        landscape_url = opts.web_url.rstrip("/") + "/" + delivery.changes_query(flt)
    changes_url = ""
    if opts.web_url:
        query = delivery.changes_query(flt).lstrip("?")
        period = f"since={since.isoformat()}&until={until.isoformat()}"
        changes_url = f"{opts.web_url.rstrip('/')}/changes?{period}" + (f"&{query}" if query else "")
    filters_text = flt.describe()
    selection = _selection(session, rows, screened, matching, filters_text, end_of(until))
    selection.trials = len(trials)
    if record:
        store.record_report(
            session,
            created_at=now,
            filters=filters_text,
            since=start_of(since),
            until=end_of(until),
            study_ids=sorted(ids),
            selection={
                k: v
                for k, v in asdict(selection).items()
                if k not in ("added", "removed", "previous_at", "previous_matching")
            },
        )
    return Report(
        generated_at=now,
        since=since,
        until=until,
        filters=filters_text,
        selection=selection,
        studies=table_order(studies),
        modalities=modalities,
        indications=indications,
        matrix=matrix,
        by_modality=by_modality,
        by_indication=by_indication,
        by_registry=[(registry_name(k), n) for k, n in by_registry],
        on_several=sum(len(on) > 1 for on in registries),
        by_status=_ranked([s.status for s in studies]),
        by_phase=_ranked([s.phase for s in studies]),
        by_sponsor=_ranked([s.sponsor for s in studies], top=15),
        by_country=_ranked(countries, top=15),
        by_year=by_year,
        new_studies=sorted(new, key=lambda s: (s.first_posted, s.nct_id), reverse=True),
        found_studies=sorted(found, key=lambda s: (s.first_posted, s.nct_id), reverse=True),
        changes=digest.sections,
        change_count=digest.listed,
        change_total=len(changes),
        health=health.summary(),
        change_omitted=sum(n for _, n in omitted),
        change_omitted_kinds=omitted,
        landscape_url=landscape_url,
        changes_url=changes_url,
    )


def _day(d: date) -> date:
    return d.date() if isinstance(d, datetime) else d


def start_of(d: date) -> datetime:
    return store.period(d, None)[0]  # type: ignore[return-value]


def end_of(d: date) -> datetime:
    return store.period(None, d)[1]  # type: ignore[return-value]


def _period_changes(
    changes: Sequence[store.ReaderChange],
    by_id: dict[str, StudyRow],
    *,
    since: date,
    until: date,
    health: Any,
    opts: DigestOptions,
    flt: StudyFilter,
) -> Any:
    """What changed: the digest's grouping over the period's changes (store.reader_changes,
    the set every surface shows for these filters and days)."""
    return build_changes_digest(
        subscriber="report",
        events=[EventView.of_change(c) for c in changes],
        studies={
            n: StudyView.of(by_id[n])
            for n in with_heads(
                {c.event.nct_id for c in changes}, lambda i: by_id[i].trial_id if i in by_id else None
            )
            if n in by_id
        },
        period_start=start_of(since),
        now=end_of(until),
        health=health,
        filters=flt.describe(),
        opts=opts,
        max_items=REPORT_MAX_CHANGES,
        sites_over=3,
    )


# "What changed" lists at most this many changes (most important first, grouped by study,
# a study's many site changes on one line); the rest are counted by kind. Every change is
# in `ctmonitor events` and the web's /changes.
REPORT_MAX_CHANGES = 300


def _selection(
    session: Session,
    rows: list[StudyRow],
    screened: list[StudyRow],
    matching: list[StudyRow],
    filters: str,
    until: datetime,
) -> Selection:
    """How the studies in the report were selected (identified, screened, excluded and
    why, in scope, matching), and what moved in and out since the last recorded report
    with the same filters."""
    selection = Selection(
        identified=len(rows),
        gone=len(rows) - len(screened),
        screened=len(screened),
        excluded=_ranked([exclusion_reason(r.scope_reason) for r in screened if not r.in_scope]),
        in_scope=sum(1 for r in screened if r.in_scope),
        matching=len(matching),
    )
    previous = store.previous_report(session, filters, until)
    if previous is not None:
        ids = {r.nct_id for r in matching}
        before = set(previous.study_ids or [])
        selection.previous_at = previous.created_at
        selection.previous_matching = len(before)
        selection.added = sorted(ids - before)
        selection.removed = sorted(before - ids)
    return selection


# -- formats -------------------------------------------------------------------------------

CSV_COLUMNS = (
    "nct_id",
    "title",
    "modality",
    "targets",
    "cell_source",
    "indications",
    "status",
    "phase",
    "sponsor",
    "countries",
    "first_posted",
    "last_update",
    "url",
    "product",
    "enrollment",
    "start",
)


def spreadsheet_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection: = + - @ tab CR)."""
    if value and value[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for s in report.studies:
        w.writerow([spreadsheet_safe("" if (v := getattr(s, c)) is None else str(v)) for c in CSV_COLUMNS])
    return buf.getvalue()


def _json_default(o: Any) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    raise TypeError(type(o).__name__)


def to_json(report: Report) -> str:
    return json.dumps(asdict(report), indent=2, ensure_ascii=False, default=_json_default) + "\n"


def to_html(report: Report, web: dict[str, Any] | None = None) -> str:
    """The self-contained HTML report; with `web`, as a page of the site (navigation, a
    form for the period and filters, download links): see web/server.py."""
    chart_svgs = {
        "modality": charts.hbar("Studies per modality", report.by_modality),
        "indication": charts.hbar("Studies per indication", report.by_indication, color=charts.PALETTE[3]),
        "years": charts.columns("New registrations per year (first posted)", report.by_year),
        "status": charts.stacked(
            "Status mix",
            report.by_status,
            colors=[charts.STATUS_COLORS.get(label, charts.OTHER_STATUS) for label, _ in report.by_status],
        ),
    }
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            r=report,
            charts=chart_svgs,
            status_colors=charts.STATUS_COLORS,
            other_status=charts.OTHER_STATUS,
            web=web,
        )
    )


def to_markdown(report: Report) -> str:
    return environment().get_template("report.md.j2").render(r=report)


def render(report: Report, fmt: str, web: dict[str, Any] | None = None) -> str:
    if fmt == "html":
        return to_html(report, web)
    if fmt == "md":
        return to_markdown(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "json":
        return to_json(report)
    raise ValueError(f"unknown format {fmt!r}")

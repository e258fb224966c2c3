"""`Application`: ctmonitor's use cases, one method each, over one database and registry.

Built from settings, an optional open database, a clock and factories for the registry
client and the mailer, so that the CLI (real ones), the service (the same, on a
schedule), the demo (a local registry, a folder for mail, a fake clock), the web and the
tests all run exactly the same orchestration. The database opens on first use: the
use cases that need none (classify, doctor) never create one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from monitor import store
from monitor.app.overview import (
    ClassifyResult,
    EventsResult,
    StatusResult,
    StudiesResult,
    event_dict,
    run_dict,
    study_dict,
)
from monitor.app.publish import FeedResult, ReportResult, write_atomically
from monitor.app.runs import BackfillResult, DigestResult, PollResult, ReclassifyResult, ReleaseResult
from monitor.app.study import CompareResult, HistoryResult
from monitor.config import Settings
from monitor.core.classify import Classifier
from monitor.core.domain import UserError
from monitor.core.filters import MODALITIES, StudyFilter
from monitor.core.landscape import LandscapeQuery, LandscapeView
from monitor.publishing.mailer import Mailer, SmtpMailer
from monitor.registry.client import CtGovClient
from monitor.store import db as dbmod
from monitor.tracking.sync import utcnow

if TYPE_CHECKING:
    from monitor.app.browse import ChangesQuery, ChangesView, Health, StudyPage


class WorkFailed(Exception):
    """The use case ran but its work could not be done (e.g. the database cannot be opened)."""


class NotTracked(UserError):
    """No study with this id is tracked (the web answers 404)."""


def not_tracked(nct: str) -> NotTracked:
    return NotTracked(f"{nct} is not tracked: run `ctmonitor poll` first, or check the id")


class Application:
    def __init__(
        self,
        settings: Settings,
        *,
        database: dbmod.Database | None = None,
        now: Callable[[], datetime] = utcnow,
        client_factory: Callable[[], CtGovClient] | None = None,
        mailer_factory: Callable[[], Mailer] | None = None,
    ) -> None:
        self.settings, self.now = settings, now
        self._database, self._owns_database = database, database is None
        self.client_factory = client_factory or (lambda: CtGovClient(settings.api))
        self.mailer_factory = mailer_factory or (lambda: SmtpMailer(settings.smtp))
        self._classifier: Classifier | None = None

    # -- what every use case shares ---------------------------------------------------------

    @property
    def database(self) -> dbmod.Database:
        if self._database is None:
            s = self.settings
            try:
                self._database = dbmod.open_database(s.database_url(), auto_upgrade=s.database.auto_upgrade)
            except dbmod.DatabaseError as exc:
                raise WorkFailed(str(exc)) from None
        return self._database

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None:
            self._classifier = Classifier.from_settings(self.settings)
        return self._classifier

    def close(self) -> None:
        if self._database is not None and self._owns_database:
            self._database.dispose()
            self._database = None

    def __enter__(self) -> Application:
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # -- changing the database ------------------------------------------------------------

    def poll(
        self,
        *,
        full: bool = False,
        should_stop: Callable[[], bool] | None = None,
        progress: Callable[[int, int | None, str], None] | None = None,
    ) -> PollResult:
        """Sync with the registry once (the writer lock is taken inside: LockBusy if held)."""
        from monitor.tracking.sync import Syncer

        with self.client_factory() as client:
            summary = Syncer(
                self.database,
                client,
                self.settings,
                now=self.now,
                progress=progress,
                classifier=self.classifier,
            ).poll(full=full, should_stop=should_stop)
        return PollResult(summary)

    def send_digests(self, *, subscriber: str | None = None) -> DigestResult:
        """Mail every digest that is due, exactly once (delivery's sending -> sent protocol)."""
        from monitor.publishing import delivery

        return DigestResult(
            delivery.send_due(
                self.database,
                self.settings,
                self.classifier,
                self.mailer_factory(),
                now=self.now(),
                subscriber=subscriber,
            )
        )

    def preview_digests(self, *, out_dir: Path | None = None, subscriber: str | None = None) -> DigestResult:
        """Write each due digest as files; send nothing, settle nothing."""
        from monitor.publishing import delivery

        folder = out_dir or self.settings.path(self.settings.digest.preview_dir)
        assert folder is not None
        return DigestResult(
            delivery.preview(
                self.database,
                self.settings,
                self.classifier,
                now=self.now(),
                out_dir=folder,
                subscriber=subscriber,
            )
        )

    def backfill(
        self,
        nct_ids: Sequence[str] = (),
        *,
        limit: int | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        progress: Callable[[str, str], None] | None = None,
    ) -> BackfillResult:
        """Fetch registry histories: of these tracked studies, or of up to `limit` waiting ones
        (None: backfill.studies_per_run; 0: all)."""
        from monitor.tracking.backfill import Backfiller

        ids = list(nct_ids)
        if ids:
            with self.database.session() as s:
                tracked = store.tracked_ids(s, ids)
            if missing := [x for x in ids if x not in tracked]:
                raise not_tracked(missing[0])
        chosen = limit if limit is not None else self.settings.backfill.studies_per_run
        with self.client_factory() as client:
            summary = Backfiller(self.database, client, now=self.now, progress=progress).run(
                ids or None, limit=chosen or None, should_stop=should_stop
            )
        return BackfillResult(summary)

    def reclassify(self, *, everything: bool = False) -> ReclassifyResult:
        """Relabel stored studies without fetching, under the writer lock."""
        from monitor.store.locking import exclusive
        from monitor.tracking.sync import reclassify as relabel

        with exclusive(self.database.engine):
            done, moved = relabel(
                self.database, self.classifier, run_id=None, now=self.now(), only_stale=not everything
            )
        return ReclassifyResult(done, moved)

    def release(self, *, run_id: int | None = None) -> ReleaseResult:
        """Release held events (of one run, or all) so that digests include them."""
        with self.database.session() as s:
            return ReleaseResult(store.release_events(s, run_id=run_id, now=self.now()))

    # -- reading ------------------------------------------------------------------------------

    def status(self, *, runs: int = 10) -> StatusResult:
        import dataclasses

        from monitor.app.schedule import job_health
        from monitor.publishing import delivery

        with self.database.session() as s:
            last_ok = store.last_run(s, outcomes=store.SUCCESSFUL)
            data = {
                "database": dbmod.make_url_safe(self.database.url),
                "registry_data_timestamp": last_ok.data_timestamp if last_ok else None,
                "last_successful_poll": last_ok.finished_at if last_ok else None,
                "studies": store.study_totals(s),
                "held_events": len(store.list_events(s, held=True)),
                "runs": [run_dict(r) for r in store.recent_runs(s, runs)],
                "subscribers": [dataclasses.asdict(x) for x in delivery.subscriber_states(s, self.settings)],
                "jobs": [dataclasses.asdict(x) for x in job_health(s, self.settings, self.now())],
                "backfill": store.backfill_progress(s),
            }
            last = run_dict(last_ok) if last_ok else None
        return StatusResult(data, last, self.settings.schedule.timezone)

    def events(
        self,
        *,
        since: datetime | None = None,
        kinds: Iterable[str] = (),
        nct_id: str | None = None,
        held: bool | None = None,
        limit: int | None = None,
    ) -> EventsResult:
        with self.database.session() as s:
            rows = store.list_events(
                s, since=since, kinds=tuple(kinds), nct_id=nct_id, held=held, limit=limit
            )
            return EventsResult([event_dict(e) for e in rows])

    def studies(
        self,
        *,
        modality: str | None = None,
        target: str | None = None,
        indication: str | None = None,
        status: str | None = None,
        needs_review: bool = False,
        include_out_of_scope: bool = False,
    ) -> StudiesResult:
        """The landscape: tracked studies in scope (or all), newest update first."""
        with self.database.session() as s:
            rows = store.list_studies(
                s,
                modality=modality,
                target=target,
                indication=indication,
                status=status,
                needs_review=needs_review,
                in_scope=None if include_out_of_scope else True,
            )
            return StudiesResult([study_dict(r) for r in rows])

    def classify_files(self, names: Sequence[str]) -> ClassifyResult:
        """Classify saved API JSON (a study or a /studies page) with the evidence; no database."""
        from monitor.core.normalize import RecordError, to_study
        from monitor.registry.localserver import load_records

        out = []
        for name in names:
            path = Path(name)
            if not path.is_file():
                raise UserError(f"no such file: {name}")
            try:
                records = load_records(path)
            except (OSError, ValueError) as exc:
                raise UserError(f"{name}: not a JSON study record or /studies page ({exc})") from None
            if not records:
                raise UserError(
                    f"{name}: no study records found (expected API JSON: a study or a page of studies)"
                )
            for raw in records:
                try:
                    study = to_study(raw)
                except RecordError as exc:
                    raise UserError(f"{name}: {exc}") from None
                out.append((study, self.classifier.classify(study)))
        return ClassifyResult(out)

    def history(self, nct_ids: Sequence[str]) -> HistoryResult:
        """Each study's timeline: statuses with durations, changes, versions."""
        today = self.now().date()
        with self.database.session() as s:
            return HistoryResult([self._history(s, nct, today) for nct in nct_ids])

    def _history(self, s: Any, nct: str, today: date) -> dict[str, Any]:
        from monitor.core import timeline

        row = store.study_row(s, nct)
        if row is None:
            raise not_tracked(nct)
        versions = store.study_versions(s, nct)
        labels = {v.seq: v.label for v in versions}
        changes = timeline.order_changes(store.study_changes(s, nct, labels))
        bf = store.backfill_state(s, nct)
        periods = timeline.status_periods(versions, bf.versions if bf else None, today)
        polled = [v for v in versions if v.origin == "poll"]
        return {
            "nct_id": nct,
            "title": row.brief_title,
            "status": row.overall_status,
            "merged_into": row.merged_into,
            "gone": row.gone,
            "first_posted": versions[-1].study.first_post_date if versions else None,
            "tracked_since": row.first_seen_at.date().isoformat(),
            "first_polled": polled[0].when if polled else None,
            "backfill": (
                {
                    "status": bf.status,
                    "registry_versions": len(bf.versions or []),
                    "stored_through": bf.stored_through,
                    "note": bf.error,
                }
                if bf
                else None
            ),
            "statuses": [p.to_json() for p in periods],
            "changes": [c.to_json() for c in changes],
            "versions": [v.to_json() for v in versions],
        }

    def compare(
        self,
        nct_id: str,
        *,
        since: str | None = None,
        from_ref: str | None = None,
        to_ref: str | None = None,
    ) -> CompareResult:
        """Two versions of a study and what changed: by default the latest against the one
        before; `since` a date (the version current before it); refs as `history` lists them."""
        from monitor.core import timeline

        if since and from_ref:
            raise UserError("use since or from, not both")
        with self.database.session() as s:
            if store.study_row(s, nct_id) is None:
                raise not_tracked(nct_id)
            versions = store.study_versions(s, nct_id)
        new = timeline.resolve(versions, to_ref or "latest")
        if since:
            old = timeline.resolve(versions, since, before_date=True)
        elif from_ref:
            old = timeline.resolve(versions, from_ref)
        else:
            earlier = [v for v in versions if v.seq < new.seq]
            old = earlier[-1] if earlier else new
        if old.seq > new.seq:
            old, new = new, old  # always older -> newer
        return CompareResult(nct_id, old, new, timeline.compare(nct_id, old, new), len(versions))

    # -- browsing (the web) ----------------------------------------------------------------

    def check_labels(
        self, *, modalities: Iterable[str] = (), targets: Iterable[str] = (), indications: Iterable[str] = ()
    ) -> None:
        """Refuse a label the classifier never produces, naming the valid ones (UserError)."""
        vocab = self.classifier.vocabulary
        known = {*MODALITIES, *vocab.modality_needs}
        flt = StudyFilter(
            modalities=tuple(modalities), targets=tuple(targets), indications=tuple(indications)
        )
        flt.check_labels(modalities=known, targets=vocab.target_order, indications=vocab.indication_order)

    def check_filter(self, flt: StudyFilter) -> StudyFilter:
        """A filter whose labels the classifier can produce (else a UserError naming them)."""
        self.check_labels(modalities=flt.modalities, targets=flt.targets, indications=flt.indications)
        return flt

    def landscape(self, query: LandscapeQuery, *, complete: bool = False) -> LandscapeView:
        """The landscape page: filtered, searched, sorted, counted and paged; with `complete`,
        every matching row carries its review and curated marks (downloads)."""
        from monitor.app import browse

        self.check_labels(modalities=query.modalities, targets=query.targets, indications=query.indications)
        with self.database.session() as s:
            return browse.landscape(s, query, complete=complete)

    def study_page(self, nct_id: str) -> StudyPage:
        """One study: labels with evidence, current state, sites by country, timeline, versions."""
        from monitor.app import browse

        today = self.now().date()
        with self.database.session() as s:
            row = store.study_row(s, nct_id)
            if row is None:
                raise not_tracked(nct_id)
            history = self._history(s, nct_id, today)
            versions = store.study_versions(s, nct_id)
            current = versions[-1].study if versions else None
            return browse.StudyPage(
                study_dict(row),
                dict(row.classification or {}),
                current,
                history,
                browse.sites_by_country(current),
            )

    def changes(self, query: ChangesQuery) -> ChangesView:
        """The change stream, grouped by study, newest first."""
        from monitor.app import browse

        self.check_filter(query.check().filter)
        with self.database.session() as s:
            return browse.changes(s, query)

    def health(self) -> Health:
        """Last poll, data freshness, held events, failing jobs: for /status and uptime checks."""
        from datetime import timedelta

        from monitor.app import browse
        from monitor.app.schedule import job_health

        with self.database.session() as s:
            last_ok = store.last_run(s, outcomes=store.SUCCESSFUL)
            recent = store.recent_runs(s, 1)
            failing = [j.job for j in job_health(s, self.settings, self.now()) if j.failures_in_a_row]
            return browse.Health(
                run_dict(recent[0]) if recent else None,
                last_ok.finished_at if last_ok else None,
                last_ok.data_timestamp if last_ok else None,
                len(store.list_events(s, held=True)),
                failing,
                timedelta(hours=self.settings.web.stale_after_hours),
            )

    # -- publishing ----------------------------------------------------------------------------

    def study_filter(
        self,
        *,
        modalities: Iterable[str] = (),
        targets: Iterable[str] = (),
        indications: Iterable[str] = (),
        statuses: Iterable[str] = (),
        sponsors: Iterable[str] = (),
        countries: Iterable[str] = (),
        nct_ids: Iterable[str] = (),
        include_out_of_scope: bool = False,
    ) -> StudyFilter:
        """A StudyFilter checked like a subscriber's: unknown labels are a one-line UserError."""
        from pydantic import ValidationError

        from monitor.config import SubscriberSettings
        from monitor.core.domain import check_nct_id
        from monitor.publishing.delivery import subscriber_filter

        try:
            sub = SubscriberSettings(
                name="cli",
                email="cli@example.org",
                modalities=list(modalities),
                targets=list(targets),
                indications=list(indications),
                statuses=list(statuses),
                sponsors=list(sponsors),
                countries=list(countries),
                nct_ids=[check_nct_id(x) for x in nct_ids],
                include_out_of_scope=include_out_of_scope,
            )
        except ValidationError as exc:
            raise UserError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return subscriber_filter(sub, self.classifier)

    def report(
        self,
        flt: StudyFilter,
        *,
        fmt: str = "md",
        since: datetime | None = None,
        until: datetime | None = None,
        out: Path | None = None,
        record: bool = True,
    ) -> ReportResult:
        """A landscape report (compared with the previous one with the same filters). With
        `record`, it becomes that previous one for the next report; a web view does not."""
        from monitor.publishing import delivery
        from monitor.publishing import report as reporting

        if since and until and since > until:
            raise UserError("since is after until")
        with self.database.session() as s:
            rep = reporting.gather(
                s,
                flt,
                now=self.now(),
                since=since,
                until=until,
                opts=delivery.options(self.settings),
                record=record,
            )
            document = reporting.render(rep, fmt)
        if out is not None:
            try:
                out.write_text(document, encoding="utf-8", newline="")
            except OSError as exc:
                raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        return ReportResult(rep, fmt, document, out)

    def feed(
        self,
        flt: StudyFilter,
        *,
        kinds: Iterable[str] = (),
        since: datetime | None = None,
        limit: int = 100,
        self_url: str | None = None,
        out: Path | None = None,
    ) -> FeedResult:
        """An Atom feed of the change stream; written atomically when `out` is given."""
        from monitor.publishing import delivery
        from monitor.publishing import feed as feeds

        with self.database.session() as s:
            result = feeds.gather(
                s,
                flt,
                kinds=tuple(kinds),
                since=since,
                limit=limit,
                study_url=delivery.options(self.settings).study_url,
            )
        data = feeds.render(result, self_url=self_url)
        if out is not None:
            write_atomically(out, data)
        return FeedResult(result, data, out)

    # -- the registry, before a first poll ---------------------------------------------------

    def doctor(
        self,
        *,
        max_requests: int = 150,
        flood_at: int = 100,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> DoctorResult:
        """Probe the live registry with the watch queries; needs no database."""
        from monitor.tracking.doctor import Doctor

        with self.client_factory() as client:
            report = Doctor(
                client, self.settings, budget=max_requests, flood_at=flood_at, progress=progress
            ).run()
        return DoctorResult(report)


class DoctorResult:
    def __init__(self, report: Any) -> None:
        self.report = report

    @property
    def ok(self) -> bool:
        return bool(self.report.ok)

    def text(self) -> str:
        from monitor.tracking.doctor import report_text

        return report_text(self.report)

    def to_json(self) -> Any:
        return self.report.to_json()

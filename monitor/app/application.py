"""`Application`: ctmonitor's use cases, one method each, over one database and registry.

Built from settings, an optional open database, a clock and factories for the registry
client and the mailer, so that the CLI (real ones), the service (the same, on a
schedule), the demo (a local registry, a folder for mail, a fake clock), the web and the
tests all run exactly the same orchestration. The database opens on first use: the
use cases that need none (classify, doctor) never create one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from monitor import store
from monitor.app.addresses import AddressUseCases
from monitor.app.curating import CuratorUseCases
from monitor.app.errors import WorkFailed, not_tracked
from monitor.app.literature import LiteratureUseCases
from monitor.app.overview import (
    StatusResult,
    run_dict,
)
from monitor.app.programmes import ProgrammeUseCases
from monitor.app.reading import ReadUseCases
from monitor.app.runs import BackfillResult, DigestResult, PollResult, ReclassifyResult, ReleaseResult
from monitor.app.subscribing import SubscriberUseCases
from monitor.app.warming import WarmingUseCases
from monitor.config import Settings
from monitor.core.classify import Classifier
from monitor.core.domain import UserError
from monitor.publishing.mailer import LazyMailer, Mailer, SmtpMailer
from monitor.registry.client import CtGovClient
from monitor.store import db as dbmod
from monitor.tracking.sync import utcnow

if TYPE_CHECKING:
    pass


def registry_freshness(s: Any) -> dict[str, Any]:
    """For `status`, beside ClinicalTrials.gov's last poll: EU CTIS's last successful poll and
    the last ICTRP import (with its file), and the current registrations per registry with
    the number of trials they make."""
    polls = []
    for what, kw in (
        ("EU CTIS poll", {"modes": store.CTIS_MODES}),
        ("ICTRP import", {"modes": ("ictrp-import",)}),
    ):
        run = store.last_run(s, outcomes=store.SUCCESSFUL, **kw)
        if run is not None:
            polls.append({"what": what, "id": run.id, "finished_at": run.finished_at, "source": run.source})
    totals = store.registry_totals(s)
    trials = totals.pop("trials")
    return {"polls": polls, "tracked": totals, "trials": trials}


LITERATURE_RUN_FIELDS = (
    "id",
    "source",
    "started_at",
    "finished_at",
    "outcome",
    "studies",
    "requests",
    "found",
    "linked",
    "events",
    "error",
)


def _ctis_client(settings: Settings) -> Any:
    from monitor.registry.ctis import CtisClient

    return CtisClient(settings.ctis)


class Application(
    ReadUseCases,
    ProgrammeUseCases,
    WarmingUseCases,
    SubscriberUseCases,
    AddressUseCases,
    CuratorUseCases,
    LiteratureUseCases,
):
    def __init__(
        self,
        settings: Settings,
        *,
        database: dbmod.Database | None = None,
        now: Callable[[], datetime] = utcnow,
        client_factory: Callable[[], CtGovClient] | None = None,
        ctis_client_factory: Callable[[], Any] | None = None,
        mailer_factory: Callable[[], Mailer] | None = None,
        before_open: Callable[[], None] | None = None,
        literature_factory: Callable[[str], Any] | None = None,
    ) -> None:
        self.settings, self.now = settings, now
        # called before the database is first opened (the CLI's check that a command which
        # only reads does not create a missing SQLite file)
        self._before_open = before_open
        self._database, self._owns_database = database, database is None
        self.client_factory = client_factory or (lambda: CtGovClient(settings.api))
        self.ctis_client_factory = ctis_client_factory or (lambda: _ctis_client(settings))
        self.mailer_factory = mailer_factory or (lambda: SmtpMailer(settings.smtp))
        # the client of one literature service by name (None: the real ones, from settings)
        self.literature_factory = literature_factory
        self._classifier: Classifier | None = None

    # -- what every use case shares ---------------------------------------------------------

    @property
    def database(self) -> dbmod.Database:
        if self._database is None:
            s = self.settings
            if self._before_open is not None:
                self._before_open()
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
        registry: str = "ctgov",
    ) -> PollResult:
        """Sync with a registry once (the writer lock is taken inside: LockBusy if held):
        ClinicalTrials.gov, or EU CTIS (`registry="ctis"`)."""
        from monitor.tracking.sync import Syncer

        if registry == "ctis":
            return self._poll_ctis(full=full, should_stop=should_stop)
        if registry != "ctgov":
            raise UserError(f"registry: {registry!r}; valid: ctgov, ctis")

        with self.client_factory() as client:
            summary = Syncer(
                self.database,
                client,
                self.settings,
                now=self.now,
                progress=progress,
                classifier=self.classifier,
            ).poll(full=full, should_stop=should_stop)
        self._upkeep()
        return PollResult(summary)

    def _upkeep(self) -> None:
        """After a poll: on PostgreSQL, vacuum and analyze what autovacuum would have, where
        the server has it switched off (store.upkeep); months of polls otherwise leave the
        index tables full of dead rows that every read of the landscape wades through."""
        store.upkeep(self.database.engine)

    def _poll_ctis(self, *, full: bool, should_stop: Callable[[], bool] | None) -> PollResult:
        from monitor.tracking.ctis_sync import CtisSyncer

        if not self.settings.ctis.enabled:
            raise UserError("EU CTIS is switched off in this configuration ([ctis] enabled = false)")
        with self.ctis_client_factory() as client:
            summary = CtisSyncer(
                self.database, client, self.settings, now=self.now, classifier=self.classifier
            ).poll(full=full, should_stop=should_stop)
        self._upkeep()
        return PollResult(summary)

    def import_ictrp(self, path: Path) -> PollResult:
        """Import a WHO ICTRP XML export: the trials the watch matches, of the registers not
        polled directly (ChiCTR, jRCT, ...), tracked like any study (writer lock inside)."""
        from monitor.tracking.ictrp_import import IctrpImport

        summary = IctrpImport(self.database, self.settings, now=self.now, classifier=self.classifier).run(
            path
        )
        self._upkeep()
        return PollResult(summary)

    def send_digests(self, *, subscriber: str | None = None) -> DigestResult:
        """Mail every digest that is due, exactly once (delivery's sending -> sent protocol)."""
        from monitor.publishing import delivery

        return DigestResult(
            delivery.send_due(
                self.database,
                self.settings,
                self.classifier,
                LazyMailer(self.mailer_factory),
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
        with self.database.session() as s:
            followed = sorted(
                {n for sub in self.settings.subscribers for n in sub.nct_ids} | store.followed_ids(s)
            )
        with self.client_factory() as client:
            summary = Backfiller(
                self.database, client, now=self.now, progress=progress, followed=followed
            ).run(ids or None, limit=chosen or None, should_stop=should_stop)
        return BackfillResult(summary)

    def reclassify(self, *, everything: bool = False) -> ReclassifyResult:
        """Relabel stored studies without fetching, under the writer lock."""
        from monitor.store.locking import exclusive
        from monitor.tracking.reclassify import reclassify as relabel

        with exclusive(self.database.engine):
            done, moved = relabel(
                self.database, self.classifier, run_id=None, now=self.now(), only_stale=not everything
            )
            if everything:  # every study's index entry rewritten: the planner's view too
                with self.database.session() as s:
                    store.refresh_statistics(s)
        self._upkeep()
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
                "registries": registry_freshness(s),
                "held_events": len(store.list_events(s, held=True)),
                "runs": [run_dict(r) for r in store.recent_runs(s, runs)],
                "subscribers": [dataclasses.asdict(x) for x in delivery.subscriber_states(s, self.settings)],
                "jobs": [dataclasses.asdict(x) for x in job_health(s, self.settings, self.now())],
                "backfill": store.backfill_progress(s),
                "literature": [
                    {k: getattr(r, k) for k in LITERATURE_RUN_FIELDS} for r in store.recent_literature_runs(s)
                ],
            }
            last = run_dict(last_ok) if last_ok else None
        return StatusResult(data, last, self.settings.schedule.timezone)

    def doctor(
        self,
        *,
        max_requests: int = 150,
        flood_at: int = 100,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> DoctorResult:
        """Probe the live registries with the watch queries (ClinicalTrials.gov, and EU CTIS
        when it is on); needs no database."""
        from monitor.tracking.doctor import Doctor

        with self.client_factory() as client:
            report = Doctor(
                client, self.settings, budget=max_requests, flood_at=flood_at, progress=progress
            ).run()
        if self.settings.ctis.enabled:  # probed as ClinicalTrials.gov is: it is polled too
            from monitor.tracking.ctis_doctor import probe_ctis

            with self.ctis_client_factory() as ctis_client:
                report.checks += probe_ctis(ctis_client, self.settings, self.classifier)
                report.requests += ctis_client.requests
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

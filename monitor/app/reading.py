"""The use cases that read what ctmonitor keeps: events, studies, a study's history and
version comparison, the landscape and the web's pages, reports and feeds. Application
inherits them; they share its database, classifier, clock and settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor import store
from monitor.app.errors import not_tracked
from monitor.app.overview import (
    ClassifyResult,
    EventsResult,
    StudiesResult,
    run_dict,
    study_dict,
)
from monitor.app.publish import FeedResult, ReportResult, write_atomically
from monitor.app.study import CompareResult, HistoryResult
from monitor.config import Settings
from monitor.core import literature
from monitor.core.classify import Classifier
from monitor.core.domain import UserError, check_kinds
from monitor.core.filters import MODALITIES, StudyFilter
from monitor.core.landscape import LandscapeQuery, LandscapeView

if TYPE_CHECKING:
    from monitor.app.browse import ChangesQuery, ChangesView, Health, StudyPage
    from monitor.store.db import Database


class ReadUseCases:
    """Mixed into Application (monitor.app.application), which provides these."""

    settings: Settings
    now: Callable[[], datetime]
    database: Database
    classifier: Classifier

    def database_label(self) -> str:
        """The database read, as a user names it (a SQLite file's path; a URL without password)."""
        from monitor.store.db import make_url_safe

        url = self.settings.database_url()
        return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else make_url_safe(url)

    def _not_tracked(self, s: Any, nct: str) -> Exception:
        return not_tracked(nct, self.database_label(), store.count_tracked(s, None))

    def events(
        self,
        *,
        since: date | None = None,
        until: date | None = None,
        kinds: Iterable[str] = (),
        nct_id: str | None = None,
        held: bool = False,
        limit: int | None = None,
        by: str = "detected",
        origin: str | None = None,
        flt: StudyFilter | None = None,
        baseline: bool = False,
        min_importance: int = 1,
    ) -> EventsResult:
        """The change log, oldest first: the changes every surface shows for these days
        and filters (store.reader_changes). `baseline` adds the first poll's arrivals,
        `origin` "backfill" the registry's own history (only it), "poll" leaves it out;
        `held` lists only what is held for review (the operator's view)."""
        from monitor.app.browse import change_dict

        if by not in ("detected", "registry"):
            raise UserError(f"by: {by!r}; valid: detected, registry")
        if origin not in (None, "poll", "backfill"):
            raise UserError(f"origin: {origin!r}; valid: poll, backfill")
        if since and until and since > until:
            raise UserError("since is after until")
        start, end = store.period(since, until)
        scope = store.ChangeScope(
            filter=self.check_filter(flt) if flt is not None else StudyFilter(include_out_of_scope=True),
            kinds=tuple(check_kinds(kinds)),
            since=start,
            until=end,
            by=by,
            min_importance=min_importance,
            nct_id=nct_id,
            baseline=baseline,
            backfill=origin != "poll",
            backfill_only=origin == "backfill",
            held=held,
        )
        if origin is None and not held:
            # Without --origin the log is the polls' changes, and the registry's history
            # too when a study is named (its timeline); never news by default.
            scope = dataclasses.replace(scope, backfill=bool(nct_id))
        with self.database.session() as s:
            rows = list(store.reader_changes(s, scope, newest_first=False, limit=limit))
            return EventsResult([change_dict(c) for c in rows])

    def studies(
        self,
        *,
        modalities: Iterable[str] = (),
        targets: Iterable[str] = (),
        indications: Iterable[str] = (),
        statuses: Iterable[str] = (),
        phases: Iterable[str] = (),
        sponsors: Iterable[str] = (),
        countries: Iterable[str] = (),
        search: str = "",
        needs_review: bool = False,
        include_out_of_scope: bool = False,
        products: Iterable[str] = (),
        registries: Iterable[str] = (),
    ) -> StudiesResult:
        """The landscape as a list: tracked studies in scope (or all), newest update first,
        through the web landscape's query (one validation, the same aliases and search)."""
        params = {
            "modality": list(modalities),
            "target": list(targets),
            "indication": list(indications),
            "status": list(statuses),
            "phase": list(phases),
            "sponsor": list(sponsors),
            "country": list(countries),
            "product": list(products),
            "registry": list(registries),
        }
        query = LandscapeQuery.from_params({k: v for k, v in params.items() if v})
        query = dataclasses.replace(
            query, q=search.strip(), include_out_of_scope=include_out_of_scope, needs_review=needs_review
        )
        view = self.landscape(query, complete=True, counts=False)
        rows = [{k: v for k, v in r.items() if k != "search"} for r in view.matching]
        if rows:
            return StudiesResult(rows)
        with self.database.session() as s:
            empty = store.count_tracked(s, None) == 0
        return StudiesResult([], empty_in=self.database_label() if empty else "")

    def classify_files(self, names: Sequence[str]) -> ClassifyResult:
        """Classify saved API JSON (a study or a /studies page) with the evidence; no database."""
        from monitor.core.normalize import RecordError, to_study
        from monitor.registry.localdata import load_records

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

    def history(self, nct_ids: Sequence[str], *, kinds: Sequence[str] = ()) -> HistoryResult:
        """Each study's timeline: statuses with durations, changes (of `kinds`, if given), versions."""
        today = self.now().date()
        wanted = check_kinds(kinds)
        with self.database.session() as s:
            studies = [self._history(s, nct, today) for nct in nct_ids]
        if wanted:
            for h in studies:
                h["changes"] = [c for c in h["changes"] if c["kind"] in wanted]
        return HistoryResult(studies)

    def _history(self, s: Any, nct: str, today: date) -> dict[str, Any]:
        from monitor.core import timeline

        row = store.study_row(s, nct)
        if row is None:
            raise self._not_tracked(s, nct)
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
                    "events": bf.events,
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
        kinds: Sequence[str] = (),
        all_sites: bool = False,
    ) -> CompareResult:
        """Two versions of a study and what changed: by default the latest against the one
        before; `since` a date (the version current before it); refs as `history` lists them."""
        from monitor.core import timeline

        if since and from_ref:
            raise UserError("use since or from, not both")
        with self.database.session() as s:
            if store.study_row(s, nct_id) is None:
                raise self._not_tracked(s, nct_id)
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
        comparison = timeline.compare(nct_id, old, new)
        if kinds := check_kinds(kinds):
            comparison = dataclasses.replace(
                comparison, changes=[c for c in comparison.changes if c.kind in kinds]
            )
        return CompareResult(nct_id, old, new, comparison, len(versions), all_sites=all_sites)

    # -- browsing (the web) ----------------------------------------------------------------

    def check_filter(self, flt: StudyFilter) -> StudyFilter:
        """The filter with its labels as the classifier writes them (aliases such as `lupus`
        or `CART` expanded); a label it never produces is a UserError naming the valid ones."""
        vocab = self.classifier.vocabulary
        return flt.resolved(
            modalities=[*MODALITIES, *vocab.modality_needs],
            targets=vocab.target_order,
            indications=vocab.indication_order,
            catalogue=self.classifier.catalogue,
        )

    def landscape(
        self, query: LandscapeQuery, *, complete: bool = False, counts: bool = True, marks: bool = True
    ) -> LandscapeView:
        """The landscape page: filtered, searched, sorted, counted and paged; with `complete`,
        every matching row in order (`matching`)."""
        from monitor.app import browse

        query = self._resolved(query)
        with self.database.session() as s:
            return browse.landscape(s, query, complete=complete, counts=counts, marks=marks)

    def landscape_export(self, query: LandscapeQuery, *, marks: bool) -> Iterator[int | list[dict[str, Any]]]:
        """A download of a view, streamed: first how many rows it holds, then its rows in
        order a batch at a time, all read in one transaction (the count and the rows agree
        though a poll commits meanwhile); the whole view is never held."""
        return self._export(self._resolved(query), marks)  # a bad label fails before a byte is sent

    def _export(self, query: LandscapeQuery, marks: bool) -> Iterator[int | list[dict[str, Any]]]:
        from monitor.app import browse

        with self.database.session() as s:
            yield store.landscape_count(s, query)
            yield from browse.landscape_stream(s, query, marks=marks)

    def _resolved(self, query: LandscapeQuery) -> LandscapeQuery:
        """The query with its labels as the classifier names them (aliases resolved)."""
        flt = self.check_filter(
            StudyFilter(
                modalities=query.modalities,
                targets=query.targets,
                indications=query.indications,
                products=query.products,
            )
        )
        return dataclasses.replace(
            query,
            modalities=flt.modalities,
            targets=flt.targets,
            indications=flt.indications,
            products=flt.products,
        )

    def study_page(self, nct_id: str) -> StudyPage:
        """One study: labels with evidence, current state, sites by country, timeline, versions."""
        from monitor.app import browse

        today = self.now().date()
        with self.database.session() as s:
            row = store.study_row(s, nct_id)
            if row is None:
                raise self._not_tracked(s, nct_id)
            history = self._history(s, nct_id, today)
            versions = store.study_versions(s, nct_id)
            current = versions[-1].study if versions else None
            across, tracked_here = browse.trial_context(s, row)
            return browse.StudyPage(
                study_dict(row),
                dict(row.classification or {}),
                current,
                history,
                browse.sites_by_country(current),
                followed_by=len(
                    {sub.name for sub in self.settings.subscribers if nct_id in sub.nct_ids}
                    | store.followers(s, nct_id)
                ),
                in_query=bool(row.in_query),
                publications=literature.merged(
                    store.study_publications(s, nct_id), current.references if current else ()
                ),
                across=across,
                tracked_here=tracked_here,
            )

    def changes(self, query: ChangesQuery) -> ChangesView:
        """The change stream, grouped by study, newest first."""
        from monitor.app import browse

        query = dataclasses.replace(query, filter=self.check_filter(query.check().filter))
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
        phases: Iterable[str] = (),
        products: Iterable[str] = (),
        registries: Iterable[str] = (),
    ) -> StudyFilter:
        """A StudyFilter checked like a subscriber's: unknown labels are a one-line UserError."""
        from pydantic import ValidationError

        from monitor.config import SubscriberSettings
        from monitor.core.registrations import check_study_id

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
                nct_ids=[check_study_id(x) for x in nct_ids],
                include_out_of_scope=include_out_of_scope,
                phases=list(phases),
                products=list(products),
                registries=list(registries),
            )
        except ValidationError as exc:
            raise UserError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self.check_filter(StudyFilter.from_settings(sub))

    def report(
        self,
        flt: StudyFilter,
        *,
        fmt: str = "md",
        since: date | None = None,
        until: date | None = None,
        out: Path | None = None,
        record: bool = True,
        kinds: Sequence[str] = (),
        web: dict[str, Any] | None = None,
    ) -> ReportResult:
        """A landscape report (compared with the previous one with the same filters). With
        `record`, it becomes that previous one for the next report; a web view does not.
        The period is whole days, `until` included; by default the week up to the day of
        the last successful poll (the data's own date, not the wall clock's)."""
        from monitor.publishing import delivery
        from monitor.publishing import report as reporting

        until_given = until
        with self.database.session() as s:
            since, until = self.report_period(s, since, until)
            rep = reporting.gather(
                s,
                flt,
                now=self.now(),
                since=since,
                until=until,
                opts=delivery.options(self.settings),
                record=record,
                kinds=check_kinds(kinds),
            )
            if web is not None:
                web = {**web, "default_period": until_given is None}
            document = reporting.render(rep, fmt, web)
        if out is not None:
            try:
                out.write_text(document, encoding="utf-8", newline="")
            except OSError as exc:
                raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        return ReportResult(rep, fmt, document, out)

    def report_period(self, s: Any, since: date | None, until: date | None) -> tuple[date, date]:
        """A report's days: as given, else the week up to the last successful poll's day."""
        from datetime import timedelta

        if until is None:
            last_ok = store.last_run(s, outcomes=store.SUCCESSFUL)
            until = (last_ok.finished_at if last_ok and last_ok.finished_at else self.now()).date()
            if since is not None and since > until:
                until = self.now().date()
        if since is None:
            since = until - timedelta(days=6)
        if since > until:
            raise UserError("since is after until")
        return since, until

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
        from monitor.app.browse import per_version
        from monitor.publishing import delivery
        from monitor.publishing import feed as feeds

        study_url = delivery.options(self.settings).study_url
        with self.database.session() as s:
            # gathered once per version of the change log (a reader's client asks often)
            result = per_version(
                s,
                ("feed", flt, tuple(kinds), since, limit, study_url),
                lambda: feeds.gather(
                    s, flt, kinds=tuple(kinds), since=since, limit=limit, study_url=study_url
                ),
                changes=True,
            )
        data = feeds.render(result, self_url=self_url)
        if out is not None:
            write_atomically(out, data)
        return FeedResult(result, data, out)

    # -- the registry, before a first poll ---------------------------------------------------

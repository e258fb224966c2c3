"""The `ctmonitor` command: each subcommand parses, calls one library function, prints.

Exit codes: 0 done; 1 the work failed (registry or database trouble: see the message);
2 bad input (arguments, config, files); 3 another ctmonitor process holds the lock.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import click
from sqlalchemy.orm import Session

from monitor import db as dbmod
from monitor import store
from monitor.config import Settings, load_settings
from monitor.ctgov import CtGovClient
from monitor.describe import KIND_LABELS, change_text, targets_label
from monitor.domain import EventKind, PollSummary, UserError, check_nct_id
from monitor.locking import LockBusy

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3


class Failed(Exception):
    """The command ran but its work failed; exit 1 with this message."""


class Context:
    def __init__(self, config_path: str | None, debug: bool) -> None:
        self.config_path, self.debug = config_path, debug
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @contextmanager
    def database(self) -> Iterator[dbmod.Database]:
        s = self.settings
        try:
            database = dbmod.open_database(s.database_url(), auto_upgrade=s.database.auto_upgrade)
        except dbmod.DatabaseError as exc:
            raise Failed(str(exc)) from None
        try:
            yield database
        finally:
            database.dispose()

    @contextmanager
    def unmigrated_engine(self, failure: str) -> Iterator[Any]:
        """The database engine as it is (no schema check), for the `db` commands; errors in one line."""
        database = dbmod.Database(self.settings.database_url())
        try:
            yield database.engine
        except (Failed, UserError, LockBusy):
            raise
        except Exception as exc:
            raise Failed(f"{failure}: {dbmod.first_line(exc)}") from None
        finally:
            database.dispose()


pass_ctx = click.make_pass_decorator(Context)


def _json_default(o: Any) -> Any:
    if isinstance(o, (datetime, date)):
        return o.isoformat()
    raise TypeError(type(o).__name__)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _parse_date(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    envvar="CTMONITOR_CONFIG",
    metavar="PATH",
    help="Config file (default: $CTMONITOR_CONFIG, else ./config.toml, else built-in defaults).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="ctmonitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Follow CAR T, CAAR T, CAR-Treg and T-cell-engager trials in autoimmune disease on
    ClinicalTrials.gov: poll the registry, keep every change, report it.

    \b
    Quick start:
      ctmonitor poll            # sync with the registry (creates the database)
      ctmonitor status          # what the last polls did
      ctmonitor events --since 2026-11-01
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = Context(config_path, debug)


# -- db ------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(c: Context) -> None:
    """Apply every pending migration.

    \b
    Example:
      ctmonitor db upgrade
    """
    with c.unmigrated_engine("migration failed") as engine:
        before = dbmod.current_revision(engine)
        dbmod.upgrade(engine)
        after = dbmod.current_revision(engine)
    click.echo(
        f"database at {after}" + (f" (was {before or 'empty'})" if before != after else " (already current)")
    )


@db.command("check")
@pass_ctx
def db_check(c: Context) -> None:
    """Check the database: the engine's own integrity check, then ctmonitor's invariants.

    SQLite runs PRAGMA integrity_check and foreign_key_check; PostgreSQL reads every
    table through and looks for invalid indexes. Then: each study's snapshots are
    1..n as the study says, and every snapshot and event belongs to a stored study.
    Read-only. Exit status 1 if anything is wrong.

    \b
    Example:
      ctmonitor db check
    """
    with c.unmigrated_engine("cannot check the database") as engine:
        current = dbmod.current_revision(engine)
        what, problems = dbmod.engine_check(engine)
        if current == dbmod.head_revision():
            with Session(engine) as s:
                problems += store.consistency_problems(s)
            what += "; ctmonitor's invariants (snapshots, events)"
        else:
            problems.append(
                f"schema at {current or 'nothing (empty database)'}, not {dbmod.head_revision()}: "
                "the stored data was not checked (run `ctmonitor db upgrade`)"
            )
    url = dbmod.make_url_safe(c.settings.database_url())
    if not problems:
        click.echo(f"{url}: OK ({what})")
        return
    click.echo(f"{url}: {len(problems)} problem(s) ({what}):")
    for p in problems[:50]:
        click.echo(f"  {p}")
    if len(problems) > 50:
        click.echo(f"  ... and {len(problems) - 50} more")
    raise click.exceptions.Exit(EXIT_FAILED)


@db.command("current")
@pass_ctx
def db_current(c: Context) -> None:
    """Show the schema revision of the database and the one this ctmonitor needs.

    \b
    Example:
      ctmonitor db current
    """
    with c.unmigrated_engine("cannot open the database") as engine:
        current = dbmod.current_revision(engine)
    head = dbmod.head_revision()
    click.echo(
        f"database: {current or 'empty'}; needed: {head}"
        + ("" if current == head else " (run `ctmonitor db upgrade`)")
    )


# -- poll ----------------------------------------------------------------------------


def summary_text(s: PollSummary) -> str:
    """The one paragraph a poll ends with."""
    if s.outcome == "unchanged":
        return (
            f"Poll #{s.run_id}: the registry's data has not changed since the last poll "
            f"(data timestamp {s.data_timestamp}); {s.requests} request, {s.seconds:.1f}s."
        )
    head = f"Poll #{s.run_id} ({s.mode})"
    if s.outcome == "failed":
        head += f" FAILED: {s.error}."
    elif s.outcome == "stopped":
        head += f" STOPPED: {s.error}."
    else:
        head += " done."
    kinds = ", ".join(
        f"{KIND_LABELS.get(k, k).lower()} {n}"
        for k, n in sorted(s.events_by_kind.items(), key=lambda kv: -kv[1])
    )
    body = (
        f" Fetched {s.fetched} of {s.expected} records the registry reported; {s.new_studies} new studies, "
        f"{s.changed_studies} changed; {s.events} events"
        + (f" ({kinds})" if kinds else "")
        + f"; {s.requests} requests in {s.seconds:.1f}s."
    )
    if s.held:
        body += (
            " An unusually large share of studies changed at once (with those of any failed poll since the "
            "last successful one), so these events are HELD for review: "
            "see `ctmonitor events --held`, then `ctmonitor release`."
        )
    if s.outcome == "failed":
        body += " What was stored before the failure is consistent; the next poll covers the rest."
    elif s.outcome == "stopped":
        body += " Every page stored is whole."
    return head + body


def make_client(settings: Settings) -> CtGovClient:
    return CtGovClient(settings.api)


@cli.command()
@click.option("--full", is_flag=True, help="Fetch every study the queries reach, not only recent updates.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def poll(c: Context, full: bool, as_json: bool) -> None:
    """Sync with ClinicalTrials.gov once and record every change.

    Incremental by default (studies updated since the last good poll, with an overlap);
    a full reconciliation runs on the first poll, when the watch queries change, every
    `sync.full_every_days`, or with --full. SIGTERM stops it after the current page
    (exit 1, run recorded as stopped); the next poll covers the rest.

    \b
    Example:
      ctmonitor poll
      ctmonitor --config /etc/ctmonitor.toml poll --full
    """
    from monitor.sync import Syncer

    settings = c.settings
    with c.database() as database, make_client(settings) as client:
        bar: Any = None
        progress: Callable[[int, int | None, str], None] | None = None
        if sys.stderr.isatty() and not as_json:

            def progress(done: int, expected: int | None, name: str) -> None:
                nonlocal bar
                if bar is None:
                    bar = click.progressbar(length=max(expected or 1, 1), label="Polling", file=sys.stderr)
                    bar.__enter__()
                bar.length = max(expected or done, done, 1)
                bar.update(done - bar.pos)

        stop = threading.Event()
        main_thread = threading.current_thread() is threading.main_thread()
        # SIGTERM stops the poll after its current page (each page is committed whole).
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main_thread else None
        try:
            summary = Syncer(database, client, settings, progress=progress).poll(
                full=full, should_stop=stop.is_set
            )
        except LockBusy as exc:
            raise click.exceptions.Exit(_busy(exc)) from None
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
            if bar is not None:
                bar.__exit__(None, None, None)
    if as_json:
        echo_json({**dataclasses.asdict(summary), "events": summary.events})
    else:
        click.echo(summary_text(summary))
    if summary.outcome in ("failed", "stopped"):
        raise click.exceptions.Exit(EXIT_FAILED)


def _busy(exc: Exception) -> int:
    click.echo(f"ctmonitor: {exc}; not starting a second one.", err=True)
    return EXIT_BUSY


# -- status --------------------------------------------------------------------------


def _run_dict(r: Any) -> dict[str, Any]:
    return {
        k: getattr(r, k)
        for k in (
            "id",
            "mode",
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
    }


@cli.command()
@click.option("--runs", "n_runs", default=10, show_default=True, help="How many recent runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def status(c: Context, n_runs: int, as_json: bool) -> None:
    """Show the last polls, their outcome, the totals and the registry's data timestamp.

    \b
    Example:
      ctmonitor status --runs 5
    """
    from monitor import delivery
    from monitor.backfill import progress
    from monitor.service import job_health
    from monitor.sync import utcnow

    with c.database() as database, database.session() as s:
        runs = store.recent_runs(s, n_runs)
        totals = store.study_totals(s)
        held = len(store.list_events(s, held=True))
        last_ok = store.last_run(s, outcomes=store.SUCCESSFUL)
        subscribers = [dataclasses.asdict(x) for x in delivery.subscriber_states(s, c.settings)]
        jobs = [dataclasses.asdict(x) for x in job_health(s, c.settings, utcnow())]
        data = {
            "database": dbmod.make_url_safe(database.url),
            "registry_data_timestamp": last_ok.data_timestamp if last_ok else None,
            "last_successful_poll": last_ok.finished_at if last_ok else None,
            "studies": totals,
            "held_events": held,
            "runs": [_run_dict(r) for r in runs],
            "subscribers": subscribers,
            "jobs": jobs,
            "backfill": progress(s),
        }
    if as_json:
        echo_json(data)
        return
    click.echo(f"Database: {data['database']}")
    if last_ok:
        click.echo(
            f"Last successful poll: #{last_ok.id} at {last_ok.finished_at:%Y-%m-%d %H:%M} UTC; "
            f"registry data as of {last_ok.data_timestamp}"
        )
    else:
        click.echo("No successful poll yet: run `ctmonitor poll`.")
    click.echo(
        f"Studies: {totals['tracked']} tracked ({totals['in_query']} in the watch queries, "
        f"{totals['left_query']} followed by id after leaving them), {totals['gone']} gone from the "
        f"registry, {totals['merged']} renumbered"
    )
    if held:
        click.echo(f"HELD: {held} events wait for review (`ctmonitor events --held`, `ctmonitor release`)")
    bf = data["backfill"]
    if any(bf[k] for k in ("done", "empty", "failed", "running")) or (last_ok and bf["waiting"]):
        line = (
            f"Registry histories: {bf['done']} backfilled, {bf['empty']} with none listed, "
            f"{bf['failed']} failed, {bf['waiting']} in scope waiting (`ctmonitor backfill`)"
        )
        if bf["last_failure"]:
            line += f"\n  last failure: {bf['last_failure']}"
        click.echo(line)
    if runs:
        click.echo("Recent polls:")
        for r in runs:
            line = (
                f"  #{r.id:<4} {r.started_at:%Y-%m-%d %H:%M}  {r.mode:<11} {r.outcome:<9} "
                f"fetched {r.fetched}/{r.expected}  new {r.new_studies}  changed {r.changed_studies}  "
                f"events {r.events}  requests {r.requests}"
            )
            if r.held:
                line += "  HELD"
            if r.error:
                line += f"\n         error: {r.error}"
            click.echo(line)
    if jobs:
        click.echo(f"Service jobs (`ctmonitor run`, time zone {c.settings.schedule.timezone}):")
        for j in jobs:
            nxt = f"next {j['next_run']:%Y-%m-%d %H:%M %Z}" if j["next_run"] else "off"
            last = (
                f"last {j['last_started']:%Y-%m-%d %H:%M} UTC {j['last_outcome']}"
                if j["last_started"]
                else "never run"
            )
            line = f"  {j['job']:<8} {nxt}; {last}"
            if j["failures_in_a_row"]:
                line += f"; {j['failures_in_a_row']} failures in a row: {j['last_detail']}"
            click.echo(line)
    if subscribers:
        click.echo("Digests:")
        for sub in subscribers:
            last = f"last sent {sub['last_sent_at']:%Y-%m-%d %H:%M}" if sub["last_sent_at"] else "never sent"
            line = f"  {sub['name']:<20} {last}; {sub['pending']} changes not yet mailed or filtered out"
            if sub["last_failure"]:
                when = f"{sub['last_failure_at']:%Y-%m-%d %H:%M}"
                line += f"\n    LAST ATTEMPT FAILED {when}: {sub['last_failure']} (the changes stay pending)"
            click.echo(line)


# -- events --------------------------------------------------------------------------


def _event_dict(e: Any) -> dict[str, Any]:
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
        "held": e.held,
        "text": change_text(e.kind, e.field, e.before, e.after),
    }


KIND_CHOICES = sorted(k.value for k in EventKind)


@cli.command()
@click.option("--since", help="Only events detected on or after this date (YYYY-MM-DD).")
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(KIND_CHOICES), help="Only this kind (repeatable)."
)
@click.option("--study", "nct", help="Only this study (NCT id).")
@click.option("--held", is_flag=True, help="Only events held for review.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def events(
    c: Context,
    since: str | None,
    kinds: tuple[str, ...],
    nct: str | None,
    held: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """The change log, oldest first.

    \b
    Examples:
      ctmonitor events --since 2026-11-01
      ctmonitor events --study NCT05085418 --kind status_change
      ctmonitor events --held
    """
    since_dt = _parse_date(since, "--since")
    nct_id = check_nct_id(nct) if nct else None
    with c.database() as database, database.session() as s:
        rows = [
            _event_dict(e)
            for e in store.list_events(
                s, since=since_dt, kinds=kinds, nct_id=nct_id, held=True if held else None, limit=limit
            )
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No events match.")
        return
    for e in rows:
        flag = " [HELD]" if e["held"] else ""
        click.echo(
            f"{e['detected_at']:%Y-%m-%d}  {e['nct_id']}  {KIND_LABELS.get(e['kind'], e['kind'])}: "
            f"{e['text']}  (registry {e['registry_date'] or '?'}){flag}"
        )


@cli.command()
@click.option("--run", "run_id", type=int, help="Release only this run's events (default: all held).")
@pass_ctx
def release(c: Context, run_id: int | None) -> None:
    """Release events held for review so that digests include them.

    \b
    Example:
      ctmonitor release --run 42
    """
    from monitor.sync import utcnow

    with c.database() as database, database.session() as s:
        n = store.release_events(s, run_id=run_id, now=utcnow())
    click.echo(f"released {n} events" if n else "no held events to release")


# -- classification ------------------------------------------------------------------


def _classification_text(nct: str, title: str, c: Any) -> str:
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


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def classify(c: Context, files: tuple[str, ...], as_json: bool) -> None:
    """Classify study records saved as API JSON (one study, or a /studies page), with the evidence.

    Reads no database and no network: what you see is what the poll would store.

    \b
    Example:
      ctmonitor classify NCT05938725.json page.json --json
    """
    from pathlib import Path

    from monitor.classify import Classifier
    from monitor.localapi import load_records
    from monitor.normalize import RecordError, to_study

    classifier = Classifier.from_settings(c.settings)
    out = []
    for name in files:
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
            out.append((study, classifier.classify(study)))
    if as_json:
        echo_json([{"nct_id": st.nct_id, "title": st.title, **cl.to_dict()} for st, cl in out])
        return
    click.echo("\n\n".join(_classification_text(st.nct_id, st.title, cl) for st, cl in out))


@cli.command()
@click.option("--modality", help="Only this modality (CAR-T, CAAR-T, CAR-Treg, CAR-NK, bispecific, other).")
@click.option("--target", help="Only studies with this antigen among their targets (e.g. CD19, BCMA).")
@click.option("--indication", help="Only this indication group (e.g. SLE, 'myasthenia gravis').")
@click.option("--status", help="Only this overall status (e.g. RECRUITING).")
@click.option(
    "--needs-review", is_flag=True, help="Only studies whose labels are ambiguous or contradictory."
)
@click.option("--all", "include_all", is_flag=True, help="Include studies out of scope (with the reason).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def studies(
    c: Context,
    modality: str | None,
    target: str | None,
    indication: str | None,
    status: str | None,
    needs_review: bool,
    include_all: bool,
    as_json: bool,
) -> None:
    """The current landscape: tracked studies in scope with their labels and status.

    \b
    Examples:
      ctmonitor studies --modality CAR-T --indication SLE
      ctmonitor studies --target BCMA --status RECRUITING --json
      ctmonitor studies --needs-review
    """
    from monitor.describe import phases_label, status_label

    with c.database() as database, database.session() as s:
        rows = store.list_studies(
            s,
            modality=modality,
            target=target,
            indication=indication,
            status=status,
            needs_review=needs_review,
            in_scope=None if include_all else True,
        )
    data = [
        {
            "nct_id": r.nct_id,
            "title": r.brief_title,
            "status": r.overall_status,
            "phases": r.phases.split("|") if r.phases else [],
            "sponsor": r.lead_sponsor,
            "countries": r.countries.split("|") if r.countries else [],
            "in_scope": r.in_scope,
            "scope_reason": r.scope_reason,
            "modality": r.modality,
            "targets": r.targets.split("|") if r.targets else [],
            "cell_source": r.cell_source,
            "product": r.product,
            "indications": r.indications.split("|") if r.indications else [],
            "needs_review": r.needs_review,
            "review": (r.classification or {}).get("review", []),
            "curated": (r.classification or {}).get("curated", []),
            "last_update_post_date": r.last_update_post_date,
        }
        for r in rows
    ]
    if as_json:
        echo_json(data)
        return
    if not data:
        click.echo("No studies match.")
        return
    for d in data:
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
        click.echo(
            f"{d['nct_id']}  {status_label(d['status']):<24} {phases_label(d['phases']):<16} {labels}"
            f"{scope}{flags}\n             {d['title']} — {d['sponsor'] or 'no sponsor'}"
        )
    click.echo(f"{len(data)} studies")


@cli.command()
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Relabel every study, not only those labelled with an older vocabulary or overrides file.",
)
@pass_ctx
def reclassify(c: Context, everything: bool) -> None:
    """Relabel stored studies after the vocabulary or the overrides changed, without fetching.

    Studies that move in or out of scope get an event, as they would in a poll.

    \b
    Example:
      ctmonitor reclassify
    """
    from monitor.classify import Classifier
    from monitor.locking import exclusive
    from monitor.sync import reclassify as relabel
    from monitor.sync import utcnow

    classifier = Classifier.from_settings(c.settings)
    with c.database() as database:
        try:
            with exclusive(database.engine):
                done, events = relabel(
                    database, classifier, run_id=None, now=utcnow(), only_stale=not everything
                )
        except LockBusy as exc:
            raise click.exceptions.Exit(_busy(exc)) from None
    click.echo(
        f"relabelled {done} studies; {events} moved in or out of scope"
        if done
        else "every study is already labelled with the current vocabulary and overrides"
    )


# -- digests ---------------------------------------------------------------------------


@cli.command()
@click.option(
    "--preview", "mode", flag_value="preview", default=True, help="Write files; send nothing (default)."
)
@click.option("--send", "mode", flag_value="send", help="Mail every digest that is due, exactly once.")
@click.option("--subscriber", metavar="NAME", help="Only this subscriber (a [[subscribers]] name).")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="With --preview: folder for NAME.html, NAME.txt and NAME.eml (default: digest.preview_dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome per subscriber as JSON.")
@pass_ctx
def digest(c: Context, mode: str, subscriber: str | None, out: str | None, as_json: bool) -> None:
    """Build each subscriber's digest of what changed since their last one.

    --preview writes the HTML, the plain text and the whole message (.eml) without
    sending or marking anything. --send mails what is due; events count as delivered
    only once the mail server accepted the message, so a failure leaves them for the
    next try (exit code 1). A subscriber's first digest is a landscape summary.

    \b
    Example:
      ctmonitor digest --preview --subscriber lupus-team --out /tmp/digests
      CTMONITOR_SMTP_PASSWORD=... ctmonitor digest --send
    """
    from pathlib import Path

    from monitor import delivery
    from monitor.classify import Classifier
    from monitor.mailer import SmtpMailer
    from monitor.sync import utcnow

    settings = c.settings
    classifier = Classifier.from_settings(settings)
    if mode == "send" and out:
        raise click.BadParameter("--out goes with --preview", param_hint="--out")
    with c.database() as database:
        if mode == "preview":
            folder = Path(out) if out else settings.path(settings.digest.preview_dir)
            assert folder is not None
            outcomes = delivery.preview(
                database, settings, classifier, now=utcnow(), out_dir=folder, subscriber=subscriber
            )
        else:
            mailer = SmtpMailer(settings.smtp)
            try:
                outcomes = delivery.send_due(
                    database, settings, classifier, mailer, now=utcnow(), subscriber=subscriber
                )
            except LockBusy as exc:
                raise click.exceptions.Exit(_busy(exc)) from None
    if as_json:
        echo_json([dataclasses.asdict(o) for o in outcomes])
    else:
        for o in outcomes:
            click.echo(o.line())
    if any(o.status == "failed" for o in outcomes):
        raise click.exceptions.Exit(EXIT_FAILED)


# -- coordinator tools: backfill, history, diff ------------------------------------------


@cli.command()
@click.argument("nct_ids", nargs=-1, metavar="[NCT...]")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help="At most this many studies when no NCT id is given (default: backfill.studies_per_run; 0: all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome per study as JSON.")
@pass_ctx
def backfill(c: Context, nct_ids: tuple[str, ...], limit: int | None, as_json: bool) -> None:
    """Fetch the registry's own version history of studies, so their timelines start at
    registration rather than at our first poll.

    Without NCT ids: the studies in scope whose history is not backfilled yet (an
    interrupted run resumes where it stopped). One request for a study's version list,
    then one per version older than our first poll, at the api rate limit. The versions
    are stored as snapshots and their changes as events marked "backfill": they show in
    `ctmonitor history` and `ctmonitor events`, never in digests.

    \b
    Example:
      ctmonitor backfill
      ctmonitor backfill NCT05938725 NCT06359041
    """
    from monitor.backfill import Backfiller

    ids = [check_nct_id(x) for x in nct_ids]
    settings = c.settings
    with c.database() as database:
        if ids:
            with database.session() as s:
                tracked = store.tracked_ids(s, ids)
            if missing := [x for x in ids if x not in tracked]:
                raise UserError(f"{missing[0]} is not tracked: run `ctmonitor poll` first, or check the id")
        progress = None
        if sys.stderr.isatty() and not as_json:

            def progress(nct: str, outcome: str) -> None:
                click.echo(f"  {nct}: {outcome}", err=True)

        with make_client(settings) as client:
            chosen = limit if limit is not None else settings.backfill.studies_per_run
            summary = Backfiller(database, client, progress=progress).run(ids or None, limit=chosen or None)
    if as_json:
        echo_json(summary.to_json())
    else:
        for st in summary.studies:
            if st.outcome in ("failed", "empty", "skipped"):
                click.echo(f"{st.nct_id}: {st.outcome}: {st.detail}")
            else:
                click.echo(
                    f"{st.nct_id}: {st.outcome}: {st.versions_stored} of {st.versions_listed} registry "
                    f"versions stored, {st.events} changes"
                )
        click.echo(summary.text())
    if not summary.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


def _tracked_row(s: Any, nct: str) -> Any:
    from monitor.models import StudyRow

    row = s.get(StudyRow, nct)
    if row is None:
        raise UserError(f"{nct} is not tracked: run `ctmonitor poll` first, or check the id")
    return row


def _history_data(s: Any, nct: str, today: date) -> dict[str, Any]:
    from monitor import timeline

    row = _tracked_row(s, nct)
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


def _history_text(h: dict[str, Any]) -> list[str]:
    from monitor.describe import status_label

    lines = [click.style(f"{h['nct_id']} · {h['title'] or '(no title)'}", bold=True)]
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
    elif bf["status"] == "done":
        lines.append(
            f"Registry history: backfilled ({bf['registry_versions']} versions listed, "
            f"0-{bf['stored_through']} stored)."
        )
    else:
        lines.append(f"Registry history: {bf['status']}" + (f" ({bf['note']})" if bf["note"] else "") + ".")
    lines += ["", click.style("Status", bold=True)]
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
        source = {"backfill": "registry history", "registry-list": "registry version list"}.get(
            p["source"], "our poll"
        )
        rows.append((since, p["began"], status_label(p["status"]), span, source))
    span_width = max([len(r[3]) for r in rows] + [15])
    for since, began, label, span, source in rows:
        lines.append(f"  {since} {began}  {label:<{width}}  {span:<{span_width}} ({source})")
    lines += ["", click.style("Changes, oldest first", bold=True) + "  (R: registry history, P: our polls)"]
    if not h["changes"]:
        lines.append("  none recorded")
    for ch in h["changes"]:
        mark = "R" if ch["origin"] == "backfill" else "P"
        held = click.style(" [HELD]", fg="yellow") if ch["held"] else ""
        # The poll's "new study" is where our own record starts, not the registration.
        label = "First polled" if ch["kind"] == "new_study" else ch["label"]
        lines.append(f"  {ch['date']}  {mark}  {label}: {ch['text']}{held}")
    versions = " · ".join(f"{v['label']} {v['date']}" for v in h["versions"])
    lines += ["", f"Versions (for `ctmonitor diff --from/--to`): {versions}"]
    return lines


@cli.command()
@click.argument("nct_ids", nargs=-1, required=True, metavar="NCT...")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def history(c: Context, nct_ids: tuple[str, ...], as_json: bool) -> None:
    """A study's timeline: every status with the date it began and how long it lasted
    (a first status seen after the registration shows "by" the date we first saw it
    and "at least" so many days), then every tracked change, oldest first, marked as
    seen by our polls (P) or taken from the registry's own history (R, see
    `ctmonitor backfill`).

    \b
    Example:
      ctmonitor history NCT05938725
      ctmonitor history NCT05938725 NCT06359041 --json
    """
    from monitor.sync import utcnow

    ids = [check_nct_id(x) for x in nct_ids]
    today = utcnow().date()
    with c.database() as database, database.session() as s:
        data = [_history_data(s, nct, today) for nct in ids]
    if as_json:
        echo_json(data if len(data) > 1 else data[0])
        return
    for i, h in enumerate(data):
        if i:
            click.echo("")
        for line in _history_text(h):
            click.echo(line)


@cli.command("diff")
@click.argument("nct")
@click.option("--since", metavar="DATE", help="Compare the version current before DATE with the latest.")
@click.option(
    "--from", "from_ref", metavar="VERSION", help="latest, first, rN (registry version), #N or a date."
)
@click.option("--to", "to_ref", metavar="VERSION", help="As --from (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def diff_command(
    c: Context, nct: str, since: str | None, from_ref: str | None, to_ref: str | None, as_json: bool
) -> None:
    """What changed in a study's tracked fields between two versions: status, why stopped,
    enrollment, dates, phase, conditions, interventions and arms, sponsor, sites (added,
    removed, status), results, titles. Before in red, after in green on a terminal.

    Without options: the latest version against the one before it. Versions are those
    `ctmonitor history` lists: rN is registry version N (backfilled), #N our N-th poll
    snapshot, a date the version current on that day.

    \b
    Example:
      ctmonitor diff NCT05938725
      ctmonitor diff NCT05938725 --since 2026-01-01
      ctmonitor diff NCT05938725 --from r0 --to latest
    """
    from monitor import timeline
    from monitor.describe import change_parts

    nct_id = check_nct_id(nct)
    if since and from_ref:
        raise click.BadParameter("use --since or --from, not both", param_hint="--since")
    if since:
        _parse_date(since, "--since")
    with c.database() as database, database.session() as s:
        _tracked_row(s, nct_id)
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
    comp = timeline.compare(nct_id, old, new)
    if as_json:
        echo_json(comp.to_json())
        return
    n = len(comp.changes)
    head = f"{nct_id}: {old.describe()} -> {new.describe()}: "
    if old.seq == new.seq:
        reason = "the same version; nothing to compare" if len(versions) > 1 else "only one version stored"
        click.echo(head + reason)
        return
    click.echo(head + (f"{n} change{'s' if n != 1 else ''}" if n else "no change in the tracked fields"))
    for ch in comp.changes:
        what, before, after = change_parts(ch.kind.value, ch.field, ch.before, ch.after)
        if before is not None and after is not None:
            text = f"{click.style(before, fg='red')} -> {click.style(after, fg='green')}"
        elif after is not None:
            text = click.style(f"+ {after}", fg="green")
        elif before is not None:
            text = click.style(f"- {before}", fg="red")
        else:
            text = ""
        click.echo(f"  {what}: {text}")


# -- reports ---------------------------------------------------------------------------


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The subscriber filters, as options (each may be repeated: any of)."""
    for name, dest, help_text in reversed(
        [
            ("modality", "modalities", "CAR-T, CAAR-T, CAR-Treg, CAR-NK, bispecific or other."),
            ("target", "targets", "An antigen, e.g. CD19 (also matches CD19/BCMA)."),
            ("indication", "indications", "An indication group, e.g. SLE, 'lupus nephritis'."),
            ("status", "statuses", "Current overall status, e.g. RECRUITING."),
            ("sponsor", "sponsors", "Part of the lead sponsor's name."),
            ("country", "countries", "A country with at least one site."),
        ]
    ):
        fn = click.option(f"--{name}", dest, multiple=True, metavar="VALUE", help=help_text)(fn)
    fn = click.option("--study", "nct_ids", multiple=True, metavar="NCT", help="Always include this study.")(
        fn
    )
    return click.option(
        "--include-out-of-scope", is_flag=True, help="Also studies classified out of scope (oncology...)."
    )(fn)


def make_filter(settings: Settings, values: dict[str, Any]) -> Any:
    """A StudyFilter from the filter options, checked like a subscriber's (one-line errors)."""
    from pydantic import ValidationError

    from monitor.classify import Classifier
    from monitor.config import SubscriberSettings
    from monitor.delivery import subscriber_filter

    try:
        sub = SubscriberSettings(
            name="cli",
            email="cli@example.org",
            modalities=list(values["modalities"]),
            targets=list(values["targets"]),
            indications=list(values["indications"]),
            statuses=list(values["statuses"]),
            sponsors=list(values["sponsors"]),
            countries=list(values["countries"]),
            nct_ids=[check_nct_id(x) for x in values["nct_ids"]],
            include_out_of_scope=values["include_out_of_scope"],
        )
    except ValidationError as exc:
        raise UserError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    return subscriber_filter(sub, Classifier.from_settings(settings))


@cli.command()
@click.option("--since", help="Start of the period for changes and new studies (default: 7 days ago).")
@click.option("--until", help="End of the period (default: now).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "csv", "json"]),
    help="Output format (default: from the --out suffix, else md).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@filter_options
@pass_ctx
def report(
    c: Context, since: str | None, until: str | None, fmt: str | None, out: str | None, **filters: Any
) -> None:
    """A landscape report on demand: the studies in scope today, what changed in the
    period, new registrations, and how the set was selected (compared with the previous
    report with the same filters).

    HTML is one self-contained file with charts (printable); CSV is the study table,
    safe to open in a spreadsheet; JSON holds everything.

    \b
    Example:
      ctmonitor report --out report.html
      ctmonitor report --since 2026-11-01 --indication SLE --modality CAR-T --format md
      ctmonitor report --format csv --out studies.csv
    """
    from pathlib import Path

    from monitor import delivery
    from monitor import report as reporting
    from monitor.sync import utcnow

    start, end = _parse_date(since, "--since"), _parse_date(until, "--until")
    if start and end and start > end:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    if fmt is None:
        suffix = Path(out).suffix.lower().lstrip(".") if out else ""
        fmt = {"htm": "html", "markdown": "md"}.get(suffix, suffix)
        if fmt not in reporting.FORMATS:
            fmt = "md"
    flt = make_filter(c.settings, filters)
    with c.database() as database, database.session() as s:
        rep = reporting.gather(
            s, flt, now=utcnow(), since=start, until=end, opts=delivery.options(c.settings)
        )
        text = reporting.render(rep, fmt)
    if out:
        Path(out).write_text(text, encoding="utf-8", newline="")
        click.echo(
            f"wrote {fmt} report to {out}: {rep.selection.matching} studies, {rep.change_count} changes"
        )
    else:
        click.echo(text, nl=False)


@cli.command()
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write the feed to this file (default: standard output)."
)
@click.option(
    "--kind", "kinds", multiple=True, type=click.Choice(KIND_CHOICES), help="Only this kind (repeatable)."
)
@click.option("--since", help="Only changes detected on or after this date (YYYY-MM-DD).")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(min=1), help="Newest entries kept."
)
@click.option("--self-url", metavar="URL", help="The address the feed will be served at (its rel=self link).")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON instead of Atom.")
@filter_options
@pass_ctx
def feed(
    c: Context,
    out: str | None,
    kinds: tuple[str, ...],
    since: str | None,
    limit: int,
    self_url: str | None,
    as_json: bool,
    **filters: Any,
) -> None:
    """An Atom feed of the classified change stream, for any feed reader: one entry per
    study and poll that changed it, with stable ids, so regenerating it after every poll
    (or from cron) never shows a change twice. Filters as for subscribers and reports.

    Held, backfilled and first-sync events are left out, as in digests. The file is
    replaced atomically, so a web server never serves half of it.

    \b
    Example:
      ctmonitor feed --modality CAAR-T --kind new_study --out caar-t-new.xml
      ctmonitor feed --indication SLE --indication 'lupus nephritis' --modality CAR-T \\
          --kind status_change --out lupus-car-t-status.xml
    """
    import os
    import tempfile
    from pathlib import Path

    from monitor import feed as feeds

    since_dt = _parse_date(since, "--since")
    flt = make_filter(c.settings, filters)
    with c.database() as database, database.session() as s:
        result = feeds.gather(
            s, flt, kinds=kinds, since=since_dt, limit=limit, study_url=c.settings.digest.study_url
        )
    if as_json:
        echo_json(feeds.as_json(result))
        return
    data = feeds.render(result, self_url=self_url)
    if not out:
        click.echo(data.decode("utf-8"), nl=False)
        return
    target = Path(out)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(result.entries)} entries to {out} ({result.title})")


# -- the service --------------------------------------------------------------------------


@cli.command()
@click.option("--jobs", "show_jobs", is_flag=True, help="Print the job table (and missed jobs) and exit.")
@pass_ctx
def run(c: Context, show_jobs: bool) -> None:
    """Run as a service: poll, reconcile and send digests on the [schedule] of the config.

    Jobs: poll (incremental), full (reconciliation), digest (only with subscribers). A
    job missed while the service was down runs once at start (within
    schedule.misfire_grace_hours). SIGTERM or Ctrl-C stops it within seconds: a running
    poll stops after its current page, and the next poll covers the rest.
    Several instances on one PostgreSQL database share the work: a job another instance
    is running is skipped.

    \b
    Example:
      ctmonitor --config /etc/ctmonitor/config.toml run
      ctmonitor run --jobs
    """
    from monitor.service import Service, never_firing, next_runs

    settings = c.settings
    logging.getLogger().setLevel(logging.DEBUG if c.debug else logging.INFO)
    if not c.debug:  # the service's own log lines, not the migration runner's context chatter
        logging.getLogger("alembic").setLevel(logging.WARNING)
    with c.database() as database:
        service = Service(settings, database)
        if show_jobs:
            tz = settings.schedule.timezone
            for job, nxt in next_runs(settings, service.now()).items():
                expr = getattr(settings.schedule, job)
                click.echo(f"{job:<8} {expr:<22} next {nxt:%Y-%m-%d %H:%M %Z}" if nxt else f"{job:<8} {expr}")
            for job, due in service.missed():
                click.echo(f"{job:<8} missed at {due:%Y-%m-%d %H:%M %Z}: would run at start")
            click.echo(f"(time zone {tz})")
            return
        for warning in never_firing(settings, service.now()):
            click.echo(f"ctmonitor: warning: {warning}", err=True)
        click.echo(
            f"ctmonitor service started (time zone {settings.schedule.timezone}); Ctrl-C or SIGTERM stops it"
        )
        service.serve()
        click.echo("ctmonitor service stopped")


@cli.command("check-config")
@click.option(
    "--connect", is_flag=True, help="Also connect to the database, the registry API and the mail server."
)
@pass_ctx
def check_config(c: Context, connect: bool) -> None:
    """Validate the config: keys and types, addresses, cron expressions, subscriber filters,
    the vocabulary and overrides; with --connect, reach every service it names.

    \b
    Example:
      ctmonitor --config /etc/ctmonitor/config.toml check-config --connect
    """
    from monitor.classify import Classifier
    from monitor.delivery import subscriber_filter
    from monitor.mailer import SmtpMailer
    from monitor.service import JOBS, never_firing, upcoming

    settings = c.settings
    classifier = Classifier.from_settings(settings)
    for sub in settings.subscribers:
        subscriber_filter(sub, classifier)
    where = settings.source or "built-in defaults"
    click.echo(
        f"config OK ({where}): {len(settings.queries)} watch queries, "
        f"{len(settings.subscribers)} subscribers, vocabulary {classifier.version}"
    )
    now = datetime.now(UTC)
    click.echo(f"schedule (time zone {settings.schedule.timezone}):")
    for job, times in upcoming(settings, now).items():
        expr = getattr(settings.schedule, job)
        shown = ", ".join(f"{t:%a %Y-%m-%d %H:%M}" for t in times) if times else "never"
        click.echo(f"  {job:<8} {expr:<20} next: {shown}")
    for job in JOBS:
        if job not in upcoming(settings, now):
            reason = "no subscribers" if job == "digest" and getattr(settings.schedule, job) else "off"
            click.echo(f"  {job:<8} {'':<20} ({reason})")
    for warning in never_firing(settings, now):
        click.echo(f"ctmonitor: warning: {warning}", err=True)
    if not connect:
        return
    problems = 0

    def check(name: str, fn: Callable[[], str]) -> None:
        nonlocal problems
        try:
            click.echo(f"  {name}: OK, {fn()}")
        except (Exception, Failed) as exc:
            problems += 1
            click.echo(f"  {name}: FAILED, {dbmod.first_line(exc)}")

    def database() -> str:
        engine = dbmod.Database(settings.database_url())
        try:
            rev = dbmod.current_revision(engine.engine)
        finally:
            engine.dispose()
        url = dbmod.make_url_safe(settings.database_url())
        return f"{url} at schema {rev or 'empty'} (head {dbmod.head_revision()})"

    def api() -> str:
        with make_client(settings) as client:
            info = client.version()
        return f"{settings.api.base_url} data of {info.data_timestamp}"

    def smtp() -> str:
        if not settings.smtp.host:
            return "not configured (digests can only be previewed)"
        return SmtpMailer(settings.smtp).check()

    check("database", database)
    check("registry API", api)
    check("mail server", smtp)
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)
    click.echo("Before the first poll, `ctmonitor doctor` probes the registry with the watch queries.")


@cli.command()
@click.option(
    "--max-requests",
    type=click.IntRange(10, 2000),
    default=150,
    show_default=True,
    help="The probe's request budget (at the client's pace: 150 take about 3 minutes).",
)
@click.option(
    "--flood-at",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="A term that alone brings this many studies into its query is a flood when most of a "
    "sample of them look like no cell or engager therapy.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@pass_ctx
def doctor(c: Context, max_requests: int, flood_at: int, as_json: bool) -> None:
    """Probe the live registry before the first poll: is everything ctmonitor needs there?

    Asks the version endpoint; counts what each watch query reaches and each term of its
    OR lists on its own (a term that floods the query, or finds nothing, is named); reads
    one page with the configured `fields` and checks that every part ctmonitor reads is
    in it; reads one record history. Needs no database. Exit status 0 when everything
    needed works (warnings may remain), 1 otherwise.

    \b
    Example:
      ctmonitor doctor
      ctmonitor --config /etc/ctmonitor.toml doctor --json
    """
    from monitor.doctor import Doctor, report_text

    settings = c.settings
    bar: Any = None

    def progress(done: int, planned: int, what: str) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=planned, label="Probing the registry", file=sys.stderr)
            bar.__enter__()
        bar.length = max(planned, done, 1)
        bar.update(done - bar.pos)

    show = sys.stderr.isatty() and not as_json
    try:
        with make_client(settings) as client:
            report = Doctor(
                client, settings, budget=max_requests, flood_at=flood_at, progress=progress if show else None
            ).run()
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo(report_text(report))
    if not report.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


# -- local API server ------------------------------------------------------------------


@cli.command("serve-local")
@click.argument("data", type=click.Path(exists=True))
@click.option("--port", default=8123, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--data-timestamp", default="2026-11-02T09:00:05", show_default=True, help="What /api/v2/version reports."
)
@click.option(
    "--history",
    type=click.Path(exists=True, file_okay=False),
    help="Also serve the recorded record histories in this folder (one folder per study).",
)
def serve_local(data: str, port: int, data_timestamp: str, history: str | None) -> None:
    """Serve study records (a folder of .json/.jsonl files) as a local ClinicalTrials.gov API.

    For trying ctmonitor offline: point `api.base_url` at http://127.0.0.1:PORT.

    \b
    Example:
      ctmonitor serve-local tests/data/registry --port 8123
      ctmonitor serve-local tests/data/domain --history tests/data/history
    """
    import time

    from monitor.localapi import LocalApiServer, Registry, load_histories, load_records

    registry = Registry()
    try:
        records = load_records(data)
        if history:
            registry.histories, current = load_histories(history)
            records += current  # a study's current record beside its history wins
        registry.replace(records, data_timestamp)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load records from {data}: {exc}") from None
    try:
        server = LocalApiServer(registry, port=port).start()
    except OSError as exc:
        raise Failed(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    click.echo(f"serving {len(registry.studies)} studies at {server.base_url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


@cli.command()
@click.option(
    "--out",
    default="out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for the demo database and outputs.",
)
@click.pass_context
def demo(ctx: click.Context, out: str) -> None:
    """Run the whole job offline against a local registry of bundled real records.

    Polls once, moves the registry a few days forward (a study opens recruitment, one is
    suspended, one adds sites, a new one is registered), polls again and writes what
    changed to OUT. Uses the watch queries of --config (or the defaults).

    \b
    Example:
      ctmonitor demo --out out
    """
    from pathlib import Path

    from monitor.demo import run_demo

    c: Context = ctx.obj
    run_demo(Path(out), Path(c.config_path) if c.config_path else None, echo=click.echo)


# -- entry point -----------------------------------------------------------------------


# click >= 8.2 raises this for a group run without a command; older versions print the help themselves.
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one-line errors, no tracebacks (unless --debug)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="ctmonitor", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _NO_ARGS_IS_HELP as exc:  # a bare group: its help is the answer
        exc.show()
        return EXIT_USAGE
    except click.UsageError as exc:  # one line, like every other error, with where to look
        where = exc.ctx.command_path if exc.ctx else "ctmonitor"
        message = _one_line(exc.format_message()).removesuffix(".")
        click.echo(f"ctmonitor: error: {message} (see `{where} --help`)", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"ctmonitor: error: {_one_line(exc.format_message())}", err=True)
        return EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILED
    except UserError as exc:
        click.echo(f"ctmonitor: error: {exc}", err=True)
        return EXIT_USAGE
    except LockBusy as exc:
        return _busy(exc)
    except Failed as exc:
        click.echo(f"ctmonitor: {exc}", err=True)
        return EXIT_FAILED
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"ctmonitor: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)",
            err=True,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

"""The `ctmonitor` command: each subcommand parses, calls one Application method, prints.

Exit codes: 0 done; 1 the work failed (registry or database trouble: see the message);
2 bad input (arguments, config, files); 3 another ctmonitor process holds the lock.
"""

from __future__ import annotations

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
from monitor.app import Application, WorkFailed
from monitor.config import Settings, load_settings
from monitor.ctgov import CtGovClient
from monitor.domain import EventKind, UserError, check_nct_id
from monitor.locking import LockBusy

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3


Failed = WorkFailed  # the command ran but its work failed; exit 1 with this message


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
    def app(self) -> Iterator[Application]:
        """The application over the configured database (opened on first use, closed after)."""
        with Application(self.settings) as application:
            yield application

    @contextmanager
    def database(self) -> Iterator[dbmod.Database]:
        with self.app() as application:
            yield application.database

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


def emit(result: Any, as_json: bool) -> None:
    """Print a use case's result: its JSON, or its text."""
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.text())


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
      ctmonitor serve           # the same in the browser, http://127.0.0.1:8000
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
    with c.app() as app:
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
            result = app.poll(full=full, should_stop=stop.is_set, progress=progress)
        except LockBusy as exc:
            raise click.exceptions.Exit(_busy(exc)) from None
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
            if bar is not None:
                bar.__exit__(None, None, None)
    emit(result, as_json)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


def _busy(exc: Exception) -> int:
    click.echo(f"ctmonitor: {exc}; not starting a second one.", err=True)
    return EXIT_BUSY


# -- status --------------------------------------------------------------------------


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
    with c.app() as app:
        emit(app.status(runs=n_runs), as_json)


# -- events --------------------------------------------------------------------------


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
    with c.app() as app:
        result = app.events(
            since=since_dt, kinds=kinds, nct_id=nct_id, held=True if held else None, limit=limit
        )
    emit(result, as_json)


@cli.command()
@click.option("--run", "run_id", type=int, help="Release only this run's events (default: all held).")
@pass_ctx
def release(c: Context, run_id: int | None) -> None:
    """Release events held for review so that digests include them.

    \b
    Example:
      ctmonitor release --run 42
    """
    with c.app() as app:
        click.echo(app.release(run_id=run_id).text())


# -- classification ------------------------------------------------------------------


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
    with c.app() as app:
        emit(app.classify_files(files), as_json)


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
    with c.app() as app:
        result = app.studies(
            modality=modality,
            target=target,
            indication=indication,
            status=status,
            needs_review=needs_review,
            include_out_of_scope=include_all,
        )
    emit(result, as_json)


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
    with c.app() as app:
        try:
            result = app.reclassify(everything=everything)
        except LockBusy as exc:
            raise click.exceptions.Exit(_busy(exc)) from None
    click.echo(result.text())


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

    if mode == "send" and out:
        raise click.BadParameter("--out goes with --preview", param_hint="--out")
    with c.app() as app:
        if mode == "preview":
            result = app.preview_digests(out_dir=Path(out) if out else None, subscriber=subscriber)
        else:
            try:
                result = app.send_digests(subscriber=subscriber)
            except LockBusy as exc:
                raise click.exceptions.Exit(_busy(exc)) from None
    if as_json:
        echo_json(result.to_json())
    elif result.outcomes:
        click.echo(result.text())
    if not result.ok:
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
    ids = [check_nct_id(x) for x in nct_ids]
    progress = None
    if sys.stderr.isatty() and not as_json:

        def progress(nct: str, outcome: str) -> None:
            click.echo(f"  {nct}: {outcome}", err=True)

    with c.app() as app:
        result = app.backfill(ids, limit=limit, progress=progress)
    emit(result, as_json)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


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
    ids = [check_nct_id(x) for x in nct_ids]
    with c.app() as app:
        result = app.history(ids)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.text(click.style))


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
    nct_id = check_nct_id(nct)
    if since and from_ref:
        raise click.BadParameter("use --since or --from, not both", param_hint="--since")
    if since:
        _parse_date(since, "--since")
    with c.app() as app:
        result = app.compare(nct_id, since=since, from_ref=from_ref, to_ref=to_ref)
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.text(click.style))


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


def make_filter(app: Application, values: dict[str, Any]) -> Any:
    """A StudyFilter from the filter options, checked like a subscriber's (one-line errors)."""
    return app.study_filter(**values)


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

    from monitor import report as reporting

    start, end = _parse_date(since, "--since"), _parse_date(until, "--until")
    if start and end and start > end:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    if fmt is None:
        suffix = Path(out).suffix.lower().lstrip(".") if out else ""
        fmt = {"htm": "html", "markdown": "md"}.get(suffix, suffix)
        if fmt not in reporting.FORMATS:
            fmt = "md"
    with c.app() as app:
        result = app.report(
            make_filter(app, filters), fmt=fmt, since=start, until=end, out=Path(out) if out else None
        )
    click.echo(result.text(), nl=bool(out))


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
    from pathlib import Path

    since_dt = _parse_date(since, "--since")
    with c.app() as app:
        result = app.feed(
            make_filter(app, filters),
            kinds=kinds,
            since=since_dt,
            limit=limit,
            self_url=self_url,
            out=Path(out) if out and not as_json else None,
        )
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.text(), nl=bool(out))


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
    from monitor.schedule import never_firing, next_runs
    from monitor.service import Service

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
    from monitor.schedule import JOBS, never_firing, upcoming

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
        with c.app() as app:
            result = app.doctor(
                max_requests=max_requests, flood_at=flood_at, progress=progress if show else None
            )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    emit(result, as_json)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


# -- the web interface ------------------------------------------------------------------


@cli.command()
@click.option("--host", help="Address to bind (default: web.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: web.port, 8000).")
@pass_ctx
def serve(c: Context, host: str | None, port: int | None) -> None:
    """Serve ctmonitor in the browser: the landscape, a page per study with its timeline
    and version comparisons, every change, reports, Atom feeds, status and a JSON API
    under /api/. Read-only: it never polls or mails (that is `ctmonitor run`), and a poll
    running beside it is never blocked.

    \b
    Example:
      ctmonitor serve                     # http://127.0.0.1:8000
      CTMONITOR_DATABASE_URL=sqlite:///out/demo.db ctmonitor serve --port 8080
    """
    import uvicorn

    from monitor.web import create_app

    settings = c.settings
    host, port = host or settings.web.host, port or settings.web.port
    with c.app() as app:
        app.database  # noqa: B018 - open it now: a database problem is one line before serving
        shown = settings.web.base_url or f"http://{host}:{port}"
        click.echo(
            f"ctmonitor web at {shown} (database {dbmod.make_url_safe(app.database.url)}); Ctrl-C stops it"
        )
        level = "debug" if c.debug else "warning"
        try:
            uvicorn.run(create_app(app), host=host, port=port, log_level=level, proxy_headers=True)
        except OSError as exc:
            raise Failed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


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

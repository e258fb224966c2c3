"""Commands that run ctmonitor: the service, config check, doctor, web, local registry, demo."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from monitor.cli.base import (
    EXIT_FAILED,
    Context,
    Failed,
    cli,
    emit,
    make_client,
    pass_ctx,
)
from monitor.core.domain import UserError
from monitor.store import db as dbmod

# -- the service --------------------------------------------------------------------------


@cli.command()
@click.option("--jobs", "show_jobs", is_flag=True, help="Print the job table (and missed jobs) and exit.")
@pass_ctx
def run(c: Context, show_jobs: bool) -> None:
    """Run as a service: poll, reconcile and send digests on the [schedule] of the config.

    Jobs: poll (incremental), full (reconciliation), digest (with subscribers or sign-up). A
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
    from monitor.app.schedule import never_firing, next_runs
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
    from monitor.app.schedule import JOBS, never_firing, upcoming
    from monitor.core.classify import Classifier
    from monitor.publishing.delivery import subscriber_filter
    from monitor.publishing.mailer import SmtpMailer

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
        url = settings.database_url()
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            return f"no database yet at {url.removeprefix('sqlite:///')}; the first poll creates it"
        engine = dbmod.Database(url)
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
@click.option(
    "--mail-folder",
    type=click.Path(file_okay=False),
    help="Write readers' sign-up and account mails into this folder (one .eml each, its link "
    "printed here) instead of sending them: for trying sign-up without a mail server.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (one per core suits a busy site; with several machines, share one "
    "PostgreSQL database).",
)
@pass_ctx
def serve(c: Context, host: str | None, port: int | None, mail_folder: str | None, workers: int) -> None:
    """Serve ctmonitor in the browser: the landscape, a page per study with its timeline
    and version comparisons, every change, reports, Atom feeds, status and a JSON API
    under /api/. Read-only: it never polls or mails (that is `ctmonitor run`), and a poll
    running beside it is never blocked.

    \b
    Without web.base_url, a server on this machine only (127.0.0.1) takes its own address
    as the base URL, so that sign-up and readers' links work when trying it locally.

    \b
    Example:
      ctmonitor serve                     # http://127.0.0.1:8000
      CTMONITOR_DATABASE_URL=sqlite:///out/demo.db ctmonitor serve --port 8080
      ctmonitor --db out/demo.db serve --mail-folder out/mail
      ctmonitor serve --workers 4         # four processes over one database
    """
    import uvicorn

    from monitor.config import ENV_CONFIG, ENV_DB_URL
    from monitor.web import create_app
    from monitor.web.server import WARM_SECONDS, tune_collector
    from monitor.web.workers import BASE_URL_ENV, MAIL_FOLDER_ENV

    settings = c.settings
    host, port = host or settings.web.host, port or settings.web.port
    if not settings.web.base_url and host in ("127.0.0.1", "localhost", "::1"):
        local = f"http://{'[::1]' if host == '::1' else host}:{port}"
        settings = settings.model_copy(update={"web": settings.web.model_copy(update={"base_url": local})})
        c.use(settings)
    options: dict[str, Any] = {}
    if mail_folder:
        options["mailer_factory"] = lambda: PrintingFolderMailer(Path(mail_folder))
    with c.app(**options) as app:
        app.database  # noqa: B018 - open it now: a database problem is one line before serving
        app.sync_subscribers()  # config.toml's [[subscribers]], brought in at start
        shown = settings.web.base_url or f"http://{host}:{port}"
        click.echo(
            f"ctmonitor web at {shown} (database {dbmod.make_url_safe(app.database.url)}); Ctrl-C stops it"
        )
        level = "debug" if c.debug else "warning"
        try:
            if workers > 1:
                # each worker builds its own application (monitor.web.workers) from these
                os.environ[ENV_DB_URL] = app.database.url
                if c.config_path:
                    os.environ[ENV_CONFIG] = str(Path(c.config_path).resolve())
                if settings.web.base_url:
                    os.environ[BASE_URL_ENV] = settings.web.base_url
                if mail_folder:
                    os.environ[MAIL_FOLDER_ENV] = str(Path(mail_folder).resolve())
                uvicorn.run(
                    "monitor.web.workers:app_from_environment",
                    factory=True,
                    workers=workers,
                    host=host,
                    port=port,
                    log_level=level,
                    proxy_headers=True,
                )
            else:
                asgi = create_app(app, warm_every=WARM_SECONDS)
                tune_collector()
                uvicorn.run(asgi, host=host, port=port, log_level=level, proxy_headers=True)
        except OSError as exc:
            raise Failed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class PrintingFolderMailer:
    """Mails into a folder (FolderMailer) and says on the console where each went and the
    first link it carries: `serve --mail-folder`, so a person trying sign-up can follow
    their confirmation link."""

    def __init__(self, folder: Path) -> None:
        from monitor.publishing.mailer import FolderMailer

        self.inner = FolderMailer(folder)

    def send(self, msg: Any) -> None:
        import re

        self.inner.send(msg)
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        link = re.search(r"https?://\S+", text)
        where = self.inner.sent[-1]
        click.echo(
            f"mail to {msg['To']}: {msg['Subject']} → {where}" + (f"\n  {link.group(0)}" if link else "")
        )


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

    from monitor.registry.localdata import load_histories, load_records
    from monitor.registry.localserver import LocalApiServer, Registry

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

    from monitor.cli.demo import run_demo

    c: Context = ctx.obj
    run_demo(Path(out), Path(c.config_path) if c.config_path else None, echo=click.echo)

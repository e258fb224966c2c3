"""Commands that follow the registry: poll, status, events, release, classify, studies, reclassify."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from monitor.cli.base import (
    EXIT_FAILED,
    Context,
    _busy,
    _parse_day,
    cli,
    emit,
    kind_option,
    label_filter_options,
    pass_ctx,
)
from monitor.core.registrations import check_study_id
from monitor.store.locking import LockBusy

# -- poll ----------------------------------------------------------------------------


@cli.command()
@click.option("--full", is_flag=True, help="Fetch every study the queries reach, not only recent updates.")
@click.option(
    "--registry",
    type=click.Choice(["ctgov", "ctis"]),
    default="ctgov",
    show_default=True,
    help="ctgov: ClinicalTrials.gov; ctis: the EU's CTIS ([ctis] in config.toml).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def poll(c: Context, full: bool, registry: str, as_json: bool) -> None:
    """Sync with ClinicalTrials.gov (or EU CTIS) once and record every change.

    Incremental by default (studies updated since the last good poll, with an overlap);
    a full reconciliation runs on the first poll, when the watch queries change, every
    `sync.full_every_days`, or with --full. SIGTERM stops it after the current page
    (exit 1, run recorded as stopped); the next poll covers the rest.

    \b
    Example:
      ctmonitor poll
      ctmonitor --config /etc/ctmonitor.toml poll --full
      ctmonitor poll --registry ctis
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
            result = app.poll(full=full, should_stop=stop.is_set, progress=progress, registry=registry)
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


# -- status --------------------------------------------------------------------------


@cli.command()
@click.option("--runs", "n_runs", default=10, show_default=True, help="How many recent runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def status(c: Context, n_runs: int, as_json: bool) -> None:
    """Show the last polls, their outcome, the totals and each registry's freshness
    (ClinicalTrials.gov's data timestamp, EU CTIS's last poll, the last ICTRP import).

    \b
    Example:
      ctmonitor status --runs 5
    """
    with c.app() as app:
        emit(app.status(runs=n_runs), as_json)


@cli.command()
@click.option(
    "--revoke",
    "revoke",
    metavar="NAME",
    help="Invalidate every personal link of this subscriber; the next digest carries new ones.",
)
@click.option(
    "--unsubscribe",
    "leave",
    metavar="NAME",
    help="End this subscriber's digest (a request that came by mail, for instance).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def subscribers(c: Context, revoke: str | None, leave: str | None, as_json: bool) -> None:
    """List the subscribers: state (pending, active, paused, unsubscribed), who manages
    them (config.toml or themselves, signed up at /subscribe), channel (masked), last
    digest and pending changes.

    \b
    Example:
      ctmonitor subscribers
      ctmonitor subscribers --revoke web-3fa81c2d9e   # a personal link leaked
      ctmonitor subscribers --unsubscribe lupus-team  # asked by mail to stop
    """
    with c.app() as app:
        if revoke:
            emit(app.revoke_links(revoke), as_json)
        elif leave:
            emit(app.unsubscribe_by_name(leave), as_json)
        else:
            emit(app.subscriber_list(), as_json)


# -- events --------------------------------------------------------------------------


@cli.command()
@click.option("--since", metavar="DATE", help="Only changes on or after this day (YYYY-MM-DD); see --by.")
@click.option("--until", metavar="DATE", help="Only changes on or before this day, included whole.")
@click.option(
    "--by",
    type=click.Choice(["detected", "registry"]),
    default="detected",
    show_default=True,
    help="Which date --since and --until read: when ctmonitor detected the change, or the registry's "
    "update date of the version that made it (backfilled history is then dated when it happened).",
)
@click.option(
    "--origin",
    type=click.Choice(["poll", "backfill"]),
    help="Only changes our polls saw, or only those from the registry's history (backfill).",
)
@kind_option()
@click.option("--study", "nct", help="Only this study (NCT id); its registry history included.")
@click.option(
    "--baseline",
    is_flag=True,
    help="Also the studies the first poll reached (the starting picture, never news otherwise).",
)
@click.option(
    "--importance",
    type=click.IntRange(1, 3),
    default=1,
    show_default=True,
    help="At least: 1 detail, 2 worth knowing, 3 act on it.",
)
@click.option("--held", is_flag=True, help="Only events held for review.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@label_filter_options
@pass_ctx
def events(
    c: Context,
    since: str | None,
    until: str | None,
    kinds: tuple[str, ...],
    nct: str | None,
    baseline: bool,
    importance: int,
    held: bool,
    limit: int | None,
    as_json: bool,
    by: str,
    origin: str | None,
    **filters: Any,
) -> None:
    """The changes, oldest first: the same ones, for the same days and filters, as the
    web's change list, the feeds, reports and digests. Each line: the day ctmonitor
    detected the change, the study, the change, the registry's date; changes from the
    registry's own history (ctmonitor backfill) are marked "registry history".

    The studies the first poll reached are the starting picture, not changes: --baseline
    lists them too. A study registered before the period that the watch reaches now is
    "Newly found", apart from new studies.

    \b
    Examples:
      ctmonitor events --since 2026-11-01 --until 2026-11-07
      ctmonitor events --since 2026-11-01 --indication lupus --modality CAR-T
      ctmonitor events --since 2026-11-01 --by registry --origin poll
      ctmonitor events --study NCT05085418 --kind status_change
      ctmonitor events --held
    """
    start, end = _parse_day(since, "--since"), _parse_day(until, "--until")
    nct_id = check_study_id(nct) if nct else None
    with c.app() as app:
        result = app.events(
            since=start,
            until=end,
            kinds=kinds,
            nct_id=nct_id,
            held=held,
            limit=limit,
            by=by,
            origin=origin,
            # one study, or what is held (the operator's view), is read whatever its labels
            flt=app.study_filter(**filters) if not (nct_id or held) else None,
            baseline=baseline or bool(nct_id),
            min_importance=importance,
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


def _many(name: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(f"--{name}", multiple=True, metavar="VALUE", help=help_text + " Repeatable: any of.")


@cli.command()
@_many("modality", "CAR-T, CAAR-T, CAR-Treg, CAR-NK, bispecific or other (CART, engager... also read).")
@_many("target", "An antigen, e.g. CD19 (also matches CD19/BCMA).")
@_many("indication", "An indication group, e.g. SLE, 'myasthenia gravis'; lupus = SLE or lupus nephritis.")
@_many("status", "A status, e.g. RECRUITING or 'Active, not recruiting'; active = every open status.")
@_many("phase", "A phase: EARLY_PHASE1, PHASE1, PHASE2, PHASE3, PHASE4 or NA.")
@_many("sponsor", "Part of the lead sponsor's name, any case.")
@_many("country", "A country with at least one site.")
@_many("product", "A product, by its code or name, however written: KYV-101, kyv101, CABA-201.")
@_many("registry", "A registry the study is on: ctgov, ctis, chictr, jrct... (or its name).")
@click.option(
    "--search", default="", metavar="TEXT", help="Words in the NCT id, titles, product codes or sponsor."
)
@click.option(
    "--needs-review", is_flag=True, help="Only studies whose labels are ambiguous or contradictory."
)
@click.option("--all", "include_all", is_flag=True, help="Include studies out of scope (with the reason).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def studies(
    c: Context,
    modality: tuple[str, ...],
    target: tuple[str, ...],
    indication: tuple[str, ...],
    status: tuple[str, ...],
    phase: tuple[str, ...],
    sponsor: tuple[str, ...],
    country: tuple[str, ...],
    product: tuple[str, ...],
    registry: tuple[str, ...],
    search: str,
    needs_review: bool,
    include_all: bool,
    as_json: bool,
) -> None:
    """The current landscape: tracked studies in scope with their labels and status,
    filtered as the web's landscape and the reports are (the same values, the same errors).

    \b
    Examples:
      ctmonitor studies --modality CAR-T --indication lupus
      ctmonitor studies --target BCMA --status active --country Germany --json
      ctmonitor studies --search KYV-101
      ctmonitor studies --product kyv101
      ctmonitor studies --registry ctis
      ctmonitor studies --needs-review
    """
    with c.app() as app:
        result = app.studies(
            modalities=modality,
            targets=target,
            indications=indication,
            statuses=status,
            phases=phase,
            sponsors=sponsor,
            countries=country,
            products=product,
            registries=registry,
            search=search,
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

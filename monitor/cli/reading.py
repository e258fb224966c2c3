"""Commands that read what was kept: digest, backfill, history, diff, report, feed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from monitor.app import Application
from monitor.cli.base import (
    EXIT_FAILED,
    Context,
    _busy,
    _parse_date,
    _parse_day,
    cli,
    echo_json,
    emit,
    kind_option,
    label_filter_options,
    pass_ctx,
)
from monitor.core.registrations import check_study_id
from monitor.store.locking import LockBusy

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
    `ctmonitor history` and `ctmonitor events`, never in digests. An EU CTIS trial's
    history is what its stored record lists (its applications and each member state's
    status history), read without a request.

    \b
    Example:
      ctmonitor backfill
      ctmonitor backfill NCT05938725 NCT06359041 2024-510663-34-00
    """
    ids = [check_study_id(x) for x in nct_ids]
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
@kind_option()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def history(c: Context, nct_ids: tuple[str, ...], kinds: tuple[str, ...], as_json: bool) -> None:
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
    ids = [check_study_id(x) for x in nct_ids]
    with c.app() as app:
        result = app.history(ids, kinds=kinds)
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
@kind_option()
@click.option(
    "--sites",
    "all_sites",
    is_flag=True,
    help="Every site change (default: counted per country when there are more than 8).",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def diff_command(
    c: Context,
    nct: str,
    since: str | None,
    from_ref: str | None,
    to_ref: str | None,
    kinds: tuple[str, ...],
    all_sites: bool,
    as_json: bool,
) -> None:
    """What changed in a study's tracked fields between two versions: status, why stopped,
    enrollment, dates, phase, conditions, interventions and arms, sponsor, sites (added,
    removed, status), results, titles, eligibility criteria, outcomes, design, publications.
    Before in red, after in green on a terminal; changed criteria word by word. More than
    8 site changes are counted per country (--sites lists each).

    Without options: the latest version against the one before it. Versions are those
    `ctmonitor history` lists: rN is registry version N (backfilled), #N our N-th poll
    snapshot, a date the version current on that day.

    \b
    Example:
      ctmonitor diff NCT05938725
      ctmonitor diff NCT05938725 --since 2026-01-01
      ctmonitor diff NCT05938725 --from r0 --to latest
    """
    nct_id = check_study_id(nct)
    if since and from_ref:
        raise click.BadParameter("use --since or --from, not both", param_hint="--since")
    if since:
        _parse_date(since, "--since")
    with c.app() as app:
        result = app.compare(
            nct_id, since=since, from_ref=from_ref, to_ref=to_ref, kinds=kinds, all_sites=all_sites
        )
    if as_json:
        echo_json(result.to_json())
    else:
        click.echo(result.text(click.style))


# -- reports ---------------------------------------------------------------------------


def filter_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The subscriber filters, as options (each may be repeated: any of), and --study."""
    fn = label_filter_options(fn)
    return click.option(
        "--study", "nct_ids", multiple=True, metavar="NCT", help="Always include this study."
    )(fn)


def make_filter(app: Application, values: dict[str, Any]) -> Any:
    """A StudyFilter from the filter options, checked like a subscriber's (one-line errors)."""
    return app.study_filter(**values)


@cli.command()
@click.option(
    "--since",
    metavar="DATE",
    help="First day of the period for changes and new studies (default: 6 days before --until).",
)
@click.option(
    "--until",
    metavar="DATE",
    help="Last day of the period, included whole (default: the day of the last successful poll).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "csv", "json"]),
    help="Output format (default: from the --out suffix, else md).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@kind_option("Only changes of this kind in 'What changed' (repeatable), e.g. eligibility_change.")
@filter_options
@pass_ctx
def report(
    c: Context,
    since: str | None,
    until: str | None,
    fmt: str | None,
    out: str | None,
    kinds: tuple[str, ...],
    **filters: Any,
) -> None:
    """A landscape report on demand: the studies in scope today, what changed in the
    period, new registrations, and how the set was selected (compared with the previous
    report with the same filters).

    HTML is one self-contained file with charts (printable); CSV is the study table,
    safe to open in a spreadsheet; JSON holds everything.

    Without --out, on a terminal the report is written to a new file in the current
    folder (named in the output, e.g. ctmonitor-report-2026-12-02.md); piped, it goes to
    standard output. Only a report written to a file becomes the "previous report" the
    next one with the same filters compares with: a look at standard output changes
    nothing.

    \b
    Example:
      ctmonitor report --out report.html
      ctmonitor report --since 2026-11-01 --indication SLE --modality CAR-T --format md
      ctmonitor report --format csv --out studies.csv
      ctmonitor report --format json | jq .selection
    """
    from pathlib import Path

    from monitor.publishing import report as reporting

    start, end = _parse_day(since, "--since"), _parse_day(until, "--until")
    if start and end and start > end:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    if fmt is None:
        suffix = Path(out).suffix.lower().lstrip(".") if out else ""
        fmt = {"htm": "html", "markdown": "md"}.get(suffix, suffix)
        if fmt not in reporting.FORMATS:
            fmt = "md"
    if out is None and stdout_is_terminal():
        out = str(free_name(Path.cwd(), f"ctmonitor-report-{date.today().isoformat()}", fmt))
    with c.app() as app:
        result = app.report(
            make_filter(app, filters),
            fmt=fmt,
            since=start,
            until=end,
            out=Path(out) if out else None,
            kinds=kinds,
            record=out is not None,  # only a kept report is the next one's baseline
        )
    click.echo(result.text(), nl=bool(out))


def stdout_is_terminal() -> bool:
    """Whether a person reads standard output (then 40 KB of report go to a file instead)."""
    return sys.stdout.isatty()


def free_name(folder: Path, stem: str, suffix: str) -> Path:
    """`stem.suffix` in `folder`, or `stem-2.suffix`, ...: never over an earlier report."""
    path = folder / f"{stem}.{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}.{suffix}"
        n += 1
    return path


@cli.command()
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write the feed to this file (default: standard output)."
)
@kind_option()
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

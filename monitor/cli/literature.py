"""`ctmonitor literature` (PubMed and Europe PMC by the tracked studies' registry numbers) and
`ctmonitor import ictrp` (a WHO ICTRP export): what comes from beyond the registries' APIs."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from monitor.cli.base import EXIT_FAILED, Context, _busy, cli, emit, pass_ctx
from monitor.store.locking import LockBusy


@cli.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(["pubmed", "europepmc"]),
    help="Search only this service (repeatable); default: every one switched on in [literature].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def literature(c: Context, sources: tuple[str, ...], as_json: bool) -> None:
    """Find publications that cite the tracked studies' registry numbers.

    Searches PubMed (NCBI E-utilities) and Europe PMC for each study's NCT number and
    the other registries' numbers its record names. A study's first search lists what
    exists without telling it; from then on, each newly linked paper is a change
    ("First publication: …") in the change log, digests and feeds. The service runs
    this on its own schedule (schedule.literature). An NCBI API key, if you have one,
    is read from the environment variable named by literature.api_key_env.

    \b
    Example:
      ctmonitor literature
      ctmonitor literature --source europepmc --json
    """
    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main_thread else None
    try:
        with c.app() as app:
            result = app.literature(sources, should_stop=stop.is_set)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    emit(result, as_json)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


@cli.group(name="import")
def import_group() -> None:
    """Import trials from a registry export (a file a person downloaded)."""


@import_group.command(name="ictrp")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def import_ictrp(c: Context, file: Path, as_json: bool) -> None:
    """Import a WHO ICTRP XML export (ChiCTR, jRCT and the other registries).

    Export a search from the ICTRP portal (trialsearch.who.int: "Export Results to XML",
    all trials), then import the file: the trials in scope (or already tracked) are
    tracked like any study, and each later import of a newer export records what
    changed. Trials of ClinicalTrials.gov and CTIS come from those registries.

    \b
    Example:
      ctmonitor import ictrp ICTRP-Results.xml
    """
    with c.app() as app:
        try:
            result = app.import_ictrp(file)
        except LockBusy as exc:
            raise click.exceptions.Exit(_busy(exc)) from None
    emit(result, as_json)
    if not result.ok:
        raise click.exceptions.Exit(EXIT_FAILED)

"""`ctmonitor literature`: search PubMed and Europe PMC for the tracked studies' registry numbers."""

from __future__ import annotations

import signal
import threading

import click

from monitor.cli.base import EXIT_FAILED, Context, cli, emit, pass_ctx


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

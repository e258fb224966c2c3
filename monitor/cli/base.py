"""What every subcommand shares: the click group, its context, output and exit codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.app import Application, WorkFailed
from monitor.config import Settings, load_settings
from monitor.core.domain import EventKind, UserError
from monitor.registry.client import CtGovClient
from monitor.store import db as dbmod
from monitor.store.locking import LockBusy

EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])


Failed = WorkFailed  # the command ran but its work failed; exit 1 with this message


# Commands that may create the database they are pointed at; any other command pointed at
# a SQLite file that does not exist says so instead of creating an empty one (a typo in
# --db, or a command run from another folder than the demo's, is then one clear line).
CREATES_DATABASE = frozenset({"poll", "run", "upgrade", "backfill", "reclassify", "ictrp"})


class Context:
    def __init__(self, config_path: str | None, debug: bool, db: str | None = None) -> None:
        self.config_path, self.debug, self.db = config_path, debug, db
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.config_path)
            if self.db:
                settings = settings.with_database(self.db)
            self._settings = settings
        return self._settings

    def use(self, settings: Settings) -> None:
        """Settings a command adjusted for itself (serve's local base URL)."""
        self._settings = settings

    def _check_exists(self) -> None:
        """A command that only reads never creates a missing SQLite file: it says which
        database it was pointed at, and how one is made."""
        url = self.settings.database_url()
        command = click.get_current_context(silent=True)
        name = command.info_name if command is not None else None
        if not url.startswith("sqlite:///") or name in CREATES_DATABASE:
            return
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            source = self.settings.database_source()
            poll = f"ctmonitor --db {self.db} poll" if self.db else "ctmonitor poll"
            raise UserError(
                f"no database at {path} (from {source}); `{poll}` creates one, or name another with --db"
            )

    @contextmanager
    def app(self, **options: Any) -> Iterator[Application]:
        """The application over the configured database (opened on first use, closed after);
        `options` as Application takes them (a mailer factory)."""
        with Application(self.settings, before_open=self._check_exists, **options) as application:
            yield application

    @contextmanager
    def database(self) -> Iterator[dbmod.Database]:
        with self.app() as application:
            yield application.database

    @contextmanager
    def unmigrated_engine(self, failure: str) -> Iterator[Any]:
        """The database engine as it is (no schema check), for the `db` commands; errors in one line."""
        self._check_exists()
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

KIND_CHOICES = sorted(k.value for k in EventKind)  # every --kind option's choices


def kind_option(help_text: str = "Only changes of this kind (repeatable).") -> Callable[[F], F]:
    """The one --kind option (repeatable; the event kinds as choices) every command shares."""
    return click.option("--kind", "kinds", multiple=True, type=click.Choice(KIND_CHOICES), help=help_text)


def label_filter_options(fn: F) -> F:
    """The filters by label a reader has everywhere (each may be repeated: any of)."""
    for name, dest, help_text in reversed(
        [
            ("modality", "modalities", "CAR-T, CAAR-T, CAR-Treg, CAR-NK, bispecific or other."),
            ("target", "targets", "An antigen, e.g. CD19 (also matches CD19/BCMA)."),
            ("indication", "indications", "An indication group, e.g. SLE, 'lupus nephritis', lupus."),
            ("status", "statuses", "Current overall status, e.g. RECRUITING, active, stopped."),
            ("sponsor", "sponsors", "Part of the lead sponsor's name."),
            (
                "product",
                "products",
                "A product by any of its names, however written: KYV-101, kyv101, rese-cel.",
            ),
            ("country", "countries", "A country with at least one site."),
            (
                "phase",
                "phases",
                "A phase: PHASE1 (or 1), PHASE2, EARLY_PHASE1, NA...; a 1/2 study matches either.",
            ),
            (
                "registry",
                "registries",
                "A registry the study is on: ctgov, ctis, chictr, jrct... (or its name, 'EU CTIS').",
            ),
        ]
    ):
        fn = click.option(f"--{name}", dest, multiple=True, metavar="VALUE", help=help_text)(fn)
    return click.option(
        "--include-out-of-scope", is_flag=True, help="Also studies classified out of scope (oncology...)."
    )(fn)


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


def _parse_day(value: str | None, name: str) -> date | None:
    """A day the user named (YYYY-MM-DD): a period's first or last day, included whole."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
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
@click.option(
    "--db",
    metavar="PATH|URL",
    help="The database: a SQLite file or a SQLAlchemy URL (default: $CTMONITOR_DATABASE_URL, else the "
    "config's [database]). Only poll, run, backfill, reclassify and db upgrade create a missing file.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="ctmonitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db: str | None, debug: bool) -> None:
    """Follow CAR T, CAAR T, CAR-Treg and T-cell-engager trials in autoimmune disease on
    ClinicalTrials.gov: poll the registry, keep every change, report it.

    \b
    Quick start:
      ctmonitor poll            # sync with the registry (creates the database)
      ctmonitor status          # what the last polls did
      ctmonitor events --since 2026-11-01
      ctmonitor serve           # the same in the browser, http://127.0.0.1:8000

    The options above may also follow the command: `ctmonitor status --db out/demo.db`.
    """
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = Context(config_path, debug, db)


def make_client(settings: Settings) -> CtGovClient:
    return CtGovClient(settings.api)


def _busy(exc: Exception) -> int:
    click.echo(f"ctmonitor: {exc}; not starting a second one.", err=True)
    return EXIT_BUSY

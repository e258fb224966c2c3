"""Typed settings from config.toml; secrets from the environment.

Every key is declared here with its default; `config.toml` documents the same keys
with comments and a test checks the two agree. An unknown key, a wrong type or a bad
URL is an error naming the key, never a silent fallback.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.core.domain import OVERALL_STATUSES, EventKind, UserError, check_kinds
from monitor.ctis_config import CtisSettings
from monitor.literature_config import LiteratureSettings
from monitor.settings_base import Pacing, Section, checked, http_url, study_ids
from monitor.watch_queries import (  # re-exported: the settings' one namespace
    QuerySettings,
    default_queries,
)

ENV_CONFIG = "CTMONITOR_CONFIG"
ENV_DB_URL = "CTMONITOR_DATABASE_URL"
ENV_DB_PASSWORD = "CTMONITOR_DATABASE_PASSWORD"
ENV_SMTP_PASSWORD = "CTMONITOR_SMTP_PASSWORD"

DEFAULT_FIELDS = [
    "protocolSection.identificationModule",
    "protocolSection.statusModule",
    "protocolSection.sponsorCollaboratorsModule",
    "protocolSection.descriptionModule.briefSummary",
    "protocolSection.descriptionModule.detailedDescription",
    "protocolSection.conditionsModule",
    "protocolSection.designModule",
    "protocolSection.armsInterventionsModule",
    "protocolSection.contactsLocationsModule",
    "protocolSection.eligibilityModule",
    "protocolSection.outcomesModule",
    "protocolSection.referencesModule",
    "protocolSection.ipdSharingStatementModule",
    "derivedSection.conditionBrowseModule.meshes",
    "derivedSection.conditionBrowseModule.ancestors",
    "derivedSection.interventionBrowseModule.meshes",
    "derivedSection.miscInfoModule",
    "hasResults",
    # what a results section holds (monitor.core.results.FIELDS)
    "resultsSection.participantFlowModule",
    "resultsSection.baselineCharacteristicsModule.denoms",
    "resultsSection.outcomeMeasuresModule",
    "resultsSection.adverseEventsModule.eventGroups",
]


class DatabaseSettings(Section):
    url: str = ""
    path: str = "ctmonitor.db"
    auto_upgrade: bool = True

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not v:
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if not scheme.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        if urlsplit(v).password:
            raise ValueError(f"must not contain a password; set {ENV_DB_PASSWORD} instead")
        return v


class ApiSettings(Pacing):
    base_url: str = "https://clinicaltrials.gov"
    page_size: Annotated[int, Field(ge=1, le=1000)] = 1000
    ids_per_request: Annotated[int, Field(ge=1, le=500)] = 100
    user_agent: str = ""
    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_FIELDS))

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, v: str) -> str:
        return http_url(v, "https://clinicaltrials.gov")

    @field_validator("fields")
    @classmethod
    def _keep_what_is_tracked(cls, v: list[str]) -> list[str]:
        """The parts ctmonitor reads are always fetched: an older config.toml's list (from
        before eligibility, outcomes and references were tracked) gains them, so that the
        change log does not silently stop at what that list named."""
        out = [f.strip() for f in v if f.strip()]
        for part in DEFAULT_FIELDS:
            if not any(part == f or part.startswith(f + ".") for f in out):
                out.append(part)
        return out


class SyncSettings(Section):
    overlap_days: Annotated[int, Field(ge=0, le=60)] = 3
    full_every_days: Annotated[int, Field(ge=1, le=365)] = 7
    hold_threshold: Annotated[float, Field(gt=0, le=1)] = 0.30
    hold_min_studies: Annotated[int, Field(ge=1)] = 20


class ClassificationSettings(Section):
    # Empty: the vocabulary shipped with ctmonitor (monitor/data/vocabulary.toml).
    vocabulary: str = ""
    overrides: str = "overrides.toml"


def _no_repeats(names: list[str], what: str) -> None:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} names must be unique, repeated: {', '.join(dupes)}")


def _check_address(value: str) -> str:
    """A mail address as users write it; returns the normalized form or raises ValueError."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid mail address {value!r}: {exc}") from None


class SmtpSettings(Section):
    """The mail server digests and alerts go through. The password comes from the environment."""

    host: str = ""
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    from_address: str = ""
    from_name: str = "ctmonitor"
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    ca_file: str = ""
    list_unsubscribe: str = ""

    @field_validator("from_address")
    @classmethod
    def _check_from(cls, v: str) -> str:
        return _check_address(v) if v else v

    @field_validator("list_unsubscribe")
    @classmethod
    def _check_unsubscribe(cls, v: str) -> str:
        if v and not v.startswith(("mailto:", "https://", "http://")):
            raise ValueError("must be a mailto: or http(s) URL")
        return v

    @model_validator(mode="after")
    def _from_needed(self) -> SmtpSettings:
        if self.host and not self.from_address:
            raise ValueError("from_address is needed when host is set")
        return self


REGISTRY_STUDY_URL = "https://clinicaltrials.gov/study/{nct_id}"


class DigestSettings(Section):
    max_items: Annotated[int, Field(ge=5, le=5000)] = 100
    max_html_kilobytes: Annotated[int, Field(ge=20, le=10_000)] = 100
    new_within_days: Annotated[int, Field(ge=1, le=3650)] = 30
    subject_prefix: str = "[ctmonitor]"
    study_url: str = REGISTRY_STUDY_URL
    report_url: str = ""
    preview_dir: str = "out/digests"

    @field_validator("study_url")
    @classmethod
    def _check_study_url(cls, v: str) -> str:
        if "{nct_id}" not in v or not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL containing {nct_id}")
        return v


def _check_cron(v: str) -> str:
    if not v:
        return v
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(v)
    except ValueError as exc:
        raise ValueError(f"not a cron expression (minute hour day month weekday): {v!r}: {exc}") from None
    return v


class WebSettings(Section):
    """`ctmonitor serve`: where the web interface listens and the address people reach it at."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    base_url: str = ""
    stale_after_hours: Annotated[int, Field(ge=1, le=24 * 365)] = 72
    signup: bool = True
    signups_per_address_per_day: Annotated[int, Field(ge=1, le=100)] = 3
    signups_per_client_per_hour: Annotated[int, Field(ge=1, le=10_000)] = 10
    confirm_within_days: Annotated[int, Field(ge=1, le=90)] = 7
    admin_session_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 12

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://ctmonitor.example.org")
        return v.rstrip("/")


class BackfillSettings(Section):
    """`ctmonitor backfill` and the scheduled backfill job: the registry's own record histories."""

    studies_per_run: Annotated[int, Field(ge=0, le=100_000)] = 25


class ScheduleSettings(Section):
    """`ctmonitor run`: when each job runs (cron syntax), and who hears about failures."""

    timezone: str = "America/New_York"
    poll: str = "30 10 * * mon-fri"
    full: str = "0 4 * * sun"
    digest: str = "0 7 * * mon"
    backfill: str = "0 12 * * mon-fri"
    literature: str = "0 13 * * mon-fri"
    ctis: str = "0 11 * * mon-fri"
    misfire_grace_hours: Annotated[float, Field(ge=0, le=168)] = 12.0
    alert_after_failures: Annotated[int, Field(ge=1, le=100)] = 3
    admin_email: str = ""

    @field_validator("poll", "full", "digest", "backfill", "literature", "ctis")
    @classmethod
    def _cron(cls, v: str) -> str:
        return _check_cron(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Berlin or UTC)") from None
        return v

    @field_validator("admin_email")
    @classmethod
    def _admin(cls, v: str) -> str:
        return _check_address(v) if v else v


class SubscriberSettings(Section):
    """One digest recipient and the filters that choose their events."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
    email: str
    modalities: list[str] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    indications: list[str] = Field(default_factory=list)
    statuses: list[str] = Field(default_factory=list)
    sponsors: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    phases: list[str] = Field(default_factory=list)
    # Products by any of their names: a code (KYV-101, kyv101), an INN (rese-cel) or a brand.
    products: list[str] = Field(default_factory=list)
    # Registries the study is on (its own registration or one its record names): ctgov,
    # ctis, chictr, jrct, ... or their names ("EU CTIS").
    registries: list[str] = Field(default_factory=list)
    nct_ids: list[str] = Field(default_factory=list)
    min_importance: Annotated[int, Field(ge=1, le=3)] = 1
    # Only these kinds of change (empty: every kind), e.g. ["eligibility_change", "outcome_change"].
    kinds: list[str] = Field(default_factory=list)
    include_out_of_scope: bool = False
    # Papers found in PubMed and Europe PMC by the trials' registry numbers (publication_found).
    publications: bool = True
    send_empty: bool = False
    # Deliver through another channel instead of e-mail: an Apprise URL such as
    # "slack://${SLACK_TOKEN}/#trials", "msteams://...", "matrixs://...", "json://host/path".
    # ${NAME} is read from the environment when sending, so secrets stay out of this file
    # (and out of the database); ctmonitor never shows a channel URL back unmasked.
    channel: str = ""

    def wanted_kinds(self) -> tuple[str, ...]:
        """The kinds of change this subscriber is sent (empty: every kind)."""
        if self.publications:
            return tuple(self.kinds)
        every = self.kinds or [k.value for k in EventKind]
        return tuple(k for k in every if k != EventKind.PUBLICATION_FOUND)

    @field_validator("channel")
    @classmethod
    def _check_channel(cls, v: str) -> str:
        v = v.strip()
        if v and not re.match(r"^[a-z][a-z0-9+.-]*://", v):
            raise ValueError("must be an Apprise URL such as slack://..., msteams://... or json://host/path")
        return v

    @field_validator("email")
    @classmethod
    def _check_email(cls, v: str) -> str:
        return _check_address(v)

    @field_validator("phases")
    @classmethod
    def _check_phases(cls, v: list[str]) -> list[str]:
        from monitor.core.filters import resolve_phases

        return checked(resolve_phases, v)

    @field_validator("registries")
    @classmethod
    def _check_registries(cls, v: list[str]) -> list[str]:
        from monitor.core.registrations import resolve_registries

        return checked(resolve_registries, v)

    @field_validator("kinds")
    @classmethod
    def _check_kinds(cls, v: list[str]) -> list[str]:
        return checked(check_kinds, v)

    @field_validator("statuses")
    @classmethod
    def _check_statuses(cls, v: list[str]) -> list[str]:
        from monitor.core.filters import resolve_statuses

        return checked(lambda values: resolve_statuses(values, OVERALL_STATUSES), v)

    @field_validator("nct_ids")
    @classmethod
    def _checknct_ids(cls, v: list[str]) -> list[str]:
        return study_ids(v)


class Settings(Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    classification: ClassificationSettings = Field(default_factory=ClassificationSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    backfill: BackfillSettings = Field(default_factory=BackfillSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    literature: LiteratureSettings = Field(default_factory=LiteratureSettings)
    ctis: CtisSettings = Field(default_factory=CtisSettings)
    subscribers: list[SubscriberSettings] = Field(default_factory=list)
    queries: list[QuerySettings] = Field(default_factory=default_queries)

    # Where the file was read from; relative paths in it are resolved against its folder.
    source: Path | None = Field(default=None, exclude=True)
    # The database named on the command line (--db): before the environment and the file.
    _command_line_url: str | None = PrivateAttr(default=None)

    @field_validator("queries")
    @classmethod
    def _unique_names(cls, v: list[QuerySettings]) -> list[QuerySettings]:
        _no_repeats([q.name for q in v], "query")
        if not v:
            raise ValueError("at least one [[queries]] entry is needed")
        return v

    @field_validator("subscribers")
    @classmethod
    def _unique_subscribers(cls, v: list[SubscriberSettings]) -> list[SubscriberSettings]:
        _no_repeats([x.name for x in v], "subscriber")
        return v

    def subscriber(self, name: str) -> SubscriberSettings:
        for sub in self.subscribers:
            if sub.name == name:
                return sub
        known = ", ".join(x.name for x in self.subscribers) or "none configured"
        raise UserError(f"no subscriber named {name!r} (known: {known})")

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def path(self, value: str) -> Path | None:
        """A path from the config, relative to the config file's folder; None when empty."""
        if not value:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def with_database(self, db: str) -> Settings:
        """These settings on another database: a SQLAlchemy URL, or the path of a SQLite file
        (relative to the current folder, as a command-line path is). Wins over
        $CTMONITOR_DATABASE_URL and the file's [database]."""
        url = db if "://" in db else f"sqlite:///{Path(db).expanduser().resolve()}"
        try:
            DatabaseSettings(url=url)
        except ValidationError as exc:
            raise UserError(f"--db {db!r}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        out = self.model_copy()
        out._command_line_url = url
        return out

    def database_source(self) -> str:
        """Where `database_url` comes from, in the words a user can act on."""
        if self._command_line_url:
            return "--db"
        if os.environ.get(ENV_DB_URL):
            return ENV_DB_URL
        if self.database.url:
            return "[database] url in the config"
        return "[database] path in the config" if self.source else "the default, ./ctmonitor.db"

    def database_url(self) -> str:
        """The SQLAlchemy URL: --db, then the env override, then database.url, then SQLite at
        database.path."""
        url = self._command_line_url or os.environ.get(ENV_DB_URL) or self.database.url
        if not url:
            path = Path(self.database.path)
            if not path.is_absolute():
                path = self.base_dir / path
            return f"sqlite:///{path}"
        password = os.environ.get(ENV_DB_PASSWORD)
        if password and url.startswith("postgresql"):
            from sqlalchemy.engine import make_url

            return make_url(url).set(password=password).render_as_string(hide_password=False)
        return url


def _format_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"].endswith("_type") and not isinstance(err.get("input"), dict | list):
        shown = "true" if err["input"] is True else "false" if err["input"] is False else repr(err["input"])
        msg = f"{msg} (got {shown}{', a string' if isinstance(err['input'], str) else ''})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{source}: {loc}: {msg}{more}"


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load settings from `path`, else $CTMONITOR_CONFIG, else ./config.toml, else defaults."""
    chosen = path or os.environ.get(ENV_CONFIG)
    if chosen is None and Path("config.toml").is_file():
        chosen = "config.toml"
    if chosen is None:
        return Settings()
    file = Path(chosen)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file not found: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config file {file}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{file}: not valid TOML: {exc}") from None
    try:
        settings = Settings.model_validate(data, strict=True)  # TOML gives types: true is no 1
    except ValidationError as exc:
        raise UserError(_format_error(exc, str(file))) from None
    return settings.model_copy(update={"source": file.resolve()})

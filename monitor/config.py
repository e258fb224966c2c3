"""Typed settings from config.toml; secrets from the environment.

Every key is declared here with its default; `config.toml` documents the same keys
with comments and a test checks the two agree. An unknown key, a wrong type or a bad
URL is an error naming the key, never a silent fallback.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.domain import UserError, check_nct_id

ENV_CONFIG = "CTMONITOR_CONFIG"
ENV_DB_URL = "CTMONITOR_DATABASE_URL"
ENV_DB_PASSWORD = "CTMONITOR_DATABASE_PASSWORD"

DEFAULT_FIELDS = [
    "protocolSection.identificationModule",
    "protocolSection.statusModule",
    "protocolSection.sponsorCollaboratorsModule",
    "protocolSection.descriptionModule.briefSummary",
    "protocolSection.conditionsModule",
    "protocolSection.designModule",
    "protocolSection.armsInterventionsModule",
    "protocolSection.contactsLocationsModule",
    "derivedSection.conditionBrowseModule.meshes",
    "derivedSection.conditionBrowseModule.ancestors",
    "derivedSection.interventionBrowseModule.meshes",
    "derivedSection.miscInfoModule",
    "hasResults",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class DatabaseSettings(_Section):
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


class ApiSettings(_Section):
    base_url: str = "https://clinicaltrials.gov"
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    min_interval_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    retry_budget_seconds: Annotated[float, Field(gt=0, le=3600)] = 300.0
    backoff_base_seconds: Annotated[float, Field(ge=0, le=60)] = 1.0
    backoff_max_seconds: Annotated[float, Field(ge=0, le=600)] = 60.0
    max_retry_after_seconds: Annotated[float, Field(ge=0, le=3600)] = 120.0
    page_size: Annotated[int, Field(ge=1, le=1000)] = 1000
    ids_per_request: Annotated[int, Field(ge=1, le=500)] = 100
    user_agent: str = ""
    fields: list[str] = Field(default_factory=lambda: list(DEFAULT_FIELDS))

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL such as https://clinicaltrials.gov, got {v!r}")
        return v.rstrip("/")


class SyncSettings(_Section):
    overlap_days: Annotated[int, Field(ge=0, le=60)] = 3
    full_every_days: Annotated[int, Field(ge=1, le=365)] = 7
    hold_threshold: Annotated[float, Field(gt=0, le=1)] = 0.30
    hold_min_studies: Annotated[int, Field(ge=1)] = 20


class ClassificationSettings(_Section):
    # Empty: the vocabulary shipped with ctmonitor (monitor/data/vocabulary.toml).
    vocabulary: str = ""
    overrides: str = "overrides.toml"


class QuerySettings(_Section):
    """One watch query: API query areas in Essie syntax, or a fixed list of NCT ids."""

    name: str
    cond: str = ""
    intr: str = ""
    term: str = ""
    titles: str = ""
    advanced: str = ""
    ids: list[str] = Field(default_factory=list)

    @field_validator("ids")
    @classmethod
    def _check_ids(cls, v: list[str]) -> list[str]:
        try:
            return [check_nct_id(x) for x in v]
        except UserError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _not_empty(self) -> QuerySettings:
        if not (self.cond or self.intr or self.term or self.titles or self.ids):
            raise ValueError(f"query {self.name!r} needs at least one of cond, intr, term, titles or ids")
        if self.ids and (self.cond or self.intr or self.term or self.titles or self.advanced):
            raise ValueError(f"query {self.name!r}: ids cannot be combined with search expressions")
        return self

    def params(self) -> dict[str, str]:
        """The /studies parameters this query sends (paging and date window are added by the client)."""
        out = {}
        for key, param in (
            ("cond", "query.cond"),
            ("intr", "query.intr"),
            ("term", "query.term"),
            ("titles", "query.titles"),
            ("advanced", "filter.advanced"),
        ):
            if value := getattr(self, key).strip():
                out[param] = value
        return out


DEFAULT_QUERIES_FILE = Path(__file__).parent / "data" / "default_queries.toml"


def default_queries() -> list[QuerySettings]:
    """The watch queries shipped with ctmonitor (config.toml repeats them, for users to edit)."""
    data = tomllib.loads(DEFAULT_QUERIES_FILE.read_text(encoding="utf-8"))
    return [QuerySettings(**q) for q in data["queries"]]


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    classification: ClassificationSettings = Field(default_factory=ClassificationSettings)
    queries: list[QuerySettings] = Field(default_factory=default_queries)

    # Where the file was read from; relative paths in it are resolved against its folder.
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("queries")
    @classmethod
    def _unique_names(cls, v: list[QuerySettings]) -> list[QuerySettings]:
        names = [q.name for q in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"query names must be unique, repeated: {', '.join(dupes)}")
        if not v:
            raise ValueError("at least one [[queries]] entry is needed")
        return v

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def path(self, value: str) -> Path | None:
        """A path from the config, relative to the config file's folder; None when empty."""
        if not value:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def database_url(self) -> str:
        """The SQLAlchemy URL: env override, then database.url, then SQLite at database.path."""
        url = os.environ.get(ENV_DB_URL) or self.database.url
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
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise UserError(_format_error(exc, str(file))) from None
    return settings.model_copy(update={"source": file.resolve()})

"""The watch queries: searches of the registry in its Essie syntax over the API's query
areas, or fixed lists of NCT ids; how one query is sent as requests whose URLs stay short;
the queries ctmonitor ships with."""

from __future__ import annotations

import tomllib
import urllib.parse
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from monitor.core import essie
from monitor.settings_base import Section, nct_ids


class QuerySettings(Section):
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
        return nct_ids(v)

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

    def searches(self) -> list[dict[str, str]]:
        """The /studies parameter sets this query is sent as: one, unless its expressions
        would make the URL longer than MAX_QUERY_CHARS, when its longest OR list is split
        into several searches (their union is the query's result; a study found by two is
        processed once)."""
        base = self.params()
        if _encoded_length(base) <= MAX_QUERY_CHARS:
            return [base]
        key = max(base, key=lambda k: len(base[k]))
        rest = _encoded_length({k: v for k, v in base.items() if k != key})
        alternatives = essie.alternatives(base[key])
        out: list[dict[str, str]] = []
        chunk: list[str] = []
        for alt in alternatives:
            trial = " OR ".join([*chunk, alt])
            if chunk and rest + _encoded_length({key: trial}) > MAX_QUERY_CHARS:
                out.append({**base, key: " OR ".join(chunk)})
                chunk = []
            chunk.append(alt)
        out.append({**base, key: " OR ".join(chunk)})
        return out


# The search expressions of one request, URL-encoded, stay within this many characters.
# With the `fields` list, paging and the date window (about 800 more) a request's URL then
# stays under 4 KB, half the 8 KB that common web servers and CDNs accept; longer OR lists
# are split into several requests (QuerySettings.searches).
MAX_QUERY_CHARS = 3000


def _encoded_length(params: dict[str, str]) -> int:
    return len(urllib.parse.urlencode(params))


DEFAULT_QUERIES_FILE = Path(__file__).parent / "data" / "default_queries.toml"


def default_queries() -> list[QuerySettings]:
    """The watch queries shipped with ctmonitor (config.toml repeats them, for users to edit)."""
    data = tomllib.loads(DEFAULT_QUERIES_FILE.read_text(encoding="utf-8"))
    return [QuerySettings(**q) for q in data["queries"]]

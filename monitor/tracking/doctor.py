"""`ctmonitor doctor`: a first-use probe of the live registry, before the first poll.

A new user's first poll is a full sync of thousands of records: too late to learn that a
query term floods it (an unquoted `CART` also finds "cART", antiretroviral therapy, in
HIV trials), that a term finds nothing (a misspelt product code), that the configured
`fields` leave out something the normalizer reads, or that the registry refuses this
machine. The probe asks the registry exactly that, within a request budget, at the
client's own pace, and says what it found in words a user can act on.

A term of an OR list is counted on its own: a term that finds nothing in the whole
registry is misspelt, or names no study yet. A term that finds many is asked how many of
its query's studies it alone brings in (the rest of the query as it is, the other terms
of its list excluded), with a sample of those read and classified: a *flood* is a term
that alone brings in many studies of which few look like a cell or engager therapy.
That is what a false friend does, while the query's main term ("CAR-T") brings in
studies the classifier recognises, and a condition term brings in only what the
query's other lists allow. Terms that look most like false friends (short bare words)
are counted first, so a budget that runs out leaves out the least likely ones, by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from monitor.config import QuerySettings, Settings
from monitor.core import essie
from monitor.core.classify import Classifier
from monitor.core.normalize import READS, RecordError, to_study
from monitor.registry.client import ApiError, ApiForbidden, CtGovClient

DEFAULT_BUDGET = 150
DEFAULT_FLOOD_AT = 100  # studies a term finds that no other term of its query does
_SAMPLE_PAGE = 20  # records fetched with the configured fields to check them
_ID_ONLY = "protocolSection.identificationModule.nctId"  # a count needs no more


@dataclass
class TermCount:
    """One term of an OR list: counted on its own, and, if it finds many, how many of
    those studies no other term of its query finds."""

    query: str
    param: str
    term: str
    count: int | None = None  # None: not counted (budget)
    unique: int | None = None  # found by no other term of the query (asked only of big terms)
    sampled: int = 0  # of those, how many were read and classified
    on_topic: int = 0  # ... and how many of them the classifier gives a therapy modality
    is_flood: bool = False

    @property
    def verdict(self) -> str:
        if self.count is None:
            return "not counted"
        if self.count == 0:
            return "finds nothing"
        return "flood" if self.is_flood else "ok"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    needed: bool = True  # a failed needed check makes the exit status 1


@dataclass
class Report:
    base_url: str
    checks: list[Check] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)
    terms: list[TermCount] = field(default_factory=list)
    requests: int = 0
    budget: int = DEFAULT_BUDGET

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.needed)

    @property
    def floods(self) -> list[TermCount]:
        return [t for t in self.terms if t.verdict == "flood"]

    @property
    def empty(self) -> list[TermCount]:
        return [t for t in self.terms if t.verdict == "finds nothing"]

    @property
    def uncounted(self) -> list[TermCount]:
        return [t for t in self.terms if t.count is None]

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "base_url": self.base_url,
            "requests": self.requests,
            "budget": self.budget,
            "checks": [asdict(c) for c in self.checks],
            "queries": self.queries,
            "terms": [{**asdict(t), "verdict": t.verdict} for t in self.terms],
            "floods": [t.term for t in self.floods],
            "finds_nothing": [t.term for t in self.empty],
            "not_counted": [t.term for t in self.uncounted],
        }


def _risk(term: str) -> tuple[int, int]:
    """Short bare words first (false friends are those), quoted phrases last."""
    bare = not term.startswith('"') and " " not in term and "[" not in term
    return (0 if bare else 1, len(term))


def _problem(exc: BaseException) -> str:
    if isinstance(exc, ApiForbidden) and exc.status == 403:
        return str(exc)  # names the User-Agent hint
    return str(exc) or type(exc).__name__


class Doctor:
    """Runs the probe. `progress(done, planned, what)` is told of each request."""

    def __init__(
        self,
        client: CtGovClient,
        settings: Settings,
        *,
        budget: int = DEFAULT_BUDGET,
        flood_at: int = DEFAULT_FLOOD_AT,
        progress: Callable[[int, int, str], None] | None = None,
    ) -> None:
        self.client, self.settings = client, settings
        self.budget, self.flood_at = budget, flood_at
        self.progress = progress
        self._start = client.requests
        self._planned = budget
        self.classifier = Classifier.from_settings(settings)

    @property
    def used(self) -> int:
        return self.client.requests - self._start

    def _tick(self, what: str) -> None:
        if self.progress:
            self.progress(min(self.used, self._planned), self._planned, what)

    def _count(self, params: dict[str, str]) -> int:
        page = next(self.client.iter_pages(params, page_size=1, fields=[_ID_ONLY]))
        return page.total_count or 0

    def run(self) -> Report:
        report = Report(base_url=self.settings.api.base_url, budget=self.budget)
        try:
            info = self.client.version()
        except ApiError as exc:
            report.checks.append(Check("registry", False, _problem(exc)))
            report.requests = self.used
            return report  # nothing else can work
        report.checks.append(
            Check("registry", True, f"API {info.api_version or '?'}, data of {info.data_timestamp or '?'}")
        )
        self._tick("version")
        searches = [q for q in self.settings.queries if not q.ids]
        terms = self._plan_terms(searches)
        # version, one count per search, one sample page, two history requests, then terms
        # (and a sample for each term that finds many)
        fixed = 1 + sum(len(q.searches()) for q in searches) + 3
        self._planned = min(self.budget, fixed + len(terms))
        if not self._queries(searches, report):
            report.requests = self.used
            return report
        sample = self._fields(report)
        self._history(sample, report)
        self._terms(searches, terms, report)
        report.requests = self.used
        return report

    # -- the steps -------------------------------------------------------------------

    def _queries(self, searches: list[QuerySettings], report: Report) -> bool:
        ok = True
        for q in searches:
            try:
                total = 0
                for params in q.searches():
                    total += self._count(params)
                    self._tick(q.name)
                report.queries.append({"name": q.name, "total": total})
            except ApiError as exc:
                ok = False
                report.queries.append({"name": q.name, "total": None, "error": _problem(exc)})
                report.checks.append(Check(f"query {q.name}", False, _problem(exc)))
        for q in self.settings.queries:
            if q.ids:
                report.queries.append({"name": q.name, "total": len(q.ids), "ids": True})
        if ok:
            counted = ", ".join(f"{r['name']} {r['total']:,}" for r in report.queries)
            report.checks.append(Check("watch queries", True, f"studies each query reaches: {counted}"))
        return ok

    def _fields(self, report: Report) -> list[dict[str, Any]]:
        """One page with the configured fields: is everything the normalizer reads there?"""
        first = next((q for q in self.settings.queries if not q.ids), None)
        if first is None:
            return []
        try:
            page = next(self.client.iter_pages(first.searches()[0], page_size=_SAMPLE_PAGE))
        except ApiError as exc:
            report.checks.append(
                Check("fields", False, f"a page with the configured fields: {_problem(exc)}")
            )
            return []
        self._tick("fields")
        studies = page.studies
        try:
            for raw in studies:
                to_study(raw)
        except RecordError as exc:
            report.checks.append(Check("fields", False, f"a record could not be read: {exc}"))
            return studies
        missing: dict[bool, list[str]] = {True: [], False: []}
        for read in READS:
            present = sum(1 for raw in studies if _has(raw, read.path))
            if (read.every_record and present < len(studies)) or (not read.every_record and present == 0):
                where = "some records" if read.every_record else f"all {len(studies)} records"
                missing[read.needed].append(f"{read.path} ({read.what}) is missing from {where}")
        # api.fields always includes what ctmonitor reads (config.ApiSettings), so a part
        # missing here is one the registry did not send although it was asked for.
        fix = ": the registry did not send it although it was asked for (has the API changed?)"
        sparse = (
            ": no sampled record has it (normal for parts many records leave out, such as "
            "publications; a sign of an API change if every poll says so)"
        )
        if missing[True]:
            report.checks.append(Check("fields", False, "; ".join(missing[True]) + fix))
        if missing[False]:
            report.checks.append(
                Check("optional fields", False, "; ".join(missing[False]) + sparse, needed=False)
            )
        if not missing[True]:
            found = len(READS) - len(missing[False])
            report.checks.append(
                Check(
                    "fields",
                    True,
                    f"{found} of the {len(READS)} parts ctmonitor reads are in {len(studies)} records",
                )
            )
        return studies

    def _history(self, sample: list[dict[str, Any]], report: Report) -> None:
        """One record history, through the endpoints `ctmonitor backfill` uses."""
        if not sample:
            return
        nct = sample[0]["protocolSection"]["identificationModule"]["nctId"]
        try:
            versions = self.client.history_index(nct)
            self._tick("history")
            if versions:
                self.client.history_version(nct, versions[0].version)
                self._tick("history")
            read = ", the first one read" if versions else " (a study with no history yet)"
            report.checks.append(
                Check("record history", True, f"{nct}: {len(versions)} versions listed{read}")
            )
        except ApiError as exc:
            report.checks.append(
                Check(
                    "record history",
                    False,
                    f"{nct}: {_problem(exc)}; polls work without it, `ctmonitor backfill` does not",
                    needed=False,
                )
            )

    def _plan_terms(self, searches: list[QuerySettings]) -> list[TermCount]:
        planned = []
        for q in searches:
            params = q.params()
            for param, value in params.items():
                alternatives = essie.alternatives(value)
                if len(alternatives) > 1:
                    planned += [TermCount(q.name, param, t) for t in alternatives]
        return sorted(planned, key=lambda t: _risk(t.term))

    def _terms(self, searches: list[QuerySettings], terms: list[TermCount], report: Report) -> None:
        by_name = {q.name: q.params() for q in searches}
        report.terms = terms
        alone: dict[tuple[str, str], int] = {}  # two queries share their condition lists
        for t in terms:
            key = (t.param, t.term)
            if key in alone:
                t.count = alone[key]
            else:
                if self.used >= self.budget:
                    continue
                try:  # on its own: does it find anything, and how much?
                    t.count = alone[key] = self._count({t.param: t.term})
                except ApiError as exc:
                    report.checks.append(Check(f"term {t.term}", False, _problem(exc), needed=False))
                    continue
                self._tick(f"{t.query}: {t.term}")
            if t.count >= self.flood_at and self.used < self.budget:
                self._brought_in(t, by_name[t.query])

    def _brought_in(self, t: TermCount, params: dict[str, str]) -> None:
        """How many studies only `t` brings into its query, and what a sample of them is."""
        others = [a for a in essie.alternatives(params[t.param]) if a != t.term]
        alone = {**params, t.param: f"({t.term}) AND NOT ({' OR '.join(others)})"}
        try:
            page = next(self.client.iter_pages(alone, page_size=_SAMPLE_PAGE))
        except ApiError:
            return
        self._tick(f"{t.query}: {t.term}")
        t.unique = page.total_count or 0
        labels = []
        for raw in page.studies:
            try:
                labels.append(self.classifier.classify(to_study(raw)))
            except RecordError:
                continue
        t.sampled = len(labels)
        t.on_topic = sum(1 for label in labels if label.modality is not None)
        t.is_flood = t.unique >= self.flood_at and t.on_topic * 2 < t.sampled


def _has(raw: dict[str, Any], path: str) -> bool:
    obj: Any = raw
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return False
        obj = obj[key]
    return obj not in (None, "", [], {})


def report_text(r: Report) -> str:
    """The probe's findings, as a new user reads them."""
    lines = [f"ctmonitor doctor: {r.base_url} ({r.requests} requests)"]
    for c in r.checks:
        mark = "OK  " if c.ok else ("FAIL" if c.needed else "WARN")
        lines.append(f"  {mark} {c.name}: {c.detail}")
    if r.terms:
        distinct = {(t.param, t.term) for t in r.terms}
        counted = {(t.param, t.term) for t in r.terms if t.count is not None}
        lines.append(f"  Terms of the OR lists counted on their own: {len(counted)} of {len(distinct)}")
    for t in r.floods:
        lines.append(
            f"  WARN flood: {t.term} ({t.query}, {t.param}) alone brings {t.unique:,} studies into the "
            f"query, and {t.sampled - t.on_topic} of {t.sampled} read look like no cell or engager therapy: "
            "a false friend? Quote it, pair it with other words, or drop it."
        )
    if r.empty:
        names = list(dict.fromkeys(t.term for t in r.empty))
        lines.append(
            f"  WARN {len(names)} terms find nothing in the whole registry (misspelt, or no study yet): "
            + ", ".join(names)
        )
    if r.uncounted:
        left = list(dict.fromkeys(t.term for t in r.uncounted))
        names = ", ".join(left[:8]) + (" ..." if len(left) > 8 else "")
        lines.append(
            f"  {len(left)} terms not counted within the budget of {r.budget} requests "
            f"(raise --max-requests to count them): {names}"
        )
    if r.ok:
        lines.append(
            "Ready for the first poll: `ctmonitor poll`."
            if not (r.floods or r.empty)
            else "Everything needed works; review the warnings above before the first poll."
        )
    else:
        lines.append("Not ready: fix what FAILED above and run `ctmonitor doctor` again.")
    return "\n".join(lines)

"""The offline demo: the whole job against a local registry, no network needed.

It serves bundled real records (CAR T, CAAR T, CAR-Treg and bispecific studies in
autoimmune disease, rebuilt from registry exports) from the local API server, polls
them with the default watch queries from config.toml, then moves the registry a few
days forward with the kind of changes users care about (a study opens recruitment, one
is suspended with a reason, one adds sites, a new study is registered) and polls again.
Same code paths as the service: its jobs (`Service.run_job`) over the real HTTP client,
with mail delivered into out/mail/; then one study's registry history is backfilled (as
`ctmonitor backfill NCT...` does), and the weekly digest and a report land in out/.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from email import message_from_bytes, policy
from itertools import pairwise
from pathlib import Path
from typing import Any

from monitor import store
from monitor.config import ApiSettings, Settings, SubscriberSettings, load_settings
from monitor.core.describe import KIND_LABELS, change_text
from monitor.core.domain import PollSummary
from monitor.core.filters import StudyFilter
from monitor.paths import DATA_DIR
from monitor.publishing.mailer import FolderMailer
from monitor.registry.ctisstand import CtisStandIn
from monitor.registry.literaturestand import LiteratureStandIn, Paper
from monitor.registry.localdata import load_records
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.service import Service
from monitor.store import list_events, list_studies, recent_literature_runs
from monitor.store.db import open_database

DATA = DATA_DIR / "demo_records.jsonl"
NEW_STUDY_ID = "NCT07700001"
CTIS_ONLY_TRIAL = "2099-500404-45-00"  # a CD19xCD3 engager in systemic sclerosis, on CTIS only
CTIS_WEEK_TRIAL = "2099-500202-23-00"  # rapcabtagene autoleucel: Spain ends recruitment
CTIS_ENDED_TRIAL = "2099-500101-12-00"  # also NCT06189157: ends in Germany; the NCT record still recruits
HISTORY_STUDY_ID = "NCT05938725"  # KYSA-1: CD19 CAR T in lupus nephritis
# The bundled records hold no T-cell-engager study yet: four are written for the demo from
# public descriptions of real programmes (CLN-978, teclistamab, PIT565, cizutamig), with
# made-up NCT numbers NCT07700011-14; the demo says so. This one opens recruitment.
ENGAGER_ID = "NCT07700013"


def _status(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["protocolSection"]["statusModule"]


def _ident(raw: dict[str, Any]) -> dict[str, Any]:
    return raw["protocolSection"]["identificationModule"]


def later_registry(records: list[dict[str, Any]], posted: str, pick: Callable[[str], bool]) -> list[str]:
    """Apply the demo's changes in place; returns what was done, in words.

    `pick(nct)` says whether a study is tracked and in scope, so that the demo changes
    studies the user would actually be told about.
    """
    done: list[str] = []

    def touch(raw: dict[str, Any]) -> None:
        _status(raw)["lastUpdatePostDateStruct"] = {"date": posted, "type": "ACTUAL"}

    by_status: dict[str, list[dict[str, Any]]] = {}
    for raw in records:
        if pick(_ident(raw)["nctId"]):
            by_status.setdefault(_status(raw)["overallStatus"], []).append(raw)

    opening = by_status["NOT_YET_RECRUITING"][0]
    _status(opening)["overallStatus"] = "RECRUITING"
    _status(opening)["startDateStruct"] = {"date": posted[:7], "type": "ACTUAL"}
    touch(opening)
    done.append(f"{_ident(opening)['nctId']} opens recruitment")

    suspended = by_status["RECRUITING"][0]
    _status(suspended)["overallStatus"] = "SUSPENDED"
    _status(suspended)["whyStopped"] = "Enrollment paused by the sponsor pending a manufacturing review"
    touch(suspended)
    done.append(f"{_ident(suspended)['nctId']} is suspended, with a reason")

    growing = by_status["RECRUITING"][1]
    sites = growing["protocolSection"].setdefault("contactsLocationsModule", {}).setdefault("locations", [])
    sites += [
        {
            "facility": "Universitätsklinikum Erlangen",
            "city": "Erlangen",
            "country": "Germany",
            "status": "RECRUITING",
        },
        {
            "facility": "Hôpital Pitié-Salpêtrière",
            "city": "Paris",
            "country": "France",
            "status": "NOT_YET_RECRUITING",
        },
    ]
    touch(growing)
    done.append(f"{_ident(growing)['nctId']} adds two sites")

    amended = by_status["RECRUITING"][3]
    eligibility = amended["protocolSection"].setdefault("eligibilityModule", {})
    eligibility["maximumAge"] = "80 Years"
    outcomes = amended["protocolSection"].setdefault("outcomesModule", {})
    outcomes.setdefault("primaryOutcomes", []).append(
        {"measure": "Proportion of participants in drug-free remission", "timeFrame": "Month 12"}
    )
    touch(amended)
    done.append(f"{_ident(amended)['nctId']} raises its upper age limit and adds a primary endpoint")

    engager = next((r for r in records if _ident(r)["nctId"] == ENGAGER_ID and pick(ENGAGER_ID)), None)
    if engager is not None:
        _status(engager)["overallStatus"] = "RECRUITING"
        _status(engager)["startDateStruct"] = {"date": posted, "type": "ACTUAL"}
        touch(engager)
        done.append(f"{ENGAGER_ID}, a T-cell engager, opens recruitment")

    newcomer = copy.deepcopy(by_status["RECRUITING"][2])
    _ident(newcomer)["nctId"] = NEW_STUDY_ID
    _ident(newcomer)["briefTitle"] = (
        "CD19/BCMA Dual-target CAR-T Cells in Refractory Systemic Lupus Erythematosus and Lupus Nephritis"
    )
    newcomer["protocolSection"]["conditionsModule"] = {
        "conditions": ["Systemic Lupus Erythematosus", "Lupus Nephritis"],
        "keywords": ["CAR-T", "CD19", "BCMA"],
    }
    _status(newcomer)["overallStatus"] = "NOT_YET_RECRUITING"
    _status(newcomer)["studyFirstPostDateStruct"] = {"date": posted, "type": "ACTUAL"}
    touch(newcomer)
    records.append(newcomer)
    done.append(f"{NEW_STUDY_ID} is registered")
    return done


def demo_history(record: dict[str, Any]) -> dict[str, Any]:
    """A made-up registry history for one demo record, in the shape the registry's
    history endpoints answer (see `monitor.registry.localserver.load_histories`): registered not yet
    recruiting, then recruiting at its site, then the record as polled (version 2), so
    that the demo can show `ctmonitor backfill` and a timeline that starts before our
    first poll. Only the earlier versions are invented; the last one is the record."""
    v2 = copy.deepcopy(record)
    v1 = copy.deepcopy(record)
    ps = v1["protocolSection"]
    ps["statusModule"]["overallStatus"] = "RECRUITING"
    ps["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2023-05-18", "type": "ACTUAL"}
    ps["designModule"]["enrollmentInfo"] = {"count": 12, "type": "ESTIMATED"}
    v0 = copy.deepcopy(v1)
    ps = v0["protocolSection"]
    ps["statusModule"]["overallStatus"] = "NOT_YET_RECRUITING"
    ps["statusModule"]["startDateStruct"] = {"date": "2023-04", "type": "ESTIMATED"}
    ps["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2023-03-10", "type": "ACTUAL"}
    ps.pop("contactsLocationsModule", None)
    submitted = ["2023-03-08", "2023-05-15", _status(v2)["lastUpdatePostDateStruct"]["date"]]
    versions = [v0, v1, v2]
    index = {
        "changes": [
            {
                "version": n,
                "date": submitted[n],
                "status": _status(body)["overallStatus"],
                "studyType": body["protocolSection"]["designModule"].get("studyType"),
                "moduleLabels": [] if n == 0 else ["Study Status", "Study Design"],
            }
            for n, body in enumerate(versions)
        ]
    }
    return {
        "index": index,
        "versions": {n: {"studyVersion": n, "study": body} for n, body in enumerate(versions)},
    }


DEMO_READER = SubscriberSettings(name="demo-reader", email="reader@example.org")


def demo_settings(
    base_url: str, out: Path, config: Path | None, *, literature: str = "", ctis: str = ""
) -> Settings:
    """The user's (or the shipped) config, pointed at the local registry (and literature
    services, when given) and a fresh demo database.

    Without subscribers in the config, one reader follows every study in scope.
    """
    base = load_settings(config) if config else Settings()
    api = ApiSettings(**{**base.api.model_dump(), "base_url": base_url, "min_interval_seconds": 0.0})
    db = base.database.model_copy(update={"url": f"sqlite:///{(out / 'demo.db').resolve()}"})
    subscribers = base.subscribers or [DEMO_READER]
    digest = base.digest
    if "new_within_days" not in digest.model_fields_set:
        digest = digest.model_copy(update={"new_within_days": DEMO_NEW_WITHIN_DAYS})
    update: dict[str, Any] = {"api": api, "database": db, "subscribers": subscribers, "digest": digest}
    if literature:
        update["literature"] = base.literature.model_copy(
            update={
                "pubmed_url": literature,
                "europepmc_url": literature,
                "pubmed_interval_seconds": 0.0,
                "pubmed_interval_with_key_seconds": 0.0,
                "min_interval_seconds": 0.0,
            }
        )
    if ctis:
        update["ctis"] = base.ctis.model_copy(
            update={"base_url": ctis, "min_interval_seconds": 0.0, "enabled": True}
        )
    return base.model_copy(update=update)


def _write_digest(mail: Path, out: Path, stem: str) -> tuple[Path, Path]:
    """The HTML and text parts of a delivered message, as files a browser or pager opens."""
    msg = message_from_bytes(mail.read_bytes(), policy=policy.default)
    html, text = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html is not None and text is not None
    (out / f"{stem}.html").write_text(html.get_content(), encoding="utf-8")
    (out / f"{stem}.txt").write_text(text.get_content(), encoding="utf-8")
    return out / f"{stem}.html", out / f"{stem}.txt"


# When the registry issued some NCT numbers (first posted, approximately): the bundled
# records were rebuilt from exports without first-posted dates, so the demo estimates
# them from the number, and says so. Real polls read the registry's own date.
_NCT_DATES = (
    (0, date(1999, 9, 1)),
    (1_000_000, date(2009, 11, 1)),
    (2_000_000, date(2013, 11, 1)),
    (3_000_000, date(2016, 12, 1)),
    (4_000_000, date(2019, 6, 1)),
    (5_000_000, date(2021, 8, 1)),
    (6_000_000, date(2023, 8, 1)),
    (7_000_000, date(2025, 6, 1)),
    (7_750_000, date(2026, 8, 12)),
)


def estimated_first_posted(nct_id: str) -> str:
    """A first-posted date for the demo, interpolated from the NCT number between known
    points of the registry's numbering (the demo's made-up stand-in for the real date)."""
    n = int(nct_id[3:])
    for (n0, d0), (n1, d1) in pairwise(_NCT_DATES):
        if n <= n1:
            return (d0 + (d1 - d0) * ((n - n0) / (n1 - n0))).isoformat()
    return _NCT_DATES[-1][1].isoformat()


def with_first_posted(records: list[dict[str, Any]]) -> int:
    """Give each record without a first-posted date an estimated one (never after the
    record's own last update); returns how many."""
    done = 0
    for raw in records:
        status = _status(raw)
        if not status.get("studyFirstPostDateStruct"):
            guess = estimated_first_posted(_ident(raw)["nctId"])
            updated = (status.get("lastUpdatePostDateStruct") or {}).get("date") or guess
            status["studyFirstPostDateStruct"] = {"date": min(guess, updated), "type": "ESTIMATED"}
            done += 1
    return done


# The bundled records end in August 2026 while the demo's clock reads November: "recently
# registered" looks back this far in the demo (unless the config sets its own).
DEMO_NEW_WITHIN_DAYS = 120


@dataclass
class _Run:
    """What the demo's steps share: the service over the demo database, the stand-in
    registry, the fake clock, the folder mailer, what is printed and what is kept."""

    service: Service
    database: Any
    registry: Registry
    records: list[dict[str, Any]]
    clock: _Clock
    mailer: FolderMailer
    echo: Callable[[str], None]
    result: dict[str, Any]


def run_demo(out: Path, config: Path | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Poll, mail the first digests, move the registry on, poll again, mail the weekly
    digest and write the report: the service's own jobs (`Service.run_job`), driven by a
    fake clock, with mail delivered into out/mail/ instead of a server."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("demo.db*"), *(out / "mail").glob("*.eml")]:
        stale.unlink()
    records = load_records(DATA)
    estimated = with_first_posted(records)
    registry = Registry()
    registry.replace(copy.deepcopy(records), "2026-11-16T09:00:05")
    result: dict[str, Any] = {"polls": []}
    papers = json.loads((DATA.parent / "demo_papers.json").read_text(encoding="utf-8"))
    literature = LiteratureStandIn([Paper.from_json(p) for p in papers["before"]])
    eu = CtisStandIn(
        [
            json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((DATA.parent / "demo_ctis").glob("*.json"))
        ]
    )
    with LocalApiServer(registry) as server, literature, eu:
        settings = demo_settings(
            server.base_url, out, config, literature=literature.base_url, ctis=eu.base_url
        )
        database = open_database(settings.database.url, auto_upgrade=True)
        mailer = FolderMailer(out / "mail")
        clock = _Clock(datetime(2026, 11, 16, 15, 40))  # Monday, 10:40 in New York
        service = Service(settings, database, now=clock, mailer_factory=lambda: mailer)
        run = _Run(service, database, registry, records, clock, mailer, echo, result)
        try:
            _first_poll(run, estimated, settings.digest.new_within_days)
            _ctis(run, eu, "first")
            _ictrp(run)
            _literature(run, "first")
            _the_week(run)
            _ctis(run, eu, "this week")
            literature.papers += [Paper.from_json(p) for p in papers["this_week"]]
            _literature(run, "this week")
            _backfill_one(run)
            weekly = _weekly_digest_and_report(run, out)
        finally:
            database.dispose()
    (out / "changes.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    if weekly:
        html, text = _write_digest(weekly[0], out, "digest")
        echo(f"Weekly digest mailed (into {out / 'mail'}): {html} and {text}")
    echo(f"Report: {out / 'report.html'} (also {out / 'report.md'}); changes as JSON: {out / 'changes.json'}")
    _what_to_try(out, result, echo)
    result["digests"] = [str(p) for p in mailer.sent]
    return result


def _first_poll(run: _Run, estimated: int, recent_days: int) -> None:
    run.service.run_job("poll")
    first = _last_poll(run.database)
    with run.database.session() as s:
        in_scope = len(list_studies(s, in_scope=True))
    run.echo(
        f"Poll 1 ({first.mode}): {first.fetched} records, {first.new_studies} studies tracked, "
        f"{in_scope} of them in scope."
    )
    if estimated:
        run.echo(
            f"({estimated} bundled records carry no first-posted date: the demo estimates one from "
            "each NCT number, made up for the demo; as they end in August 2026, the demo's "
            f'"registered recently" means the last {recent_days} days.)'
        )
    run.echo(
        "(Four of them, NCT07700011-14, are T-cell-engager studies written for the demo from "
        "public descriptions of real programmes: CLN-978, teclistamab, PIT565, cizutamig.)"
    )
    run.result["polls"].append(_summary(first))
    run.service.run_job("digest")
    run.echo(f"First digest (a landscape summary) mailed to {len(run.mailer.sent)} subscriber(s).")


def _the_week(run: _Run) -> None:
    """The registry moves on three days, and the next poll records what changed."""
    with run.database.session() as s:
        tracked = {row.nct_id for row in list_studies(s, in_scope=True)}
    later = copy.deepcopy(run.records)
    done = later_registry(later, "2026-11-18", lambda n: n in tracked)
    run.registry.replace(later, "2026-11-19T09:00:04")
    run.echo("The registry moves on three days: " + "; ".join(done) + ".")

    run.clock.t = datetime(2026, 11, 19, 15, 40)
    run.service.run_job("poll")
    second = _last_poll(run.database)
    run.result["polls"].append(_summary(second))
    run.echo(f"Poll 2 ({second.mode}): {second.events} changes recorded in {second.requests} requests.")
    with run.database.session() as s:
        rows = [e for e in list_events(s) if e.run_id == second.run_id]
        run.result["changes"] = [
            {
                "nct_id": e.nct_id,
                "kind": e.kind,
                "change": change_text(e.kind, e.field, e.before, e.after),
                "registry_date": e.registry_date,
            }
            for e in rows
        ]
    for c in run.result["changes"]:
        run.echo(f"  {c['nct_id']}  {KIND_LABELS.get(c['kind'], c['kind'])}: {c['change']}")


def _ctis(run: _Run, eu: CtisStandIn, when: str) -> None:
    """EU CTIS (a local stand-in; its trial numbers 2099-... are made up for the demo):
    the first poll tracks what its searches list; this week Spain ends recruitment for
    one trial, and another, also on ClinicalTrials.gov, ends in Germany while its NCT record
    still says it recruits: the next poll tells both, and that the registries disagree."""
    if when != "first":
        record = copy.deepcopy(eu.records[CTIS_WEEK_TRIAL])
        for m in record["authorizedApplication"]["memberStatesConcerned"]:
            if m["mscName"] == "Spain":
                m["mscPublicStatusCode"] = 5
        record["publishDate"] = "2026-11-18T03:12:00.000000000"
        eu.put(record)
        ended = copy.deepcopy(eu.records[CTIS_ENDED_TRIAL])
        ended["ctPublicStatusCode"] = 8
        for m in ended["authorizedApplication"]["memberStatesConcerned"]:
            m["mscPublicStatusCode"] = 8
        ended["publishDate"] = "2026-11-19T02:40:00.000000000"
        eu.put(ended)
    run.service.run_job("ctis")
    polled = _last_poll(run.database)
    if when == "first":
        with run.database.session() as s:
            rows = [store.study_row(s, n) for n in sorted(eu.records)]
        only = [r.nct_id for r in rows if r is not None and not r.registrations]
        both = [
            f"{r.nct_id} (also {r.registrations[0].split(':', 1)[1]})"
            for r in rows
            if r is not None and r.registrations
        ]
        mode = polled.mode.removeprefix("ctis-")
        run.echo(
            f"EU CTIS poll ({mode}, a local stand-in; trial numbers 2099-... made up for the demo): "
            f"{polled.new_studies} trials tracked; on CTIS only: {', '.join(only) or 'none'}; "
            f"registered on both: {', '.join(both) or 'none'}."
        )
        return
    with run.database.session() as s:
        told = [e for e in list_events(s) if e.run_id == polled.run_id]
    run.echo(f"EU CTIS poll ({polled.mode.removeprefix('ctis-')}): {len(told)} change(s).")
    for e in told:
        text = change_text(e.kind, e.field, e.before, e.after)
        run.echo(f"  {e.nct_id}  {KIND_LABELS.get(e.kind, e.kind)}: {text}")


def _ictrp(run: _Run) -> None:
    """A WHO ICTRP export (bundled; ChiCTR, jRCT and EUCTR trials, most made up for the demo)
    imported as a person would after downloading it."""
    result = run.service.app.import_ictrp(DATA.parent / "demo_ictrp.xml")
    s = result.summary
    with run.database.session() as session:
        kept = [e.nct_id for e in list_events(session) if e.run_id == s.run_id and e.kind == "new_study"]
    run.echo(
        f"ICTRP export imported (bundled; most trials made up for the demo): {s.expected} trials in "
        f"the file, {s.fetched} in scope tracked: {', '.join(sorted(kept))}."
    )


def _literature(run: _Run, when: str) -> None:
    """PubMed and Europe PMC (local stand-ins, papers made up for the demo) searched for the
    studies' registry numbers: the first search lists, the next one tells what is new."""
    run.service.run_job("literature")
    with run.database.session() as s:
        runs = recent_literature_runs(s, 2)
        found = [e for e in list_events(s) if e.kind == "publication_found"]
    linked = sum(r.linked for r in runs)
    if when == "first":
        run.echo(
            f"Literature (PubMed and Europe PMC stand-ins; papers made up for the demo): {linked} links "
            "to papers citing the studies' registry numbers, listed on the study pages (a first search "
            "tells nothing: they are not news)."
        )
        return
    run.result["publications"] = [
        {"nct_id": e.nct_id, "change": change_text(e.kind, e.field, e.before, e.after)} for e in found
    ]
    run.echo(f"Literature {when}: {len(found)} new publication(s) found.")
    for c in run.result["publications"]:
        run.echo(f"  {c['nct_id']}  {c['change']}")


def _backfill_one(run: _Run) -> None:
    """One study's history from before our first poll, as `ctmonitor backfill NCT...` fetches it."""
    tracked_record = next(r for r in run.records if _ident(r)["nctId"] == HISTORY_STUDY_ID)
    run.registry.histories[HISTORY_STUDY_ID] = demo_history(tracked_record)
    filled = run.service.app.backfill([HISTORY_STUDY_ID]).summary
    run.result["backfill"] = {
        "nct_id": HISTORY_STUDY_ID,
        "ok": filled.ok,
        "versions_stored": filled.versions,
        "events": filled.events,
    }
    run.echo(
        f"Backfilled the registry's own history of {HISTORY_STUDY_ID} (made up for the demo): "
        f"{filled.versions} versions stored, {filled.events} changes from before our first poll."
    )
    # an EU CTIS trial's own history: the applications and member states' statuses its
    # record lists (no request: the record is stored)
    eu = run.service.app.backfill([CTIS_ONLY_TRIAL]).summary
    run.echo(
        f"Imported EU CTIS's own history of {CTIS_ONLY_TRIAL} from its record: {eu.events} changes "
        "(its applications and modifications, each member state's status), dated by the registry."
    )


def _weekly_digest_and_report(run: _Run, out: Path) -> list[Path]:
    run.clock.t = datetime(2026, 11, 23, 12, 0)  # the next Monday's digest
    before = len(run.mailer.sent)
    run.service.run_job("digest")
    weekly = run.mailer.sent[before:]
    for fmt in ("html", "md"):
        run.service.app.report(StudyFilter(), fmt=fmt, since=date(2026, 11, 16), out=out / f"report.{fmt}")
    return weekly


def _what_to_try(out: Path, result: dict[str, Any], echo: Callable[[str], None]) -> None:
    db_file = out / "demo.db"
    ctm = f"{command_name()} --db {db_file}"  # each line below runs as it is printed
    tries = [(f"{ctm} status", "what the polls did")]
    if result["changes"]:
        nct = result["changes"][0]["nct_id"]
        tries += [(f"{ctm} history {nct}", "a study's timeline"), (f"{ctm} diff {nct}", "its last change")]
    tries += [
        (f"{ctm} history {HISTORY_STUDY_ID}", "a timeline that starts before our first poll"),
        (f"{ctm} serve --mail-folder {out / 'mail'}", "all of it in the browser; sign up at /subscribe"),
    ]
    width = max(len(c) for c, _ in tries)
    echo(f"Database: {db_file}. Try:")
    for command, what in tries:
        echo(f"  {command:<{width}}  # {what}")


def command_name() -> str:
    """How this shell reaches ctmonitor: `ctmonitor` on the PATH, else the script's own
    path (`.venv/bin/ctmonitor` after `make demo`), relative to here when it is below."""
    import shutil
    import sys

    if shutil.which("ctmonitor"):
        return "ctmonitor"
    script = Path(sys.argv[0]) if sys.argv and Path(sys.argv[0]).name == "ctmonitor" else None
    if script is None:
        candidate = Path(sys.executable).parent / "ctmonitor"
        script = candidate if candidate.exists() else None
    if script is None:
        return "ctmonitor"
    script = script.absolute()
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


class _Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def _last_poll(database: Any) -> PollSummary:
    """The poll the service just ran, read back from the runs table."""
    with database.session() as s:
        return store.poll_summary(s, store.recent_runs(s, 1)[0])


def _summary(s: Any) -> dict[str, Any]:
    return {
        "run_id": s.run_id,
        "mode": s.mode,
        "outcome": s.outcome,
        "fetched": s.fetched,
        "new_studies": s.new_studies,
        "events_by_kind": s.events_by_kind,
        "requests": s.requests,
    }

"""The shared test harness: a fake clock, the registry world of a scenario, poll helpers
and records written for the classifier. Test files import from here and from conftest,
never from each other.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import select

from monitor import store
from monitor.config import DigestSettings, Settings, SmtpSettings, SubscriberSettings
from monitor.core.classify import Classifier
from monitor.core.normalize import to_study
from monitor.publishing import delivery
from monitor.publishing.mailer import LazyMailer, SmtpMailer
from monitor.registry.client import CtGovClient
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.locking import LockBusy
from monitor.store.models import DeliveredEvent, Event
from monitor.tracking.sync import Syncer
from tests import snapshots
from tests.conftest import DATA, domain_records, make_settings

# -- time and polls ----------------------------------------------------------------------

Clock = Callable[[], datetime]


class FakeClock:
    """The one fake clock of the suite: a naive UTC time that tests set or advance."""

    def __init__(self, t: datetime | None = None) -> None:
        self.t = t or datetime(2026, 11, 2, 10, 0, 0)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: Any) -> None:
        self.t += timedelta(**kw)


def poll(database: Database, settings: Settings, clock: Clock | None = None, *, full: bool = False):  # type: ignore[no-untyped-def]
    with CtGovClient(settings.api) as client:
        syncer = Syncer(database, client, settings, now=clock or FakeClock())
        return syncer.poll(full=full)


def events(database: Database, run_id: int | None = None) -> list[Event]:
    with database.session() as s:
        rows = store.list_events(s)
    return [e for e in rows if run_id is None or e.run_id == run_id]


def edit(
    registry: Registry,
    nct: str,
    fn: Callable[[dict[str, Any]], None],
    *,
    posted: str = "2026-11-03",
    timestamp: str = "2026-11-03T09:00:04",
) -> None:
    """Change a record in the registry the way the registry does: new content, new update date."""
    raw = registry.studies[nct]
    fn(raw["protocolSection"])
    raw["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": posted, "type": "ACTUAL"}
    registry.put(raw)
    registry.data_timestamp = timestamp


def shift_the_whole_registry(registry: Registry) -> None:
    """What a registry-wide format change looks like from here: every study changes at once."""
    for nct in list(registry.studies):
        raw = registry.studies[nct]
        for loc in raw["protocolSection"].get("contactsLocationsModule", {}).get("locations", []):
            loc["status"] = "RECRUITING" if loc.get("status") != "RECRUITING" else "COMPLETED"
        raw["protocolSection"]["statusModule"]["overallStatus"] = "WITHHELD"
        raw["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2026-11-03"}
        registry.put(raw)
    registry.data_timestamp = "2026-11-03T09:00:00"


# -- a world of subscribers over the domain records --------------------------------------

PEMPHIGUS = "NCT04422912"  # DSG3-CAART, Cabaletta, recruiting
KYSA_LN = "NCT05938725"  # KYV-101 in lupus nephritis, active not recruiting
MG = "NCT06359041"  # CABA-201 in myasthenia gravis, recruiting
NEW_ID = "NCT07799901"

SUBSCRIBERS = [
    SubscriberSettings(name="lupus-team", email="lupus@example.org", indications=["SLE", "lupus nephritis"]),
    SubscriberSettings(name="derm", email="derm@example.org", indications=["pemphigus"]),
    SubscriberSettings(name="mg-coordinator", email="coord@example.org", nct_ids=[MG]),
    SubscriberSettings(name="everything", email="all@example.org"),
]


@dataclass
class World:
    """The registry, the database and the clock of one scenario."""

    database: Database
    registry: Registry
    api: LocalApiServer
    clock: FakeClock
    settings: Settings

    def poll(self) -> Any:
        self.clock.advance(days=1)
        return poll(self.database, self.settings, self.clock)

    def send(self, smtp: SmtpSettings | None = None, **kw: Any) -> list[delivery.Outcome]:
        settings = self.with_smtp(smtp) if smtp else self.settings
        mailer = kw.pop("mailer", None) or LazyMailer(lambda: SmtpMailer(settings.smtp))
        return delivery.send_due(
            self.database, settings, Classifier.from_settings(settings), mailer, now=self.clock(), **kw
        )

    def with_smtp(self, smtp: SmtpSettings) -> Settings:
        return self.settings.model_copy(update={"smtp": smtp})

    def settled(self, subscriber: str) -> list[int]:
        with self.database.session() as s:
            return sorted(
                s.scalars(select(DeliveredEvent.event_id).where(DeliveredEvent.subscriber == subscriber))
            )


_POLLED: dict[tuple[str, str], snapshots.Copy] = {}  # (database kind, classifier version) -> copy


def _world_key(database: Database, settings: Settings) -> tuple[str, str]:
    return database.engine.dialect.name, Classifier.from_settings(settings).version


def share_world(w: World) -> None:
    """Keep a copy of this just-polled world for the process's later shared worlds."""
    _POLLED.setdefault(_world_key(w.database, w.settings), snapshots.take(w.database))


def make_world(database: Database, *, shared: bool = False) -> Iterator[World]:
    """The domain records served locally and polled once; subscribers as above (other tests reuse it).

    `shared`: the poll's work is done once per test process and kind of database, and the
    database it left is copied into this one (tests.snapshots); the registry, server and
    clock are as the poll left them. Tests of the poll itself poll (the default)."""
    registry = Registry()
    registry.replace(domain_records(), "2026-11-02T09:00:05")
    with LocalApiServer(registry) as api:
        base = make_settings(api.base_url, page_size=50)
        settings = base.model_copy(update={"subscribers": SUBSCRIBERS, "digest": DigestSettings()})
        w = World(database, registry, api, FakeClock(), settings)
        copy_ = _POLLED.get(_world_key(database, settings)) if shared else None
        if copy_ is None:
            w.poll()
            if shared:
                share_world(w)
        else:
            copy_.restore(database)
            w.clock.advance(days=1)  # where the poll leaves it
        yield w


def suspend(ps: dict[str, Any]) -> None:
    ps["statusModule"]["overallStatus"] = "SUSPENDED"
    ps["statusModule"]["whyStopped"] = "Manufacturing review"


def changes_in_the_registry(w: World) -> None:
    """A week in the registry: a suspension with its reason, an enrollment update, a new study."""

    def enroll(ps: dict[str, Any]) -> None:
        ps["designModule"]["enrollmentInfo"] = {"count": 24, "type": "ACTUAL"}

    edit(w.registry, PEMPHIGUS, suspend, posted="2026-11-04")
    edit(w.registry, KYSA_LN, enroll, posted="2026-11-04")
    newcomer = copy.deepcopy(w.registry.studies[KYSA_LN])
    ident = newcomer["protocolSection"]["identificationModule"]
    ident["nctId"] = NEW_ID
    ident["briefTitle"] = "Anti-CD19 CAR T Cells in Refractory Lupus Nephritis"
    newcomer["protocolSection"]["statusModule"]["studyFirstPostDateStruct"] = {"date": "2026-11-04"}
    w.registry.put(newcomer)
    w.registry.data_timestamp = "2026-11-05T09:00:04"
    w.poll()


# -- records written for the classifier ---------------------------------------------------

CLASSIFIER = Classifier()


def record(
    title: str,
    interventions: list[dict[str, Any]],
    conditions: list[str],
    summary: str = "",
    study_type: str = "INTERVENTIONAL",
    arms: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT09900001", "briefTitle": title},
            "statusModule": {"overallStatus": "RECRUITING"},
            "descriptionModule": {"briefSummary": summary},
            "conditionsModule": {"conditions": conditions},
            "designModule": {"studyType": study_type},
            "armsInterventionsModule": {"interventions": interventions, "armGroups": arms or []},
        },
        "hasResults": False,
    }


def c_of(raw: dict[str, Any]):  # type: ignore[no-untyped-def]
    return CLASSIFIER.classify(to_study(raw))


# -- processes killed mid-run -------------------------------------------------------------


def kill_when(config: Path, ready: Callable[[], bool], *command: str) -> None:
    """Run a real `ctmonitor --config CONFIG COMMAND...` process (`poll` by default) and
    SIGKILL it once `ready()` says it got far enough. (It inherits CTMONITOR_DATABASE_URL.)"""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from monitor.cli import main; raise SystemExit(main())",
            "--config",
            str(config),
            *(command or ("poll",)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while not ready():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the process never got as far as the test needs"
            time.sleep(0.05)
        proc.kill()
    finally:
        proc.kill()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -9


def once_unlocked(run: Callable[[], Any]) -> Any:
    """`run()` once the writer lock is free: PostgreSQL frees a killed process's advisory lock
    when it sees the connection drop, a moment after the kill; until then a run rightly
    refuses to start."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return run()
        except LockBusy:
            assert time.monotonic() < deadline, "the killed process's lock was never released"
            time.sleep(0.1)


# -- mail ------------------------------------------------------------------------------


def parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def by_recipient(messages: list[EmailMessage]) -> dict[str, EmailMessage]:
    return {str(m["To"].addresses[0].addr_spec): m for m in messages}


# -- the literature stand-in's papers ---------------------------------------------------------

PAPERS: list[dict[str, Any]] = json.loads((DATA / "literature" / "papers.json").read_text(encoding="utf-8"))
# A paper published after the first search: DSG3-CAART's first publication.
LATER: dict[str, Any] = {
    "title": (
        "Desmoglein 3 chimeric autoantibody receptor T cells in mucosal pemphigus vulgaris: a phase 1 trial"
    ),
    "authors": ["Payne AS", "Volkov J", "Nunez D"],
    "journal": "Nat Med",
    "date": "2026-11-20",
    "indexed": "2026-11-21",
    "pmid": "41234567",
    "doi": "10.1038/s41591-026-04001-x",
    "abstract": "DSG3-CAART was given to 12 participants with mucosal pemphigus vulgaris.",
    "databank": ["NCT04422912"],
    "types": ["Journal Article", "Clinical Trial, Phase I"],
}


def papers(*extra: dict[str, Any]) -> list[Any]:
    from monitor.registry.literaturestand import Paper

    return [Paper.from_json(copy.deepcopy(p)) for p in (*PAPERS, *extra)]


def lit_settings(base: str, **kw: Any) -> Any:
    """[literature] pointed at the stand-in, without waiting between requests."""
    from monitor.literature_config import LiteratureSettings

    values: dict[str, Any] = {
        "pubmed_url": base,
        "europepmc_url": base,
        "pubmed_interval_seconds": 0,
        "min_interval_seconds": 0,
        "backoff_base_seconds": 0,
        "backoff_max_seconds": 0,
        "timeout_seconds": 5,
        "terms_per_request": 20,
    }
    return LiteratureSettings(**(values | kw))


# -- the landscape answered by the database, against the rows ------------------------------


def landscape_rows(database: Database) -> list[dict[str, Any]]:
    """Every stored current study as the landscape's rows (summaries and search text)."""
    from monitor.app.overview import summary_dict

    with database.session() as s:
        found = store.study_summaries(s, in_scope=None, with_classification=False)
    out = []
    for r in found:
        d = summary_dict(r, fields=r._fields)
        d["search"] = r.search_text or ""
        out.append(d)
    return out


def _by_rows(rows: list[dict[str, Any]], q: Any, *, counts: bool = True) -> Any:
    """The view the rows give (core.landscape.view: the semantics the database must keep)."""
    from monitor.core.landscape import view
    from monitor.core.trials import fold

    return view(fold([r for r in rows if q.include_out_of_scope or r["in_scope"]]), q, counts=counts)


# searches a reader types: a word, part of one, a code however it is written, a short one,
# two words, an accent, a word found nowhere
WORDS = ["lupus", "cd19", "kyv", "KYV-101", "caba 201", "caba201", "car-t", "ab", "t", "NCT0"]
WORDS += ["myasthenia gravis", "São", "zzzz-not-there", "bcma", "university hospital", "-", "c"]
WORDS += ["2024-5", "ChiCTR"]


def drawn_views(rows: list[dict[str, Any]], n: int, seed: int = 37) -> list[dict[str, list[str]]]:
    """Landscape queries drawn (seeded) from the labels the rows carry, and a few they do not."""
    import random

    from monitor.core.landscape import SORT_KEYS, antigens

    rng = random.Random(seed)
    pool = {
        "modality": sorted({r["modality"] for r in rows if r["modality"]}),
        "target": [*sorted(antigens(t for r in rows for t in r["targets"])), "bcma"],
        "indication": sorted({t for r in rows for t in r["indications"]}),
        "status": ["RECRUITING", "completed", "active", "SUSPENDED"],
        "phase": sorted({t for r in rows for t in r["phases"]}),
        "country": [*sorted({t for r in rows for t in r["countries"]})[:20], "germany"],
        "source": ["autologous", "allogeneic", "in vivo"],
        "product": [*sorted({t for r in rows for t in r["products"]})[:30], "kyv101", "CABA 201"],
        "sponsor": ["univers", "Kyverna", "hospital", "ø", "Novartis"],
        "registry": ["ctgov", "ctis", "chictr", "jrct", "euctr"],
    }
    out = []
    for _ in range(n):
        params: dict[str, list[str]] = {}
        for kind in rng.sample(sorted(pool), rng.randint(0, 3)):
            if pool[kind]:
                params[kind] = rng.sample(pool[kind], min(len(pool[kind]), rng.randint(1, 2)))
        if rng.random() < 0.5:
            params["q"] = [rng.choice(WORDS)]
        if rng.random() < 0.3:
            params["all"] = ["1"]
        if rng.random() < 0.15:
            params["review"] = ["1"]
        params["sort"] = [rng.choice(sorted(SORT_KEYS))]
        params["order"] = [rng.choice(["asc", "desc"])]
        params["per_page"] = [rng.choice(["25", "50"])]
        params["page"] = [rng.choice(["1", "1", "2"])]
        out.append(params)
    return out


def views_agree(app: Any, n: int) -> int:
    """Asserts that `n` drawn views of the landscape are the same answered by the database
    (the application) and by the rows (core.landscape.view): rows, order, totals, counts,
    charts and cursors. Returns how many of them held studies."""
    import dataclasses

    from monitor.core.landscape import LandscapeQuery

    def ids(rows: list[dict[str, Any]]) -> list[str]:
        return [r["nct_id"] for r in rows]

    rows = landscape_rows(app.database)
    held = 0
    for params in drawn_views(rows, n):
        q = app.landscape(LandscapeQuery.from_params(params), counts=False, marks=False).query
        got = app.landscape(q, complete=True)
        want = _by_rows(rows, q)
        where = f"for {params}"
        assert got.total == want.total, where
        assert ids(got.rows) == ids(want.rows), where
        assert ids(got.matching) == ids(want.matching), where
        assert got.next_cursor == want.next_cursor, where
        assert (got.by_modality, got.by_indication, got.picture) == (
            want.by_modality,
            want.by_indication,
            want.picture,
        ), where
        assert (got.by_registry, got.on_several) == (want.by_registry, want.on_several), where
        if want.next_cursor:  # the API's next page, after the cursor
            after = dataclasses.replace(q, cursor=want.next_cursor)
            got_next = app.landscape(after, counts=False, marks=False)
            assert ids(got_next.rows) == ids(_by_rows(rows, after, counts=False).rows), where
        held += bool(want.total)
    return held

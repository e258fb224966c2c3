"""Digest benchmark: build, render and send digests for N subscribers over 5,000 events.

    .venv/bin/python bench/digest.py [--events 5000] [--subscribers 10] [--studies 1500] [--varied]

Builds a SQLite database through the migrations with N labelled studies and a week of
events of every kind (realistic mix: mostly sites and dates, some status changes, a few
new studies), then sends every subscriber's digest through a real SMTP server on
127.0.0.1 (aiosmtpd) with the default size caps. Prints seconds and message sizes.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from monitor import store  # noqa: E402
from monitor.config import Settings, SmtpSettings, SubscriberSettings  # noqa: E402
from monitor.core.classify import Classifier  # noqa: E402
from monitor.core.domain import IMPORTANCE, EventKind  # noqa: E402
from monitor.publishing import delivery  # noqa: E402
from monitor.publishing.mailer import SmtpMailer  # noqa: E402
from monitor.store.db import open_database  # noqa: E402
from monitor.store.models import Event, PollRun, StudyRow  # noqa: E402
from tests.smtp import SmtpServer  # noqa: E402

MODALITIES = ["CAR-T"] * 6 + ["CAR-NK", "CAAR-T", "CAR-Treg", "bispecific"]
TARGETS = ["CD19", "CD19", "BCMA", "CD19/BCMA", "CD20", "DSG3"]
INDICATIONS = [
    "SLE",
    "lupus nephritis",
    "myasthenia gravis",
    "systemic sclerosis",
    "multiple sclerosis",
    "NMOSD",
]
COUNTRIES = ["China", "United States", "Germany", "France", "Italy"]
STATUSES = ["RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "SUSPENDED"]
# Kind mix of a busy week: sites and dates dominate, status changes are rarer.
KINDS = (
    [EventKind.SITE_ADDED] * 30
    + [EventKind.SITE_STATUS] * 15
    + [EventKind.DATE] * 20
    + [EventKind.ENROLLMENT] * 10
    + [EventKind.STATUS] * 8
    + [EventKind.CONDITION_ADDED] * 5
    + [EventKind.NEW_STUDY] * 3
    + [EventKind.RESULTS_POSTED] * 2
    + [EventKind.LEFT_SCOPE] * 1
)


def change(kind: EventKind, i: int, rng: random.Random) -> tuple[str, object, object]:
    site = f"Site {i}, {rng.choice(['Erlangen', 'Boston', 'Wuhan'])}, {rng.choice(COUNTRIES)}"
    if kind == EventKind.SITE_ADDED:
        return "locations", None, {"site": site, "status": "RECRUITING"}
    if kind == EventKind.SITE_STATUS:
        return (
            "locations",
            {"site": site, "status": "NOT_YET_RECRUITING"},
            {"site": site, "status": "RECRUITING"},
        )
    if kind == EventKind.DATE:
        return "primary_completion_date", {"date": "2026-06", "type": "ESTIMATED"}, {"date": "2027-01"}
    if kind == EventKind.ENROLLMENT:
        return "enrollment", {"count": 12, "type": "ESTIMATED"}, {"count": 18 + i % 30, "type": "ESTIMATED"}
    if kind == EventKind.STATUS:
        return "overall_status", "NOT_YET_RECRUITING", rng.choice(STATUSES)
    if kind == EventKind.CONDITION_ADDED:
        return "conditions", None, "Lupus Nephritis"
    if kind == EventKind.NEW_STUDY:
        return "study", None, {"status": "RECRUITING", "first_posted": "2026-11-18", "phases": ["PHASE1"]}
    if kind == EventKind.RESULTS_POSTED:
        return "results", None, {"first_posted": "2026-11-19"}
    return "scope", {"in_scope": True}, {"in_scope": False, "reason": "oncology indication"}


def build(db_url: str, n_studies: int, n_events: int, now: datetime) -> None:
    rng = random.Random(11)
    database = open_database(db_url, auto_upgrade=True)
    with database.session() as s:
        s.add(
            PollRun(
                mode="full",
                started_at=now - timedelta(days=8),
                finished_at=now - timedelta(days=8),
                outcome="ok",
                data_timestamp="2026-11-15T09:00:00",
                query_hash="q",
                fetched=n_studies,
                expected=n_studies,
            )
        )
        rows = []
        for i in range(n_studies):
            rows.append(
                {
                    "nct_id": f"NCT{10000000 + i:08d}",
                    "brief_title": f"Study {i} of {rng.choice(TARGETS)} CAR T cells in refractory "
                    f"{rng.choice(INDICATIONS)}",
                    "overall_status": rng.choice(STATUSES),
                    "phases": ("PHASE1", "PHASE2"),
                    "lead_sponsor": rng.choice(
                        ["Kyverna Therapeutics", "Cabaletta Bio", "Zhejiang University"]
                    ),
                    "countries": tuple(sorted(set(rng.sample(COUNTRIES, 2)))),
                    "first_post_date": "2024-05-01",
                    "content_hash": "x",
                    "raw_hash": "x",
                    "first_seen_at": now - timedelta(days=8),
                    "last_seen_at": now,
                    "in_scope": True,
                    "modality": rng.choice(MODALITIES),
                    "targets": (rng.choice(TARGETS),),
                    "indications": tuple(sorted(set(rng.sample(INDICATIONS, 2)))),
                    "cell_source": rng.choice(["autologous", "allogeneic", None]),
                }
            )
        s.execute(insert(StudyRow), rows)
        store.reindex(s, [r["nct_id"] for r in rows])  # as every write of a study does
    database.dispose()


def add_events(db_url: str, n_studies: int, n_events: int, now: datetime) -> None:
    rng = random.Random(12)
    database = open_database(db_url, auto_upgrade=False)
    with database.session() as s:
        s.add(
            PollRun(
                mode="incremental",
                started_at=now - timedelta(hours=1),
                finished_at=now - timedelta(hours=1),
                outcome="ok",
                data_timestamp="2026-11-22T09:00:00",
                query_hash="q",
            )
        )
        rows = []
        for i in range(n_events):
            kind = rng.choice(KINDS)
            field, before, after = change(kind, i, rng)
            rows.append(
                {
                    "nct_id": f"NCT{10000000 + rng.randrange(n_studies):08d}",
                    "kind": str(kind),
                    "field": field,
                    "item_key": str(i),
                    "before": before,
                    "after": after,
                    "importance": IMPORTANCE[kind],
                    "registry_date": "2026-11-20",
                    "detected_at": now - timedelta(days=rng.randrange(7)),
                }
            )
        s.execute(insert(Event), rows)
    database.dispose()


def varied(n: int) -> list[SubscriberSettings]:
    """A filter of its own for each subscriber (no two digests alike: nothing shared)."""
    from itertools import combinations, product

    pairs = [list(c) for k in (1, 2) for c in combinations(INDICATIONS, k)]
    combos = list(
        product(pairs, [[], *([c] for c in COUNTRIES)], [[], ["CAR-T"], ["CAR-NK", "CAAR-T"]], [1, 2])
    )
    out = []
    for i in range(n):
        indications, countries, modalities, importance = combos[i % len(combos)]
        out.append(
            SubscriberSettings(
                name=f"sub{i}",
                email=f"sub{i}@example.org",
                indications=indications,
                countries=countries,
                modalities=modalities,
                min_importance=importance,
            )
        )
    return out


def subscribers(n: int) -> list[SubscriberSettings]:
    kinds = [
        {},
        {"indications": ["SLE", "lupus nephritis"]},
        {"modalities": ["CAR-T"], "targets": ["CD19"]},
        {"indications": ["myasthenia gravis"], "min_importance": 2},
        {"countries": ["Germany"]},
        {"sponsors": ["Cabaletta"]},
        {"statuses": ["RECRUITING"]},
        {"modalities": ["CAAR-T", "CAR-Treg"]},
        {"targets": ["BCMA"], "min_importance": 3},
        {"indications": ["multiple sclerosis", "NMOSD"]},
    ]
    return [
        SubscriberSettings(name=f"sub{i}", email=f"sub{i}@example.org", **kinds[i % len(kinds)])
        for i in range(n)
    ]


class _Forget(list):  # type: ignore[type-arg]
    """An inbox that keeps nothing: the peak memory printed is the digest run's."""

    def append(self, _message: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--studies", type=int, default=1500)
    ap.add_argument(
        "--varied", action="store_true", help="a filter of its own for each subscriber (nothing shared)"
    )
    args = ap.parse_args()
    now = datetime(2026, 11, 23, 7, 0)
    with tempfile.TemporaryDirectory() as tmp, SmtpServer(Path(tmp)) as server:
        url = f"sqlite:///{tmp}/bench.db"
        build(url, args.studies, args.events, now)
        server.inbox.messages = _Forget()  # the server parses each message and lets it go
        smtp: SmtpSettings = server.settings()
        readers = varied(args.subscribers) if args.varied else subscribers(args.subscribers)
        settings = Settings(smtp=smtp, subscribers=readers)
        classifier = Classifier.from_settings(settings)
        database = open_database(url, auto_upgrade=False)
        t0 = time.perf_counter()
        delivery.send_due(database, settings, classifier, SmtpMailer(smtp), now=now - timedelta(days=7))
        t_land = time.perf_counter() - t0
        add_events(url, args.studies, args.events, now)
        t0 = time.perf_counter()
        outcomes = delivery.send_due(database, settings, classifier, SmtpMailer(smtp), now=now)
        t_send = time.perf_counter() - t0
        database.dispose()
    filters = len({repr((r.indications, r.countries, r.modalities, r.min_importance)) for r in readers})
    print(
        f"{args.subscribers} subscribers ({filters} different filters), {args.studies} studies, "
        f"{args.events} events (SQLite, SMTP on loopback; target: 1,000 subscribers under 60 s)"
    )
    print(f"  first digests (landscapes):   {t_land:6.2f} s")
    print(
        f"  weekly digests (build, render, send, record): {t_send:6.2f} s "
        f"({t_send / max(len(outcomes), 1) * 1000:.0f} ms per subscriber)"
    )
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory of the process (with the SMTP server): {peak:.0f} MB")
    print(f"  {'subscriber':<10} {'events':>7} {'listed':>7} {'HTML KB':>8} {'message KB':>11}")
    for o in outcomes:
        print(
            f"  {o.subscriber:<10} {o.events:>7} {o.listed:>7} "
            f"{o.html_bytes / 1024:>8.1f} {o.message_bytes / 1024:>11.1f}"
        )
    sizes = [o.message_bytes for o in outcomes if o.status == "sent"]
    if sizes:
        print(
            f"  largest message {max(sizes) / 1024:.1f} KB; all within the 100 KB HTML cap: "
            f"{all(o.html_bytes <= 100 * 1024 for o in outcomes)}"
        )


if __name__ == "__main__":
    main()

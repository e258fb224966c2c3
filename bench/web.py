"""Web benchmark: server time of the landscape, its downloads, the change stream and the
API over N studies, at several sizes and on both databases, and of a study page with 200
versions (issue 37's target: under 200 ms at the 95th percentile, over 100,000 studies).

    .venv/bin/python bench/web.py [--sizes 5000,20000] [--db sqlite,postgresql]
                                  [--versions 200] [--repeat 7]

For each database and size it builds a database the way production does (the migrations,
then a real first sync through the client against the local registry on 127.0.0.1): N
studies written from the labelled domain records under new NCT ids, then a year of
weekly polls (`--weeks`) after each of which 1% of them changed; then one study is
edited and polled again until it has the asked number of versions (in a database of its
own). Each page is requested in process through the ASGI stack (Starlette's test client:
routing, the application layer, the templates, the security headers; no network in
between) and the median and 95th percentile of the repeats printed beside the target.
PostgreSQL: $CTMONITOR_BENCH_PG_URL (default: the local server's database `test`), each
size in a schema of its own, dropped afterwards (kept with --keep, for EXPLAIN). 100,000
studies take a long first sync.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from monitor.app import Application  # noqa: E402
from monitor.config import ApiSettings, QuerySettings, Settings, SyncSettings  # noqa: E402
from monitor.registry.localdata import load_records  # noqa: E402
from monitor.registry.localserver import LocalApiServer, Registry  # noqa: E402
from monitor.store.db import open_database  # noqa: E402
from monitor.web import create_app  # noqa: E402
from monitor.web.server import tune_collector  # noqa: E402

STATUSES = ["RECRUITING", "NOT_YET_RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED", "SUSPENDED"]


def generate(n: int) -> list[dict]:  # type: ignore[type-arg]
    rng = random.Random(11)
    templates = load_records(ROOT / "tests" / "data" / "domain" / "records.jsonl")
    out = []
    for i in range(n):
        r = copy.deepcopy(templates[i % len(templates)])
        ps = r["protocolSection"]
        ps["identificationModule"]["nctId"] = f"NCT{20000000 + i:08d}"
        ps["statusModule"]["overallStatus"] = rng.choice(STATUSES)
        ps["statusModule"]["lastUpdatePostDateStruct"] = {
            "date": f"2026-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}"
        }
        out.append(r)
    return out


def timed(client: TestClient, path: str, repeat: int) -> tuple[float, float, int, float]:
    """Median and 95th percentile (ms) of `repeat` requests, after one to warm up (its time
    is the first request after a poll: the view's counts not yet cached, except the
    landing pages', which the server counts by itself, app.warming)."""
    t0 = time.perf_counter()
    client.get(path)  # warm: templates compiled, caches filled
    first = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return statistics.median(times) * 1000, p95 * 1000, len(r.content), first


TARGET_MS = 200


def first_bytes(client: TestClient, path: str, repeat: int) -> float:
    """Median milliseconds until a streamed download's first bytes (the reader's wait
    before the file starts arriving; the whole file takes as long as its size)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with client.stream("GET", path) as r:
            next(r.iter_bytes())
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def report(name: str, ms: float, p95: float, size: int, first: float) -> None:
    verdict = "ok" if p95 < TARGET_MS else "OVER"
    print(f"  {name:<42} {ms:8.1f} {p95:8.1f} ms  {size / 1024:8.1f} KB  {verdict:<4} (first {first:.0f} ms)")


def _url(kind: str, tmp: str, name: str, schemas: list[str]) -> str:
    if kind == "sqlite":
        return f"sqlite:///{Path(tmp) / name}"
    from sqlalchemy import create_engine, text

    base = os.environ.get("CTMONITOR_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    schemas.append(schema)
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def _drop(schemas: list[str]) -> None:
    if not schemas:
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(
        os.environ.get("CTMONITOR_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    )
    with engine.begin() as conn:
        for schema in schemas:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def _world(records: list[dict], url: str):  # type: ignore[no-untyped-def,type-arg]
    from datetime import datetime, timedelta

    registry = Registry()
    registry.replace(records, "2026-11-02T09:00:05")
    api = LocalApiServer(registry).start()
    settings = Settings(
        api=ApiSettings(base_url=api.base_url, min_interval_seconds=0, page_size=1000),
        sync=SyncSettings(hold_min_studies=10**6),
        queries=[QuerySettings(name="everything", term="ALL")],
    )
    database = open_database(url, auto_upgrade=True)
    clock = [datetime(2026, 11, 2, 10)]

    def now():  # type: ignore[no-untyped-def]
        return clock[0]

    def tick() -> None:
        clock[0] += timedelta(hours=1)

    return registry, api, database, Application(settings, database=database, now=now), tick


LANDSCAPE_PAGES = [
    ("landscape, first page", "/"),
    ("landscape, 500 a page", "/?per_page=500"),
    ("landscape, filtered and searched", "/?modality=CAR-T&indication=SLE&q=cd19&sort=sponsor"),
    ("landscape sorted by title", "/?sort=title&order=asc"),
    ("landscape searched for a product", "/?q=kyv-101"),
    ("landscape as CSV (every match)", "/?format=csv"),
    ("landscape as JSON (every match)", "/?format=json"),
    ("API: studies, first page", "/api/studies"),
    ("API: studies, filtered", "/api/studies?indication=SLE&status=recruiting"),
    ("API: events", "/api/events"),
    ("changes, everything", "/changes"),
    ("changes, filtered", "/changes?modality=CAR-T&kind=status_change"),
    ("feed, everything", "/feeds/changes.xml"),
    ("products × indications", "/products"),
]


def a_year(registry: Registry, app: Application, tick: Any, n: int, weeks: int) -> int:
    """`weeks` weekly polls, each after the registry changed 1% of the studies (a status or
    an enrollment), as real polls record them. Returns the changes recorded."""
    rng = random.Random(3)
    ids = sorted(registry.studies)
    for week in range(weeks):
        posted = (date(2026, 11, 2) + timedelta(weeks=week + 1)).isoformat()  # the poll's week
        for nct in rng.sample(ids, max(1, n // 100)):
            raw = registry.studies[nct]
            ps = raw["protocolSection"]
            if rng.random() < 0.5:
                ps["statusModule"]["overallStatus"] = rng.choice(STATUSES)
            else:
                ps["designModule"]["enrollmentInfo"] = {"count": rng.randint(5, 200), "type": "ESTIMATED"}
            ps["statusModule"]["lastUpdatePostDateStruct"] = {"date": posted}
            registry.put(raw)
        registry.data_timestamp = f"{posted}T09:00:00"
        for _ in range(24 * 7):
            tick()
        assert app.poll().ok
    with app.database.session() as s:
        from sqlalchemy import func, select

        from monitor.store.models import Event

        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def landscape(kind: str, n: int, repeat: int, tmp: str, schemas: list[str], weeks: int) -> None:
    records = generate(n)
    registry, api, database, app, tick = _world(records, _url(kind, tmp, f"landscape-{n}.db", schemas))
    t0 = time.perf_counter()
    app.poll()
    sync = time.perf_counter() - t0
    t0 = time.perf_counter()
    changes = a_year(registry, app, tick, n, weeks)
    print(
        f"{kind}, {n} studies (first sync {sync:.1f} s; {weeks} weekly polls in "
        f"{time.perf_counter() - t0:.1f} s, {changes} changes recorded with the first sync's):"
    )
    print(f"  {'':<42} {'median':>8} {'p95':>8}     (target: p95 under {TARGET_MS} ms)")
    asgi = create_app(app)
    tune_collector()  # as `ctmonitor serve` does
    t0 = time.perf_counter()
    app.warm()  # what `ctmonitor serve` counts by itself once a poll moved the studies
    print(f"  the server's own count of its landing pages after the poll: {time.perf_counter() - t0:.1f} s")
    with TestClient(asgi) as client:
        for name, path in LANDSCAPE_PAGES:
            report(name, *timed(client, path, repeat))
            if "format=" in path:
                print(f"  {'  its first bytes':<42} {first_bytes(client, path, 3):8.1f} ms (median of 3)")
    database.dispose()
    api.stop()


def study_page(kind: str, versions: int, repeat: int, tmp: str, schemas: list[str]) -> None:
    records = generate(1)
    busy = records[0]["protocolSection"]["identificationModule"]["nctId"]
    registry, api, database, app, tick = _world(records, _url(kind, tmp, "study.db", schemas))
    app.poll()
    for v in range(2, versions + 1):
        raw = registry.studies[busy]
        ps = raw["protocolSection"]
        ps["designModule"]["enrollmentInfo"] = {"count": v, "type": "ESTIMATED"}
        ps["statusModule"]["overallStatus"] = STATUSES[v % len(STATUSES)]
        ps["statusModule"]["lastUpdatePostDateStruct"] = {
            "date": f"2027-{1 + v // 28 % 12:02d}-{1 + v % 28:02d}"
        }
        registry.put(raw)
        registry.data_timestamp = f"2027-01-01T00:{v // 60:02d}:{v % 60:02d}"
        tick()
        assert app.poll().ok
    print(f"{kind}, one study with {versions} versions:")
    asgi = create_app(app)
    tune_collector()  # as `ctmonitor serve` does
    with TestClient(asgi) as client:
        for name, path in [
            (f"study page, {versions} versions", f"/studies/{busy}"),
            ("compare first with latest", f"/studies/{busy}/compare?from=first&to=latest"),
            ("API: one study", f"/api/studies/{busy}"),
        ]:
            report(name, *timed(client, path, repeat))
    database.dispose()
    api.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--sizes", default="5000,20000", help="study counts, comma-separated (e.g. 5000,20000,100000)"
    )
    ap.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument("--versions", type=int, default=200)
    ap.add_argument("--weeks", type=int, default=52, help="weekly polls of changes before measuring")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument(
        "--keep", action="store_true", help="keep the PostgreSQL schemas (printed) for EXPLAIN afterwards"
    )
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    kinds = [x.strip() for x in args.db.split(",") if x.strip()]
    schemas: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in kinds:
                for n in sizes:
                    landscape(kind, n, args.repeat, tmp, schemas, args.weeks)
                study_page(kind, args.versions, args.repeat, tmp, schemas)
    finally:
        if args.keep:
            print("kept PostgreSQL schemas:", ", ".join(schemas) or "none")
        else:
            _drop(schemas)


if __name__ == "__main__":
    main()

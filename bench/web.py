"""Web benchmark: server time of the landscape over 5,000 studies and of a study page with
200 versions (issue 19's target: well under 200 ms each).

    .venv/bin/python bench/web.py [--studies 5000] [--versions 200] [--repeat 7]

Builds a SQLite database the way production does (the migrations, then real polls
through the client against the local registry on 127.0.0.1): N studies written from the
labelled domain records under new NCT ids, then one study edited and polled again until
it has the asked number of versions. Each page is then requested in process through the
ASGI stack (Starlette's test client: routing, the application layer, the templates,
the security headers; no network in between), and the median of the repeats printed.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from monitor.app import Application  # noqa: E402
from monitor.config import ApiSettings, QuerySettings, Settings, SyncSettings  # noqa: E402
from monitor.registry.localdata import load_records  # noqa: E402
from monitor.registry.localserver import LocalApiServer, Registry  # noqa: E402
from monitor.store.db import open_database  # noqa: E402
from monitor.web import create_app  # noqa: E402

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


def timed(client: TestClient, path: str, repeat: int) -> tuple[float, int]:
    client.get(path)  # warm: templates compiled, caches filled
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, (path, r.status_code)
    return statistics.median(times) * 1000, len(r.content)


def _world(records: list[dict], tmp: str, name: str):  # type: ignore[no-untyped-def,type-arg]
    from datetime import datetime, timedelta

    registry = Registry()
    registry.replace(records, "2026-11-02T09:00:05")
    api = LocalApiServer(registry).start()
    settings = Settings(
        api=ApiSettings(base_url=api.base_url, min_interval_seconds=0, page_size=1000),
        sync=SyncSettings(hold_min_studies=10**6),
        queries=[QuerySettings(name="everything", term="ALL")],
    )
    database = open_database(f"sqlite:///{Path(tmp) / name}", auto_upgrade=True)
    clock = [datetime(2026, 11, 2, 10)]

    def now():  # type: ignore[no-untyped-def]
        return clock[0]

    def tick() -> None:
        clock[0] += timedelta(hours=1)

    return registry, api, database, Application(settings, database=database, now=now), tick


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=5000)
    ap.add_argument("--versions", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    records = generate(args.studies)
    busy = records[0]["protocolSection"]["identificationModule"]["nctId"]
    with tempfile.TemporaryDirectory() as tmp:
        # the landscape: N studies, one full sync
        _registry, api, database, app, _ = _world(records, tmp, "landscape.db")
        t0 = time.perf_counter()
        app.poll()
        print(f"setup: first sync of {args.studies} studies in {time.perf_counter() - t0:.1f} s")
        # one study with many versions, in a database of its own (each poll of a large
        # database also re-reads its tracked studies by id: not what is measured here)
        registry2, api2, database2, app2, tick = _world(copy.deepcopy(records[:1]), tmp, "study.db")
        t0 = time.perf_counter()
        app2.poll()
        for v in range(2, args.versions + 1):
            raw = registry2.studies[busy]
            ps = raw["protocolSection"]
            ps["designModule"]["enrollmentInfo"] = {"count": v, "type": "ESTIMATED"}
            ps["statusModule"]["overallStatus"] = STATUSES[v % len(STATUSES)]
            ps["statusModule"]["lastUpdatePostDateStruct"] = {
                "date": f"2027-{1 + v // 28 % 12:02d}-{1 + v % 28:02d}"
            }
            registry2.put(raw)
            registry2.data_timestamp = f"2027-01-01T00:{v // 60:02d}:{v % 60:02d}"
            tick()
            assert app2.poll().ok
        print(f"setup: {args.versions} versions of {busy} in {time.perf_counter() - t0:.1f} s")

        print(f"server time per request, median of {args.repeat} (target: well under 200 ms):")
        with TestClient(create_app(app)) as client:
            for name, path in [
                (f"landscape of {args.studies}, first page", "/"),
                ("landscape, 500 a page", "/?per_page=500"),
                ("landscape, filtered and searched", "/?modality=CAR-T&indication=SLE&q=cd19&sort=sponsor"),
                ("landscape as CSV (every match)", "/?format=csv"),
                ("API: studies, first page", "/api/studies"),
                ("changes, everything", "/changes"),
            ]:
                ms, size = timed(client, path, args.repeat)
                print(f"  {name:<40} {ms:7.1f} ms  {size / 1024:8.1f} KB")
        with TestClient(create_app(app2)) as client:
            for name, path in [
                (f"study page, {args.versions} versions", f"/studies/{busy}"),
                ("compare first with latest", f"/studies/{busy}/compare?from=first&to=latest"),
                ("API: one study", f"/api/studies/{busy}"),
            ]:
                ms, size = timed(client, path, args.repeat)
                print(f"  {name:<40} {ms:7.1f} ms  {size / 1024:8.1f} KB")
        for server, db in ((api, database), (api2, database2)):
            db.dispose()
            server.stop()


if __name__ == "__main__":
    main()

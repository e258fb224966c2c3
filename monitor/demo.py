"""The offline demo: the whole job against a local registry, no network needed.

It serves bundled real records (CAR T, CAAR T, CAR-Treg and bispecific studies in
autoimmune disease, rebuilt from registry exports) from the local API server, polls
them with the default watch queries from config.toml, then moves the registry a few
days forward with the kind of changes users care about (a study opens recruitment, one
is suspended with a reason, one adds sites, a new study is registered) and polls again.
Same code paths as the service: `Syncer.poll()` over the real HTTP client.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.config import ApiSettings, Settings, load_settings
from monitor.ctgov import CtGovClient
from monitor.db import open_database
from monitor.describe import KIND_LABELS, change_text
from monitor.localapi import LocalApiServer, Registry, load_records
from monitor.store import list_events, list_studies
from monitor.sync import Syncer

DATA = Path(__file__).parent / "data" / "demo_records.jsonl"
NEW_STUDY_ID = "NCT07700001"


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

    newcomer = copy.deepcopy(by_status["RECRUITING"][2])
    _ident(newcomer)["nctId"] = NEW_STUDY_ID
    _ident(newcomer)["briefTitle"] = (
        "CD19/BCMA Dual-target CAR-T Cells in Refractory Systemic Lupus Erythematosus and Lupus Nephritis"
    )
    _status(newcomer)["overallStatus"] = "NOT_YET_RECRUITING"
    _status(newcomer)["studyFirstPostDateStruct"] = {"date": posted, "type": "ACTUAL"}
    touch(newcomer)
    records.append(newcomer)
    done.append(f"{NEW_STUDY_ID} is registered")
    return done


def demo_settings(base_url: str, out: Path, config: Path | None) -> Settings:
    """The user's (or the shipped) config, pointed at the local registry and a fresh demo database."""
    base = load_settings(config) if config else Settings()
    api = ApiSettings(**{**base.api.model_dump(), "base_url": base_url, "min_interval_seconds": 0.0})
    db = base.database.model_copy(update={"url": f"sqlite:///{(out / 'demo.db').resolve()}"})
    return base.model_copy(update={"api": api, "database": db})


def run_demo(out: Path, config: Path | None = None, echo: Callable[[str], None] = print) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("demo.db*"):
        stale.unlink()
    records = load_records(DATA)
    registry = Registry()
    registry.replace(copy.deepcopy(records), "2026-11-16T09:00:05")
    report: dict[str, Any] = {"polls": []}
    with LocalApiServer(registry) as server:
        settings = demo_settings(server.base_url, out, config)
        database = open_database(settings.database.url, auto_upgrade=True)
        clock = iter([datetime(2026, 11, 16, 10, 0), datetime(2026, 11, 19, 10, 0)])
        try:
            with CtGovClient(settings.api) as client:
                first_now = next(clock)
                syncer = Syncer(database, client, settings, now=lambda: first_now)
                first = syncer.poll()
                with database.session() as s:
                    in_scope = len(list_studies(s, in_scope=True))
                echo(
                    f"Poll 1 ({first.mode}): {first.fetched} records, {first.new_studies} studies tracked, "
                    f"{in_scope} of them in scope."
                )
                report["polls"].append(_summary(first))

                with database.session() as s:
                    tracked = {row.nct_id for row in list_studies(s, in_scope=True)}
                later = copy.deepcopy(records)
                done = later_registry(later, "2026-11-18", lambda n: n in tracked)
                registry.replace(later, "2026-11-19T09:00:04")
                echo("The registry moves on three days: " + "; ".join(done) + ".")

                second_now = next(clock)
                syncer.now = lambda: second_now
                second = syncer.poll()
                report["polls"].append(_summary(second))
                echo(
                    f"Poll 2 ({second.mode}): {second.events} changes recorded in {second.requests} requests."
                )
            with database.session() as s:
                rows = [e for e in list_events(s) if e.run_id == second.run_id]
                report["changes"] = [
                    {
                        "nct_id": e.nct_id,
                        "kind": e.kind,
                        "change": change_text(e.kind, e.field, e.before, e.after),
                        "registry_date": e.registry_date,
                    }
                    for e in rows
                ]
        finally:
            database.dispose()
    for c in report["changes"]:
        echo(f"  {c['nct_id']}  {KIND_LABELS.get(c['kind'], c['kind'])}: {c['change']}")
    (out / "changes.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    echo(f"Wrote {out / 'changes.json'} and the demo database {out / 'demo.db'}.")
    return report


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

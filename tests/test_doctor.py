"""`ctmonitor doctor` against the local registry over HTTP: what a new user learns
before the first poll, from a registry that floods, misses, leaves fields out or refuses."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.registry.localdata import load_histories
from monitor.registry.localserver import Fault, LocalApiServer, Registry
from tests.conftest import DATA, domain_records

QUERY = '"CAR-T" OR "chimeric antigen receptor" OR CART OR "ZQX-9917"'


def hiv_trial(n: int) -> dict[str, Any]:
    """A real record reshaped into an HIV trial that gives cART (antiretroviral therapy)."""
    raw = copy.deepcopy(domain_records()[0])
    ps = raw["protocolSection"]
    ps["identificationModule"].update(
        nctId=f"NCT0800{n:04d}", briefTitle=f"Early cART in Adults With HIV-1, Cohort {n}", officialTitle=None
    )
    ps["conditionsModule"] = {"conditions": ["HIV-1 Infection"]}
    ps["armsInterventionsModule"] = {"interventions": [{"type": "DRUG", "name": "cART"}]}
    ps["descriptionModule"] = {"briefSummary": "Participants start cART within a week of diagnosis."}
    # what an HIV trial measures (not the CAR study's outcomes, which name its product)
    ps["outcomesModule"] = {"primaryOutcomes": [{"measure": "HIV-1 RNA below 50 copies/mL at week 48"}]}
    return raw


@pytest.fixture
def world() -> Iterator[LocalApiServer]:
    histories, current = load_histories(DATA / "history")
    registry = Registry()
    # Studies with a recorded history first: the probe reads the history of the first one it finds.
    registry.replace(
        [*copy.deepcopy(current), *copy.deepcopy(domain_records()), *(hiv_trial(n) for n in range(60))],
        "2026-11-02T09:00:05",
    )
    registry.histories = copy.deepcopy(histories)
    with LocalApiServer(registry) as api:
        yield api


def config(tmp_path: Path, base_url: str, extra: str = "") -> str:
    if "[ctis]" not in extra:  # EU CTIS is probed when it is on: off here unless a test serves it
        extra += "\n[ctis]\nenabled = false\n"
    p = tmp_path / "config.toml"
    p.write_text(f"""
[api]
base_url = "{base_url}"
min_interval_seconds = 0
backoff_base_seconds = 0
max_attempts = 2
timeout_seconds = 2
{extra}

[[queries]]
name = "cars"
intr = '{QUERY}'

[[queries]]
name = "followed"
ids = ["NCT05938725"]
""")
    return str(p)


def doctor(capsys: pytest.CaptureFixture[str], cfg: str, *args: str) -> tuple[int, str]:
    code = main(["--config", cfg, "doctor", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out and not err.startswith("Traceback")  # the server's own log may follow
    # JSON is read from stdout alone (the local server may log a dropped connection on stderr)
    return code, out if "--json" in args else out + err


def test_a_flooding_term_and_a_term_that_finds_nothing_are_named(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = doctor(capsys, config(tmp_path, world.base_url), "--flood-at", "40")
    assert code == 0, out  # everything needed works: these are warnings
    assert "OK   registry: API 2.0.5, data of 2026-11-02T09:00:05" in out
    # 60 HIV trials and one real CAR T study that names itself CART only
    assert "WARN flood: CART (cars, query.intr) alone brings 61 studies into the query" in out
    assert "19 of 20 read look like no cell or engager therapy" in out
    assert 'terms find nothing in the whole registry (misspelt, or no study yet): "ZQX-9917"' in out
    assert "OK   record history:" in out and "the first one read" in out
    code, out = doctor(capsys, config(tmp_path, world.base_url), "--flood-at", "40", "--json")
    report = json.loads(out)
    assert report["ok"] is True and report["floods"] == ["CART"] and report["finds_nothing"] == ['"ZQX-9917"']
    cart = next(t for t in report["terms"] if t["term"] == "CART")
    assert cart["count"] >= 60 and cart["unique"] == 61 and cart["verdict"] == "flood"
    # the query's main term brings in studies too, and they are what the query is for
    main_term = next(t for t in report["terms"] if t["term"] == '"CAR-T"')
    assert main_term["unique"] >= 40 and main_term["on_topic"] == main_term["sampled"] > 0
    assert main_term["verdict"] == "ok"
    assert {q["name"]: q["total"] for q in report["queries"]}["followed"] == 1
    assert report["requests"] <= 150


def test_a_real_synonym_is_no_flood(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _code, out = doctor(capsys, config(tmp_path, world.base_url), "--flood-at", "5", "--json")
    terms = {t["term"]: t for t in json.loads(out)["terms"]}
    # "chimeric antigen receptor" finds many studies, nearly all of them also found by "CAR-T"
    synonym = terms['"chimeric antigen receptor"']
    assert synonym["count"] >= 5 and synonym["verdict"] == "ok"


def test_a_field_left_out_of_api_fields_is_fetched_all_the_same(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # An older or trimmed config.toml: the parts ctmonitor reads are asked for anyway.
    fields = (
        'fields = ["protocolSection.identificationModule", "protocolSection.statusModule", '
        '"protocolSection.conditionsModule", "protocolSection.armsInterventionsModule"]'
    )
    code, out = doctor(capsys, config(tmp_path, world.base_url, fields))
    assert code == 0, out
    assert "OK   fields: " in out and "FAIL fields" not in out


def test_a_part_the_registry_stops_sending_is_named(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    records = copy.deepcopy(domain_records())
    for raw in records:
        raw["protocolSection"].pop("contactsLocationsModule", None)
    registry = Registry()
    registry.replace(records, "2026-11-02T09:00:05")
    with LocalApiServer(registry) as api:
        code, out = doctor(capsys, config(tmp_path, api.base_url))
    assert code == 1
    assert "FAIL fields: " in out
    assert "protocolSection.contactsLocationsModule.locations (sites) is missing from all 20 records" in out
    assert "the registry did not send it" in out
    assert "Not ready" in out


def test_a_403_says_what_to_try(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    world.add_fault(Fault(path="/api/v2/version", status=403, body="Forbidden", times=5))
    code, out = doctor(capsys, config(tmp_path, world.base_url))
    assert code == 1
    assert "FAIL registry: HTTP 403 (forbidden)" in out and "User-Agent" in out
    assert len(world.requests_to("/api/v2/studies")) == 0  # nothing else asked of a registry that refuses


def test_a_registry_that_cannot_be_reached_is_said_to_be_so(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    code, out = doctor(capsys, config(tmp_path, f"http://127.0.0.1:{port}"))
    assert code == 1
    assert "FAIL registry:" in out and "connection failed" in out


def test_a_timeout_is_said_to_be_one(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    world.add_fault(Fault(path="/api/v2/version", delay=3.0, times=2))
    code, out = doctor(capsys, config(tmp_path, world.base_url))
    assert code == 1 and "FAIL registry:" in out and "timeout" in out


def test_the_budget_bounds_the_probe_and_names_what_it_left_out(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    codes = " OR ".join(f'"ZQ-{n}"' for n in range(30))
    cfg = config(tmp_path, world.base_url)
    Path(cfg).write_text(Path(cfg).read_text().replace(QUERY, f"{QUERY} OR {codes}"))
    _code, out = doctor(capsys, cfg, "--max-requests", "10", "--json")
    report = json.loads(out)
    assert report["requests"] <= 10
    assert report["not_counted"]  # named, not silently skipped
    # the likeliest false friends (short bare words) were counted first
    assert {t["term"]: t["count"] for t in report["terms"]}["CART"] is not None


def test_eu_ctis_is_probed_as_clinicaltrials_gov_is(world, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from monitor.registry.ctisstand import CtisStandIn
    from monitor.registry.localserver import Fault

    records = [
        json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((DATA / "registries").glob("ctis-retrieve-*.json"))
    ]
    with CtisStandIn(records) as eu:
        ctis = (
            f'[ctis]\nbase_url = "{eu.base_url}"\n'
            "min_interval_seconds = 0\nmax_attempts = 2\nbackoff_base_seconds = 0\n"
        )
        code, out = doctor(capsys, config(tmp_path, world.base_url, ctis))
        assert code == 0, out
        assert f"OK   EU CTIS searches: {eu.base_url}: “chimeric antigen receptor”" in out
        assert "OK   EU CTIS record: 2099-" in out and "read and decoded" in out
        eu.add_fault(Fault(path="/ctis-public-api/search", status=503, times=10))
        code, out = doctor(capsys, config(tmp_path, world.base_url, ctis))
        assert code == 1 and "FAIL EU CTIS:" in out and "did not answer a search" in out

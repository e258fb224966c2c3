"""Study timelines and diffs: pure rules on known sequences of versions, then `ctmonitor history`
and `ctmonitor diff` on a study the registry moved through four versions while we polled,
with the versions before our first poll backfilled."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from click.testing import CliRunner

from monitor.cli import cli, main
from monitor.core import timeline
from monitor.core.domain import UserError
from monitor.core.normalize import to_study
from monitor.core.timeline import Change, Version
from monitor.registry.client import CtGovClient
from monitor.registry.localdata import load_histories
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database
from monitor.tracking.backfill import Backfiller
from tests.conftest import DATA, domain_records, make_settings
from tests.harness import FakeClock, poll

KYSA = "NCT05938725"
HISTORIES, CURRENT = load_histories(DATA / "history")


def body(n: int) -> dict[str, Any]:
    return copy.deepcopy(HISTORIES[KYSA]["versions"][n]["study"])


def version(
    seq: int, origin: str, n: int | None, when: str, status: str, submitted: str | None = None
) -> Version:
    """A stored version posted on `when`; `submitted` is its last-update submission date
    (the date the registry's version list shows for it), a few days earlier."""
    raw = body(0)
    raw["protocolSection"]["statusModule"]["overallStatus"] = status
    raw["protocolSection"]["statusModule"]["lastUpdateSubmitDate"] = submitted or when
    return Version(seq, origin, n, when, datetime(2026, 1, 1), to_study(raw))


# -- pure rules ----------------------------------------------------------------------------


def test_status_periods_begin_on_registry_dates_and_last_until_the_next() -> None:
    versions = [
        version(-999_999, "backfill", 0, "2023-07-11", "NOT_YET_RECRUITING"),
        version(-999_998, "backfill", 1, "2023-10-04", "RECRUITING"),
        version(1, "poll", None, "2024-06-20", "RECRUITING"),
        version(2, "poll", None, "2025-10-29", "ACTIVE_NOT_RECRUITING"),
    ]
    periods = timeline.status_periods(versions, None, date(2025, 11, 8))
    assert [(p.status, p.began, p.ended, p.days, p.source) for p in periods] == [
        ("NOT_YET_RECRUITING", "2023-07-11", "2023-10-04", 85, "backfill"),
        ("RECRUITING", "2023-10-04", "2025-10-29", 756, "backfill"),
        ("ACTIVE_NOT_RECRUITING", "2025-10-29", None, 10, "poll"),
    ]


def test_a_first_status_seen_after_the_registration_has_an_open_start() -> None:
    """Without the registry's history, the status our first poll saw held by that date and
    may be years older: the timeline must not present that date as when it began."""
    polled = [
        version(1, "poll", None, "2024-06-20", "RECRUITING"),
        version(2, "poll", None, "2025-10-29", "ACTIVE_NOT_RECRUITING"),
    ]
    periods = timeline.status_periods(polled, None, date(2025, 11, 8))
    assert [(p.status, p.began_known) for p in periods] == [
        ("RECRUITING", False),  # by 2024-06-20, for at least 496 days
        ("ACTIVE_NOT_RECRUITING", True),  # posted 2025-10-29: a known change
    ]
    assert periods[0].to_json()["began_known"] is False
    # A first poll that the backfill linked to registry version 0 saw the registration itself.
    registered = [version(1, "poll", 0, "2024-06-20", "RECRUITING")]
    assert timeline.status_periods(registered, None, date(2025, 11, 8))[0].began_known is True
    # Backfilled from version 0: every start is a registry date.
    backfilled = [version(-1_000_000, "backfill", 0, "2023-07-11", "RECRUITING"), *polled]
    assert all(p.began_known for p in timeline.status_periods(backfilled, None, date(2025, 11, 8)))


def test_a_status_published_between_two_polls_comes_from_the_registry_version_list() -> None:
    """Suspended for three weeks between two weekly polls: our snapshots never saw it, the
    registry's version list (kept by backfill) did. Our second poll stored version 4,
    which the list shows by its submission date."""
    versions = [
        version(-999_999, "backfill", 0, "2024-01-10", "RECRUITING"),
        version(1, "poll", 1, "2024-02-01", "RECRUITING"),
        version(2, "poll", None, "2024-03-20", "RECRUITING", submitted="2024-03-18"),
    ]
    listed = [
        {"version": 0, "date": "2024-01-09", "status": "RECRUITING"},
        {"version": 1, "date": "2024-01-30", "status": "RECRUITING"},
        {"version": 2, "date": "2024-02-20", "status": "SUSPENDED"},
        {"version": 3, "date": "2024-03-12", "status": "RECRUITING"},
        {"version": 4, "date": "2024-03-18", "status": "RECRUITING"},
    ]
    periods = timeline.status_periods(versions, listed, date(2024, 4, 1))
    assert [(p.status, p.began, p.source) for p in periods] == [
        ("RECRUITING", "2024-01-10", "backfill"),
        ("SUSPENDED", "2024-02-20", "registry-list"),
        ("RECRUITING", "2024-03-12", "registry-list"),  # version 3, which we never stored
    ]
    assert periods[1].days == 21


def test_a_listed_point_never_predates_the_stored_version_that_first_showed_its_status() -> None:
    """The registry lists each version by its submission date. When the version list holds
    the very version our poll stored (same status, dated days before its publication),
    the status dates from the day the registry published it, and the status before it
    lasts until then."""
    versions = [
        version(-999_999, "backfill", 0, "2024-01-10", "NOT_YET_RECRUITING"),
        version(1, "poll", None, "2024-02-01", "RECRUITING", submitted="2024-01-29"),
        version(2, "poll", None, "2024-05-06", "ENROLLING_BY_INVITATION", submitted="2024-05-03"),
    ]
    listed = [
        {"version": 0, "date": "2024-01-09", "status": "NOT_YET_RECRUITING"},
        {"version": 1, "date": "2024-01-29", "status": "RECRUITING"},
        {"version": 2, "date": "2024-03-04", "status": "SUSPENDED"},
        {"version": 3, "date": "2024-03-25", "status": "RECRUITING"},
        {"version": 4, "date": "2024-05-03", "status": "ENROLLING_BY_INVITATION"},
    ]
    want = [
        ("NOT_YET_RECRUITING", "2024-01-10", "2024-02-01"),
        ("RECRUITING", "2024-02-01", "2024-03-04"),
        ("SUSPENDED", "2024-03-04", "2024-03-25"),
        ("RECRUITING", "2024-03-25", "2024-05-06"),
        ("ENROLLING_BY_INVITATION", "2024-05-06", None),  # published 05-06, not listed 05-03
    ]
    periods = timeline.status_periods(versions, listed, date(2024, 6, 1))
    assert [(p.status, p.began, p.ended) for p in periods] == want
    # The same when the stored version cannot be matched to its listing (no submission
    # date kept): the trailing listed point with its status is taken to be it.
    unmatched = [
        *versions[:2],
        version(2, "poll", None, "2024-05-06", "ENROLLING_BY_INVITATION", "2024-05-05"),
    ]
    periods = timeline.status_periods(unmatched, listed, date(2024, 6, 1))
    assert [(p.status, p.began, p.ended) for p in periods] == want
    assert periods[3].days == 42


def test_changes_are_ordered_by_registry_date_history_first() -> None:
    def ch(i: int, when: str, origin: str) -> Change:
        return Change(
            i,
            when,
            datetime(2026, 1, 1),
            "status_change",
            "overall_status",
            "",
            None,
            None,
            origin,
            False,
            None,
        )

    ordered = timeline.order_changes(
        [ch(5, "2024-01-01", "poll"), ch(9, "2023-01-01", "backfill"), ch(7, "2024-01-01", "backfill")]
    )
    assert [c.event_id for c in ordered] == [9, 7, 5]


def test_resolve_versions_by_label_and_date() -> None:
    versions = [
        version(-999_999, "backfill", 0, "2023-07-11", "NOT_YET_RECRUITING"),
        version(-999_998, "backfill", 1, "2023-10-04", "RECRUITING"),
        version(1, "poll", 1, "2023-10-04", "RECRUITING"),
        version(2, "poll", None, "2025-10-29", "ACTIVE_NOT_RECRUITING"),
    ]
    assert timeline.resolve(versions, "latest").label == "#2"
    assert timeline.resolve(versions, "first").label == "r0"
    assert timeline.resolve(versions, "r1").label == "r1"  # the backfilled one comes first
    assert timeline.resolve(versions, "#1").label == "#1" and timeline.resolve(versions, "1").label == "#1"
    assert timeline.resolve(versions, "2024-01-01").label == "#1"
    assert timeline.resolve(versions, "2023-10-04").label == "#1"
    assert timeline.resolve(versions, "2023-10-04", before_date=True).label == "r0"
    assert timeline.resolve(versions, "2020-01-01").label == "r0"
    with pytest.raises(UserError, match="versions: r0, r1, #1, #2"):
        timeline.resolve(versions, "r7")
    with pytest.raises(UserError, match="not a version"):
        timeline.resolve(versions, "yesterday")
    with pytest.raises(UserError, match="not a date"):
        timeline.resolve(versions, "2024-02-31")


def test_compare_lists_sites_added_and_removed() -> None:
    old = Version(1, "poll", None, "2024-01-01", datetime(2024, 1, 1), to_study(body(1)))
    raw = body(1)
    raw["protocolSection"]["contactsLocationsModule"]["locations"] = [
        {
            "facility": "Universitätsklinikum Erlangen",
            "city": "Erlangen",
            "country": "Germany",
            "status": "RECRUITING",
        }
    ]
    new = Version(2, "poll", None, "2024-02-01", datetime(2024, 2, 1), to_study(raw))
    comp = timeline.compare(KYSA, old, new)
    assert sorted(c.kind.value for c in comp.changes) == ["site_added", "site_removed"]
    as_json = comp.to_json()
    assert as_json["from"]["label"] == "#1" and as_json["to"]["label"] == "#2"
    assert any("Erlangen" in c["text"] for c in as_json["changes"])


# -- the commands, on a study we polled through its versions ---------------------------------


@pytest.fixture
def polled(database: Database, tmp_path: Any) -> Iterator[str]:
    """KYSA-1 polled at registry versions 1, 2 and 3; versions 0-1 backfilled. Yields a config path."""
    registry = Registry()
    registry.replace(copy.deepcopy(domain_records()), "2026-11-02T09:00:05")
    registry.histories = copy.deepcopy(HISTORIES)
    with LocalApiServer(registry) as api:
        settings = make_settings(api.base_url, page_size=50)
        clock = FakeClock()
        for n, stamp in ((1, "2026-11-02T09:00:05"), (2, "2026-11-03T09:00:05"), (3, "2026-11-04T09:00:05")):
            registry.put(
                body(n)
                if n < 3
                else copy.deepcopy(
                    next(r for r in CURRENT if r["protocolSection"]["identificationModule"]["nctId"] == KYSA)
                )
            )
            registry.data_timestamp = stamp
            clock.advance(days=1)
            assert poll(database, settings, clock, full=True).outcome == "ok"
        with CtGovClient(settings.api) as client:
            assert Backfiller(database, client, now=clock).run([KYSA]).ok
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[database]\nurl = "{database.url}"\n[api]\nbase_url = "{api.base_url}"\n')
        yield str(cfg)


def test_history_command(polled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", polled, "history", KYSA]) == 0
    out = capsys.readouterr().out
    status = out[out.index("Status\n") : out.index("Changes")]
    assert "since 2023-07-11  Not yet recruiting" in status and "(registry history)" in status
    assert "since 2023-10-04  Recruiting" in status
    assert "since 2025-10-29  Active, not recruiting" in status and "days so far (our poll)" in status
    changes = out[out.index("Changes") :].splitlines()[1:]
    marks = [line.split()[1] for line in changes if line.startswith("  20")]
    assert marks == ["R", "R", "R", "P", "P", "P", "P", "P"]  # history first, then our polls
    assert "2023-10-04  R  Status: Not yet recruiting → Recruiting" in out
    assert "2024-06-20  P  First polled" not in out and "2023-10-04  P  First polled" in out
    assert "2024-06-20  P  Enrollment: 12 (estimated) → 20 (estimated)" in out
    assert (
        "Versions (for `ctmonitor diff --from/--to`): r0 2023-07-11 · r1 2023-10-04 · #1 2023-10-04 · #2"
        in out
    )


def test_history_of_a_study_not_backfilled_does_not_date_its_first_status(
    polled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", polled, "history", "NCT04561557"]) == 0
    out = capsys.readouterr().out
    first = out[out.index("Status\n") :].splitlines()[1]
    by = first.split()[1]  # the registry date of the first version we polled
    assert f"Versions before {by} (the one our first poll saw): not backfilled yet" in out
    # held by the date of the first version we polled, for at least that long; maybe longer
    assert first.startswith("  by    20") and "≥" in first and first.endswith("(our poll)")


def test_history_json(polled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", polled, "history", KYSA, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["backfill"]["status"] == "done"
    assert [s["status"] for s in data["statuses"]] == [
        "NOT_YET_RECRUITING",
        "RECRUITING",
        "ACTIVE_NOT_RECRUITING",
    ]
    assert [c["origin"] for c in data["changes"]][:3] == ["backfill"] * 3
    assert [v["label"] for v in data["versions"]] == ["r0", "r1", "#1", "#2", "#3"]


def test_diff_command_between_versions(polled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", polled, "diff", KYSA]) == 0  # latest against the one before
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(
        f"{KYSA}: #2 (2024-06-20, our poll) → #3 (2025-10-29, our poll): 3 changes"
    )
    assert "Status: Recruiting → Active, not recruiting" in out
    assert "Enrollment: 20 (estimated) → 6 (actual)" in out

    assert main(["--config", polled, "diff", KYSA, "--from", "r0", "--to", "#2"]) == 0
    out = capsys.readouterr().out
    assert (
        "Status: Not yet recruiting → Recruiting" in out and "Site added: + United States (Recruiting)" in out
    )
    assert "Enrollment: 12 (estimated) → 20 (estimated)" in out

    assert main(["--config", polled, "diff", KYSA, "--since", "2024-01-01", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["from"]["label"], data["to"]["label"]) == ("#1", "#3")
    assert {c["kind"] for c in data["changes"]} == {
        "status_change",
        "enrollment_change",
        "site_status_change",
    }

    # --kind on diff and history: just those changes
    assert (
        main(["--config", polled, "diff", KYSA, "--since", "2024-01-01", "--kind", "enrollment_change"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(": 1 change") and lines[1:] == ["  Enrollment: 12 (estimated) → 6 (actual)"]
    assert main(["--config", polled, "history", KYSA, "--kind", "status_change", "--json"]) == 0
    kinds = {c["kind"] for c in json.loads(capsys.readouterr().out)["changes"]}
    assert kinds == {"status_change"}


def test_diff_is_coloured_on_a_terminal_only(polled: str) -> None:
    plain = CliRunner().invoke(cli, ["--config", polled, "diff", KYSA])
    assert "\x1b[" not in plain.output
    coloured = CliRunner().invoke(cli, ["--config", polled, "diff", KYSA], color=True)
    assert "\x1b[31mRecruiting\x1b[0m → \x1b[32mActive, not recruiting\x1b[0m" in coloured.output


def test_bad_input_gets_one_line_and_exit_2(polled: str, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in [
        (["history", "NCT123"], "NCT"),
        (["history", "NCT09999999"], "not tracked"),
        (["diff", KYSA, "--from", "r9"], "no version 'r9'"),
        (["diff", KYSA, "--since", "2024-13-01"], "not a date"),
        (["diff", KYSA, "--since", "2024-01-01", "--from", "r0"], "not both"),
    ]:
        assert main(["--config", polled, *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)

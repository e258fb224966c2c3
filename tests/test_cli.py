"""The ctmonitor command as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from monitor.cli import cli, main
from monitor.registry.localserver import LocalApiServer, Registry
from monitor.store.db import Database
from monitor.store.locking import exclusive
from tests.conftest import registry_records
from tests.harness import shift_the_whole_registry

N = len(registry_records())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_poll_status_and_events(config: Path, capsys, registry: Registry) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "--config", str(config), "poll")
    assert code == 0, err
    assert f"Fetched {N} of {N}" in out and f"{N} new studies" in out

    code, out, _ = run(capsys, "--config", str(config), "status")
    assert code == 0 and f"Studies: {N} tracked" in out and "2026-11-02T09:00:05" in out

    # the first poll's arrivals are the starting picture: not changes, unless asked for
    code, out, _ = run(capsys, "--config", str(config), "events", "--kind", "new_study", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(
        capsys,
        "--config",
        str(config),
        "events",
        "--kind",
        "new_study",
        "--baseline",
        "--include-out-of-scope",
        "--json",
    )
    data = json.loads(out)
    assert (
        code == 0 and len(data) == N and data[0]["kind"] == "new_study" and data[0]["arrival"] == "baseline"
    )

    code, out, _ = run(capsys, "--config", str(config), "events", "--study", "nct06171568")
    assert code == 0 and "NCT06171568  First reached by the initial sync: Not yet recruiting" in out

    code, out, _ = run(capsys, "--config", str(config), "poll", "--json")
    assert code == 0 and json.loads(out)["outcome"] == "unchanged"


@pytest.mark.parametrize(
    "args,message",
    [
        (["events", "--study", "NCT123"], "not a study id: 'NCT123'"),
        (["history", "NCT00000000"], "not a study id: 'NCT00000000'"),  # never issued
        (["events", "--since", "last week"], "is not a date"),
        (["events", "--kind", "bogus"], "Invalid value for '--kind'"),
        (["events", "--bogus"], "No such option '--bogus' (see `ctmonitor events --help`)"),
        (["history"], "Missing argument 'NCT...' (see `ctmonitor history --help`)"),
        (["report", "--format", "xls"], "'xls' is not one of 'html', 'md', 'csv', 'json'"),
        (["no-such-command"], "No such command 'no-such-command' (see `ctmonitor --help`)"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(config: Path, capsys, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "--config", str(config), *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("ctmonitor: error: ")
    assert "Traceback" not in err + out


@pytest.mark.parametrize(
    "url,code,message",
    [
        ("garbage", 2, "ctmonitor: error: database.url: not a database URL: 'garbage'"),
        (
            "postgresql://me:s3cret@db:port/x",
            2,
            "ctmonitor: error: database.url: not a database URL: 'postgresql://***@db",
        ),
        ("sqlite:///{tmp}/not-a-db.sqlite", 1, "ctmonitor: cannot open the database: file is not a database"),
        ("sqlite:///{tmp}/a-file/x.db", 1, "ctmonitor: cannot create the database's folder"),
    ],
    ids=["not-a-url", "bad-url-with-password", "not-a-database", "folder-is-a-file"],
)
def test_a_database_that_cannot_be_used_is_one_line_and_left_alone(  # type: ignore[no-untyped-def]
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, url: str, code: int, message: str
) -> None:
    precious = b"my notes, not a database\n" * 100
    (tmp_path / "not-a-db.sqlite").write_bytes(precious)
    (tmp_path / "a-file").write_bytes(precious)
    monkeypatch.setenv("CTMONITOR_DATABASE_URL", url.format(tmp=tmp_path))
    for command in ("status", "poll"):
        got, out, err = run(capsys, command)
        if command == "status" and url.endswith("/a-file/x.db"):
            # a command that only reads does not try to create it: it says there is none
            assert got == 2 and err.startswith("ctmonitor: error: no database at "), err
            continue
        assert got == code and err.startswith(message) and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in out + err
    assert (tmp_path / "not-a-db.sqlite").read_bytes() == precious
    assert (tmp_path / "a-file").read_bytes() == precious


def test_a_bare_command_group_shows_its_help(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, "db")
    assert code in (0, 2) and "Usage: ctmonitor db" in out + err and "upgrade" in out + err


def test_bad_config_is_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text("[api]\ntimeout = 3\n")
    code, _, err = run(capsys, "--config", str(bad), "status")
    assert code == 2 and err.strip() == f"ctmonitor: error: {bad}: api.timeout: unknown key"


def test_registry_down_is_exit_1_with_the_reason(
    tmp_path: Path,
    capsys,
    db_url: str,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CTMONITOR_DATABASE_URL", db_url)
    server = LocalApiServer(Registry())
    url = server.base_url
    server.stop()  # nothing listens there any more
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[api]\nbase_url = "{url}"\nmax_attempts = 2\nbackoff_base_seconds = 0\nmin_interval_seconds = 0\n'
    )
    code, out, err = run(capsys, "--config", str(cfg), "poll")
    assert code == 1
    assert "FAILED" in out and "connection failed" in out
    assert "Traceback" not in out + err


def test_second_poll_while_one_runs_exits_3(config: Path, capsys, db_url: str) -> None:  # type: ignore[no-untyped-def]
    database = Database(db_url)
    try:
        from monitor.store.db import upgrade

        upgrade(database.engine)
        with exclusive(database.engine):
            code, _, err = run(capsys, "--config", str(config), "poll")
    finally:
        database.dispose()
    assert code == 3 and "holds the writer lock" in err


def test_release_held_events(config: Path, capsys, db_url: str) -> None:  # type: ignore[no-untyped-def]
    if db_url.startswith("sqlite"):
        code, _, err = run(capsys, "--config", str(config), "release")
        assert code == 2 and "no database at" in err  # nothing is created to release nothing from
    assert run(capsys, "--config", str(config), "poll")[0] == 0
    code, out, _ = run(capsys, "--config", str(config), "release")
    assert code == 0 and "no held events" in out


def test_a_registry_wide_shift_is_held_then_reviewed_and_released(  # type: ignore[no-untyped-def]
    config: Path, capsys, registry: Registry
) -> None:
    config.write_text(config.read_text() + "\n[sync]\nhold_min_studies = 5\n")
    assert run(capsys, "--config", str(config), "poll")[0] == 0
    shift_the_whole_registry(registry)
    code, out, err = run(capsys, "--config", str(config), "poll")
    assert code == 0, err
    assert "so these events are HELD for review: see `ctmonitor events --held`" in out

    code, out, _ = run(capsys, "--config", str(config), "status")
    assert code == 0 and "HELD" in out
    code, out, _ = run(capsys, "--config", str(config), "events", "--held", "--json")
    held = json.loads(out)
    assert code == 0 and len({e["nct_id"] for e in held}) == N and all(e["held"] for e in held)

    code, out, _ = run(capsys, "--config", str(config), "release")
    assert code == 0 and f"released {len(held)} events" in out
    code, out, _ = run(capsys, "--config", str(config), "events", "--held", "--json")
    assert code == 0 and json.loads(out) == []


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix}{name} ")
        else:
            out.append((prefix + name, cmd))
    return out


@pytest.mark.parametrize("name,cmd", _commands(cli), ids=[n for n, _ in _commands(cli)])
def test_every_command_is_documented_with_an_example(name: str, cmd: click.Command) -> None:
    assert cmd.help and "Example" in cmd.help, f"`ctmonitor {name}` needs help text with an example"
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"ctmonitor {name}" in readme, f"README.md does not mention `ctmonitor {name}`"


def test_console_script_is_installed() -> None:
    exe = shutil.which("ctmonitor") or str(Path(__import__("sys").executable).parent / "ctmonitor")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "poll" in proc.stdout


# -- classification commands ------------------------------------------------------------------


def test_classify_prints_labels_with_evidence(capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import domain_records

    page = tmp_path / "page.json"
    page.write_text(
        json.dumps(
            {
                "studies": [
                    r
                    for r in domain_records()
                    if r["protocolSection"]["identificationModule"]["nctId"] in ("NCT04422912", "NCT02348216")
                ]
            }
        )
    )
    code, out, _ = run(capsys, "classify", str(page))
    assert code == 0
    assert "NCT04422912" in out and "modality:    CAAR-T (high)" in out and "targets:     DSG3; CD19" in out
    assert "evidence  modality=CAAR-T  [interventions] DSG3-CAART" in out
    assert "out of scope: oncology indication" in out  # ZUMA-1
    code, out, _ = run(capsys, "classify", "--json", str(page))
    data = json.loads(out)
    assert [d["in_scope"] for d in data] == [True, False]


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no such file"),
        ("{not json", "not a JSON study record"),
        ('{"hello": 1}', "no study records found"),
    ],
)
def test_classify_bad_files(capsys, tmp_path: Path, content: str | None, message: str) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "x.json"
    if content is not None:
        f.write_text(content)
    code, _, err = run(capsys, "classify", str(f))
    assert code == 2 and message in err and "Traceback" not in err


def test_studies_filters_and_needs_review(
    tmp_path: Path,
    capsys,
    db_url: str,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import domain_records

    registry = Registry()
    registry.replace(domain_records())
    monkeypatch.setenv("CTMONITOR_DATABASE_URL", db_url)
    with LocalApiServer(registry) as api:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[api]\nbase_url = "{api.base_url}"\nmin_interval_seconds = 0\n'
            '[[queries]]\nname = "all"\nterm = "ALL"\n'
        )
        assert run(capsys, "--config", str(cfg), "poll")[0] == 0
    code, out, _ = run(capsys, "--config", str(cfg), "studies", "--modality", "CAAR-T")
    assert code == 0 and "NCT04422912" in out and "1 study\n" in out
    code, out, _ = run(
        capsys,
        "--config",
        str(cfg),
        "studies",
        "--target",
        "BCMA",
        "--indication",
        "myasthenia gravis",
        "--json",
    )
    data = json.loads(out)
    assert data and all("myasthenia gravis" in d["indications"] for d in data)
    assert all(any("BCMA" in t for t in d["targets"]) for d in data)
    code, out, _ = run(capsys, "--config", str(cfg), "studies", "--all", "--json")
    everything = json.loads(out)
    assert any(not d["in_scope"] for d in everything) and len(everything) > len(data)
    code, out, _ = run(capsys, "--config", str(cfg), "studies", "--needs-review", "--json")
    assert all(d["needs_review"] and d["review"] for d in json.loads(out))

    # what people type: aliases read as the labels they stand for, never "No studies match."
    def ids(*args: str) -> set[str]:
        code, out, err = run(capsys, "--config", str(cfg), "studies", *args, "--json")
        assert code == 0, err
        return {d["nct_id"] for d in json.loads(out)}

    lupus = ids("--indication", "lupus")
    assert lupus == ids("--indication", "SLE", "--indication", "lupus nephritis") and "NCT05938725" in lupus
    assert ids("--modality", "CART") == ids("--modality", "CAR-T")
    assert ids("--indication", "myasthenia") == ids("--indication", "myasthenia gravis")
    active = ids("--status", "active")
    assert active and active == ids(
        *(
            x
            for s in ("NOT_YET_RECRUITING", "RECRUITING", "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING")
            for x in ("--status", s)
        )
    )
    assert ids("--search", "KYV-101") >= {"NCT05938725"}
    assert ids("--search", "nct05938725") == {"NCT05938725"}
    kyverna = ids("--sponsor", "kyverna")
    assert "NCT05938725" in kyverna and kyverna <= lupus | ids("--all")
    germany = ids("--country", "Germany")
    assert germany and germany < ids()
    assert ids("--phase", "PHASE1") and ids("--phase", "PHASE3") < ids()
    assert ids("--phase", "2") == ids("--phase", "Phase 2") == ids("--phase", "PHASE2")
    for args, message in (
        (["--indication", "lupos"], "indications: unknown value 'lupos'; valid: "),
        (["--status", "activ"], "status: unknown value 'activ'; valid: "),
        (["--phase", "9"], "phase: unknown value '9'; valid: EARLY_PHASE1"),
    ):
        code, _, err = run(capsys, "--config", str(cfg), "studies", *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "subscriber" not in err
    code, out, _ = run(capsys, "--config", str(cfg), "reclassify")
    assert code == 0 and "already labelled" in out
    code, out, _ = run(capsys, "--config", str(cfg), "reclassify", "--all")
    assert code == 0 and "relabelled" in out and "0 moved" in out


# -- digests --------------------------------------------------------------------------


def _with_subscribers(config: Path, extra: str = "") -> Path:
    config.write_text(
        config.read_text()
        + extra
        + """
[[subscribers]]
name = "all"
email = "all@example.org"
include_out_of_scope = true

[[subscribers]]
name = "pinned"
email = "pinned@example.org"
nct_ids = ["NCT06171568"]
"""
    )
    return config


def test_digest_preview_writes_files_and_sends_nothing(config: Path, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = _with_subscribers(config)
    assert run(capsys, "--config", str(cfg), "poll")[0] == 0
    out_dir = tmp_path / "digests"
    code, out, err = run(capsys, "--config", str(cfg), "digest", "--preview", "--out", str(out_dir))
    assert code == 0, err
    assert f"all: landscape digest, {N} events" in out
    for name in ("all", "pinned"):
        for suffix in (".html", ".txt", ".eml"):
            assert (out_dir / f"{name}{suffix}").stat().st_size > 0
    assert "YOUR STARTING PICTURE" in (out_dir / "all.txt").read_text()
    # Preview marks nothing: the same digest is still due.
    code, out, _ = run(capsys, "--config", str(cfg), "digest", "--json", "--out", str(out_dir))
    assert code == 0 and [o["kind"] for o in json.loads(out)] == ["landscape", "landscape"]
    code, out, _ = run(capsys, "--config", str(cfg), "status")
    assert "all                  never sent" in out


def test_digest_send_through_smtp_and_failure_is_exit_1_and_shown_in_status(  # type: ignore[no-untyped-def]
    config: Path, capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.smtp import SmtpServer, free_port

    with SmtpServer(tmp_path, login=("ctm", "pw")) as server:
        cfg = _with_subscribers(
            config,
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\nusername = "ctm"\n'
            'from_address = "ctmonitor@example.org"\n',
        )
        assert run(capsys, "--config", str(cfg), "poll")[0] == 0
        monkeypatch.setenv("CTMONITOR_SMTP_PASSWORD", "pw")
        code, out, err = run(capsys, "--config", str(cfg), "digest", "--send", "--subscriber", "pinned")
        assert code == 0, err
        assert "pinned: sent landscape digest" in out and len(server.messages) == 1

        monkeypatch.setenv("CTMONITOR_SMTP_PASSWORD", "wrong")
        code, out, err = run(capsys, "--config", str(cfg), "digest", "--send", "--subscriber", "all")
        assert code == 1 and "all: FAILED" in out and "refused the login" in out
        code, out, _ = run(capsys, "--config", str(cfg), "status")
        assert "LAST ATTEMPT FAILED" in out and "refused the login" in out

    cfg.write_text(cfg.read_text().replace(f"port = {server.port}", f"port = {free_port()}"))
    monkeypatch.setenv("CTMONITOR_SMTP_PASSWORD", "pw")
    code, out, _ = run(capsys, "--config", str(cfg), "digest", "--send")
    assert code == 1 and "cannot reach the mail server" in out


@pytest.mark.parametrize(
    "extra,args,message",
    [
        ("", ["digest", "--send"], "smtp.host is not set"),
        ("", ["digest", "--subscriber", "nobody"], "no subscriber named 'nobody' (known: all, pinned)"),
        (
            '\n[[subscribers]]\nname = "x"\nemail = "not-an-address"\n',
            ["digest"],
            "subscribers.2.email: not a valid",
        ),
        (
            '\n[[subscribers]]\nname = "x"\nemail = "x@example.org"\nmodalities = ["CARX"]\n',
            ["digest"],
            "subscriber 'x': modalities: unknown value 'CARX'",
        ),
        (
            '\n[[subscribers]]\nname = "x"\nemail = "x@example.org"\nstatuses = ["open"]\n',
            ["digest"],
            "status: unknown value 'open'; valid: ACTIVE_NOT_RECRUITING",
        ),
        ('\n[smtp]\nhost = "mail.example.org"\n', ["digest"], "from_address is needed"),
    ],
)
def test_digest_bad_input_is_exit_2(config: Path, capsys, extra: str, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    cfg = _with_subscribers(config)
    assert run(capsys, "--config", str(cfg), "db", "upgrade")[0] == 0  # a database to read
    cfg.write_text(cfg.read_text() + extra)
    code, out, err = run(capsys, "--config", str(cfg), *args)
    assert code == 2, out + err
    assert message in err and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1


def test_check_config(config: Path, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.smtp import SmtpServer, free_port

    code, out, _ = run(capsys, "--config", str(config), "check-config")
    assert code == 0 and "config OK" in out and "1 watch queries" in out
    with SmtpServer(tmp_path) as server:
        cfg = _with_subscribers(
            config,
            f'\n[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            'from_address = "c@example.org"\n',
        )
        code, out, _ = run(capsys, "--config", str(cfg), "check-config", "--connect")
        assert code == 0, out
        assert "database: OK" in out and "registry API: OK" in out and "mail server: OK, 127.0.0.1" in out
    cfg.write_text(cfg.read_text().replace(f"port = {server.port}", f"port = {free_port()}"))
    code, out, _ = run(capsys, "--config", str(cfg), "check-config", "--connect")
    assert code == 1 and "mail server: FAILED" in out


def test_run_jobs_table(config: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = _with_subscribers(config)
    code, out, _ = run(capsys, "--config", str(cfg), "run", "--jobs")
    assert code == 0
    assert (
        out.startswith("poll     30 10 * * mon-fri")
        and "digest   0 7 * * mon" in out
        and "backfill 0 12 * * mon-fri" in out
        and "America/New_York" in out
    )


# -- choosing the database and the config, wherever the options are written ----------------


def test_global_options_may_follow_the_command(config: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`ctmonitor status --config x.toml` is `ctmonitor --config x.toml status`."""
    assert run(capsys, "poll", "--config", str(config))[0] == 0
    code, out, err = run(capsys, "status", f"--config={config}", "--runs", "1")
    assert code == 0, err
    assert f"Studies: {N} tracked" in out


@pytest.mark.parametrize(
    "args,hoisted",
    [
        (["status", "--config", "x.toml"], ["--config", "x.toml", "status"]),
        (["history", "NCT04422912", "--db", "x.db"], ["--db", "x.db", "history", "NCT04422912"]),
        (["--db", "status", "poll"], ["--db", "status", "poll"]),  # a database file named "status"
        (["db", "check", "--db=a.db", "--debug"], ["--db=a.db", "--debug", "db", "check"]),
        (["events", "--", "--db"], ["events", "--", "--db"]),
        (["--config", "c.toml", "status"], ["--config", "c.toml", "status"]),
    ],
)
def test_which_options_move_before_the_command(args: list[str], hoisted: list[str]) -> None:
    from monitor.cli import hoist_global_options

    assert hoist_global_options(args) == hoisted


def test_db_names_the_database_for_any_command(config: Path, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """--db (a path or a URL) wins over CTMONITOR_DATABASE_URL and the config's [database]."""
    monkeypatch.setenv("CTMONITOR_DATABASE_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    db = tmp_path / "chosen.db"
    code, out, err = run(capsys, "--config", str(config), "poll", "--db", str(db))
    assert code == 0, err
    assert db.exists() and not (tmp_path / "elsewhere.db").exists()
    code, out, err = run(capsys, "status", "--db", str(db), "--config", str(config), "--json")
    assert code == 0, err
    assert json.loads(out)["studies"]["tracked"] == N
    code, out, err = run(capsys, "--db", f"sqlite:///{db}", "history", "NCT06171568", "--config", str(config))
    assert code == 0 and "NCT06171568" in out, err


def test_a_read_only_command_never_creates_an_empty_database(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    for args in (["history", "NCT04422912"], ["status"], ["events"], ["studies"], ["db", "check"]):
        code, _, err = run(capsys, *args, "--db", "typo.db")
        assert code == 2, args
        assert err.strip() == (
            f"ctmonitor: error: no database at {tmp_path / 'typo.db'} (from --db); "
            "`ctmonitor --db typo.db poll` creates one, or name another with --db"
        )
        assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
    # without --db too: the demo's database is elsewhere, ./ctmonitor.db is not made up
    code, _, err = run(capsys, "history", "NCT04422912")
    assert code == 2 and err.strip() == (
        f"ctmonitor: error: no database at {tmp_path / 'ctmonitor.db'} (from the default, ./ctmonitor.db); "
        "`ctmonitor poll` creates one, or name another with --db"
    )
    assert list(tmp_path.iterdir()) == []
    code, _, err = run(capsys, "status", "--db", "mysql://host/x")
    assert code == 2 and "must be a sqlite:/// or postgresql+psycopg:// URL" in err


def test_an_empty_database_and_an_unknown_id_say_which_database_was_read(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "fresh.db"
    assert run(capsys, "--db", str(db), "db", "upgrade")[0] == 0
    code, out, _ = run(capsys, "--db", str(db), "studies")
    assert code == 0 and out.strip() == f"No studies yet: {db} holds none (`ctmonitor poll` fills it)."
    code, _, err = run(capsys, "--db", str(db), "history", "NCT04422912")
    assert code == 2 and err.strip() == (
        f"ctmonitor: error: NCT04422912 is not tracked in {db}: "
        "it holds no studies yet (`ctmonitor poll` fills it)"
    )
